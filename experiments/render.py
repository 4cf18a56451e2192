"""Videos of the frozen EAR policy driven by LTEs, rendered headless: a GIF and an MP4.

  MUJOCO_GL=egl python -m experiments.render --workdir=runs/hcv_cpu \
      (--task=vel3 | --lte="0.5*vel2 + 0.5*vel4" | --sweep=vel1,vel4 --betas=0,0.5,1) \
      [--reward_task=vel3 --out=DIR/render/<name>.gif --save_as=NAME --seed=0]

``--lte`` is any LTE expression of ``earjax.skills`` (training tasks, saved skills,
``x,y,z``); ``--save_as`` keeps it in the run's skill library.  ``--sweep=A,B`` renders
Eq. 1 between the ends A and B (tasks or expressions) at every ``--betas`` value, one
panel per beta side by side in one video, all episodes in one vmapped batch.

The episodes run in MJX (deterministic actions); their joint positions are replayed in
MuJoCo's renderer (offscreen OpenGL through EGL by default; EGL needs the system's libEGL
and a driver, on Debian/Ubuntu ``libegl1 libegl-mesa0 libgl1-mesa-dri``, whose software
rasteriser serves a machine without a GPU) with the model's tracking camera, and written
at real time (1 / dt frames per second) as a GIF (Pillow) and an H.264 MP4 (PyAV, FFmpeg's
libraries in its wheel) beside it.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

from absl import app  # noqa: E402  pylint: disable=g-import-not-at-top
from absl import flags  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from earjax import checkpoint  # noqa: E402
from earjax import skills  # noqa: E402
from earjax.adaptation import lte as lte_lib  # noqa: E402
from earjax.policy import load_run  # noqa: E402
from experiments import cli  # noqa: E402
from experiments import video  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_CHECKPOINT, _SEED_INDEX = cli.define_checkpoint_flags()
_TASK = flags.DEFINE_string("task", None, "Training task whose LTE drives the policy.")
_LTE = flags.DEFINE_string("lte", None, "An LTE expression (earjax.skills: tasks, saved "
                           "skills, numbers, + - * / and brackets) or x,y,z.")
_SWEEP = flags.DEFINE_list("sweep", None, "A,B: an Eq. 1 sweep from A (beta 1) to B "
                           "(beta 0), tasks or LTE expressions, one panel per beta.")
_BETAS = flags.DEFINE_list("betas", ["0", "0.25", "0.5", "0.75", "1"], "Betas of --sweep.")
_SAVE_AS = flags.DEFINE_string("save_as", None, "Save the --lte as this skill of the run.")
_REWARD_TASK = flags.DEFINE_string("reward_task", None, "Task whose reward is reported "
                                   "(default --task, else the run's first task).")
_OUT = flags.DEFINE_string("out", None, "Output GIF; the MP4 is written beside it "
                           "(default DIR/render/<name>.gif).")
_SEED = flags.DEFINE_integer("seed", 0, "Episode seed.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width in pixels (of one panel).")
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


def chosen_ltes(run) -> tuple[np.ndarray, list[str], str]:
  """(LTEs [K, d], one label per panel, the output name) from the flags."""
  if _TASK.value is not None:
    index = lte_lib.task_index(run.task_names, _TASK.value)
    return np.asarray(run.ltes[index])[None], [run.task_names[index]], run.task_names[index]
  if _LTE.value is not None:
    lte = skills.resolve(run, _LTE.value)
    if _SAVE_AS.value:
      skills.save_for_run(run, _SAVE_AS.value, lte, source=_LTE.value)
    return lte[None], [_LTE.value], _SAVE_AS.value or cli.slug(_LTE.value)
  if len(_SWEEP.value) != 2:
    raise ValueError(f"--sweep takes two ends A,B, got {len(_SWEEP.value)}")
  try:
    betas = lte_lib.check_betas([float(b) for b in _BETAS.value])
  except ValueError as e:
    raise ValueError(str(e) if "beta" in str(e) else f"betas must be numbers: {e}") from e
  (lte_a, _), (lte_b, _) = (skills.lte_or_task(run, text) for text in _SWEEP.value)
  ltes = np.asarray(lte_lib.interpolate(lte_a, lte_b, betas, run.config.ear_sac.normalize_lte))
  name = f"sweep_{cli.slug(_SWEEP.value[0])}_{cli.slug(_SWEEP.value[1])}"
  return ltes, [f"beta {b:g}" for b in betas], name


def main(argv):
  cli.start(argv)
  given = [f for f in (_TASK, _LTE, _SWEEP) if f.value is not None]
  if len(given) != 1:
    cli.fail(["give exactly one of --task, --lte and --sweep"])
  if _SAVE_AS.value is not None and _LTE.value is None:
    cli.fail(["--save_as saves an --lte expression; give one"])
  try:
    run = load_run(_WORKDIR.value, _CHECKPOINT.value, _SEED_INDEX.value)
    ltes, labels, name = chosen_ltes(run)
    reward_task = _REWARD_TASK.value or _TASK.value or run.task_names[0]
    reward_index = lte_lib.task_index(run.task_names, reward_task)
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  if _CAMERA.value != "-1" and mujoco.mj_name2id(
      run.env.mj_model, mujoco.mjtObj.mjOBJ_CAMERA, _CAMERA.value) < 0:
    cli.fail([f"the model has no camera {_CAMERA.value!r}"])
  k = len(ltes)
  episode = jax.device_get(lte_lib.make_rollout(run.env, keep_states=True)(
      run.policy, jnp.asarray(ltes), jnp.repeat(run.task_params[reward_index][None], k, 0),
      jnp.repeat(jax.random.PRNGKey(_SEED.value)[None], k, 0)))
  panels = [frames(run.env.mj_model, episode.qpos[:, i], _WIDTH.value, _HEIGHT.value,
                   _CAMERA.value) for i in range(k)]
  images = panels[0] if k == 1 else video.side_by_side(panels, labels)
  out = _OUT.value or os.path.join(run.workdir, "render", f"{name}.gif")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  mp4 = os.path.splitext(out)[0] + ".mp4"
  video.write_gif(images, out, 1.0 / run.env.dt)
  video.write_mp4(images, mp4, 1.0 / run.env.dt)
  for i, label in enumerate(labels):
    print(f"{label} on {run.task_names[reward_index]}: return {float(episode.ret[i]):.1f}, "
          f"mean velocity {float(episode.velocity[i]):.2f}")
  print(f"wrote {out} and {mp4} ({len(images)} frames)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
