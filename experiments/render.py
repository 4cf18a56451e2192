"""A GIF of the frozen EAR policy driven by one LTE, rendered headless.

  MUJOCO_GL=egl python -m experiments.render --workdir=runs/hcv_cpu (--task=vel3 | --lte=x,y,z)
      [--reward_task=vel3 --out=DIR/render/<name>.gif --seed=0]

The episode runs in MJX (deterministic actions); its joint positions are replayed in
MuJoCo's renderer (offscreen OpenGL through EGL by default; EGL needs the system's libEGL
and a driver, on Debian/Ubuntu ``libegl1 libegl-mesa0 libgl1-mesa-dri``, whose software
rasteriser serves a machine without a GPU) with the model's tracking camera, and written
as a GIF by Pillow at real time (1 / dt frames per second).
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

from absl import app  # noqa: E402  pylint: disable=g-import-not-at-top
from absl import flags  # noqa: E402
import jax  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from earjax import checkpoint  # noqa: E402
from earjax.adaptation import lte as lte_lib  # noqa: E402
from earjax.policy import load_run  # noqa: E402
from experiments import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_TASK = flags.DEFINE_string("task", None, "Training task whose LTE drives the policy.")
_LTE = flags.DEFINE_list("lte", None, "An LTE vector (normalised onto the sphere).")
_REWARD_TASK = flags.DEFINE_string("reward_task", None, "Task whose reward is reported "
                                   "(default --task, else the run's first task).")
_OUT = flags.DEFINE_string("out", None, "Output GIF (default DIR/render/<name>.gif).")
_SEED = flags.DEFINE_integer("seed", 0, "Episode seed.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width in pixels.")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height in pixels.")
_CAMERA = flags.DEFINE_string("camera", "track", "Camera name of the model (or -1: free).")


def frames(model: mujoco.MjModel, qpos: np.ndarray, width: int, height: int,
           camera: str) -> list[np.ndarray]:
  """RGB frames of the joint positions ``qpos`` [T, nq]."""
  data = mujoco.MjData(model)
  renderer = mujoco.Renderer(model, height, width)
  out = []
  try:
    for q in qpos:
      data.qpos[:] = q
      mujoco.mj_forward(model, data)
      renderer.update_scene(data, camera=-1 if camera == "-1" else camera)
      out.append(renderer.render().copy())
  finally:
    renderer.close()
  return out


def main(argv):
  cli.start(argv)
  if (_TASK.value is None) == (_LTE.value is None):
    cli.fail(["give exactly one of --task and --lte"])
  try:
    run = load_run(_WORKDIR.value)
    if _TASK.value is not None:
      index = lte_lib.task_index(run.task_names, _TASK.value)
      lte, name = run.ltes[index], run.task_names[index]
    else:
      try:
        values = [float(x) for x in _LTE.value]
      except ValueError as e:
        raise ValueError(f"--lte must be numbers: {e}") from e
      lte = lte_lib.check_lte(values, run.lte_dim)
      lte = lte / np.linalg.norm(lte)
      name = "lte_" + "_".join(f"{x:.2f}" for x in np.asarray(lte))
    reward_task = _REWARD_TASK.value or _TASK.value or run.task_names[0]
    reward_index = lte_lib.task_index(run.task_names, reward_task)
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  if _CAMERA.value != "-1" and mujoco.mj_name2id(
      run.env.mj_model, mujoco.mjtObj.mjOBJ_CAMERA, _CAMERA.value) < 0:
    cli.fail([f"the model has no camera {_CAMERA.value!r}"])
  episode = jax.device_get(lte_lib.make_rollout(run.env, keep_states=True)(
      run.policy, np.asarray(lte)[None], run.task_params[reward_index][None],
      jax.random.PRNGKey(_SEED.value)[None]))
  images = frames(run.env.mj_model, episode.qpos[:, 0], _WIDTH.value, _HEIGHT.value,
                  _CAMERA.value)
  out = _OUT.value or os.path.join(run.workdir, "render", f"{name}.gif")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  pil = [Image.fromarray(f) for f in images]
  pil[0].save(out, save_all=True, append_images=pil[1:], loop=0,
              duration=int(round(1000 * run.env.dt)))
  print(f"{name} on {run.task_names[reward_index]}: return {float(episode.ret[0]):.1f}, "
        f"mean velocity {float(episode.velocity[0]):.2f}; wrote {out} ({len(pil)} frames)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
