"""Which MJX solver budget is safe: stability and speed under bang-bang actions.

  python -m benchmarks.solver_settings [--env=halfcheetah_vel] [--settings=1:4,2:8,4:8,4:50]
      [--batch=64] [--episodes=5] [--out=F.json]

A trained SAC policy soon saturates its actions at +-1; this drives every env with
random signs of +-1 (the harshest such policy) for ``--episodes`` 200-step episodes per
setting "iterations:ls_iterations", and reports the largest |forward velocity|, whether
any state went non-finite, and env-steps/s.  MuJoCo C on the same model with the same
kind of actions is the reference for the velocity (its solver converges in any setting).
"""
from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from benchmarks import common
from earjax import envs
from earjax.compilation_cache import enable_compilation_cache

_ENV = flags.DEFINE_string("env", "halfcheetah_vel", "Family to test.")
_SETTINGS = flags.DEFINE_list("settings", ["1:4", "2:8", "4:8", "4:50"],
                              "iterations:ls_iterations pairs.")
_BATCH = flags.DEFINE_integer("batch", 64, "Envs stepped together.")
_EPISODES = flags.DEFINE_integer("episodes", 5, "Episodes per setting.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


def mjx_bang_bang(name, iterations, ls_iterations, batch_size, episodes):
  env = envs.make(name, solver_iterations=iterations, ls_iterations=ls_iterations)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks[np.arange(batch_size) % env.num_tasks])

  @jax.jit
  def episode(state, key):
    def body(state, key):
      actions = jnp.sign(jax.random.uniform(key, (batch_size, env.action_size),
                                            minval=-1, maxval=1))
      state = batch.step(state, actions)
      return state, (jnp.abs(state.metrics["velocity"]).max(),
                     jnp.isfinite(state.obs).all())
    state, (speed, finite) = jax.lax.scan(body, state,
                                          jax.random.split(key, env.episode_length))
    return state, speed.max(), finite.all()

  state = batch.reset(jax.random.split(jax.random.PRNGKey(0), batch_size), tasks)
  speeds, finite = [], True
  for i in range(episodes):
    state, speed, ok = episode(state, jax.random.PRNGKey(i))
    speeds.append(float(speed))
    finite &= bool(ok)
  holder = {"state": state}

  def call():
    holder["state"], speed, _ = episode(holder["state"], jax.random.PRNGKey(99))
    jax.block_until_ready(speed)

  rate = common.median_rate(call, batch_size * env.episode_length, repeats=3)
  return float(np.nanmax(speeds)), finite, rate


def c_mujoco_bang_bang(env, episodes, seed=0):
  """Largest |v_x| of MuJoCo C (converged solver) under the same kind of actions."""
  model = env.mj_model
  data = mujoco.MjData(model)
  rng = np.random.default_rng(seed)
  fastest = 0.0
  for _ in range(episodes):
    mujoco.mj_resetData(model, data)
    for _ in range(env.episode_length):
      data.ctrl[:] = np.sign(rng.uniform(-1, 1, model.nu))
      x = data.qpos[0]
      mujoco.mj_step(model, data, env.n_frames)
      fastest = max(fastest, abs(data.qpos[0] - x) / env.dt)
  return fastest


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  reference = c_mujoco_bang_bang(envs.make(_ENV.value), _EPISODES.value)
  records.append(common.record(f"solver/{_ENV.value}/mujoco_c/max_speed", reference,
                               "m/s", env=_ENV.value))
  for setting in _SETTINGS.value:
    iterations, ls_iterations = (int(x) for x in setting.split(":"))
    speed, finite, rate = mjx_bang_bang(_ENV.value, iterations, ls_iterations,
                                        _BATCH.value, _EPISODES.value)
    settings = {"env": _ENV.value, "iterations": iterations,
                "ls_iterations": ls_iterations, "batch": _BATCH.value, "finite": finite}
    records += [common.record(f"solver/{_ENV.value}/{setting}/max_speed", speed, "m/s",
                              **settings),
                common.record(f"solver/{_ENV.value}/{setting}/env_steps_per_s", rate,
                              "env-steps/s", **settings)]
    print(f"{setting:>6}: max |v| {speed:8.2f} m/s (MuJoCo C {reference:.2f}), "
          f"finite {finite}, {rate:8.0f} env-steps/s", flush=True)
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
