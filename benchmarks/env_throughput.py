"""Env-only throughput: env-steps/s of each family's auto-reset batch, tasks mixed.

  python -m benchmarks.env_throughput [--batch=256] [--envs=hopper_vel,...] [--out=F.json]

Every training task of the family appears in the batch (task i at env i mod num_tasks);
actions are uniform random; a jitted ``lax.scan`` of ``--steps`` steps is timed after a
warm-up call, median over repeats.  The first calls of reset and of the step scan give
their compile times (with a hit of the persistent cache, the time to load them; the
records say which).
"""
from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from earjax import envs
from earjax.compilation_cache import enable_compilation_cache

_BATCH = flags.DEFINE_integer("batch", 256, "Envs stepped together.")
_STEPS = flags.DEFINE_integer("steps", 100, "Env steps per timed call.")
_ENVS = flags.DEFINE_list("envs", list(envs.names()), "Families to measure.")
_BACKEND = flags.DEFINE_string("backend", "mjx", "Physics backend (envs.make option).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls; the median is reported.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


def measure(name: str, batch_size: int, steps: int, repeats: int,
            backend: str = "mjx") -> list[dict]:
  """Records of one family at one batch: env-steps/s, first calls of reset and step."""
  env = envs.make(name, backend=backend)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks[np.arange(batch_size) % env.num_tasks])
  keys = jax.random.split(jax.random.PRNGKey(0), batch_size)
  state, reset_s, reset_cache = common.timed_first_call(
      lambda: jax.jit(batch.reset)(keys, tasks))
  rate, step_s, step_cache = common.random_action_throughput(
      batch.step, state, batch_size, env.action_size, steps, repeats)
  settings = {"env": name, "backend": backend, "batch": batch_size, "steps_per_call": steps,
              "repeats": repeats, "solver_iterations": int(env.mj_model.opt.iterations),
              "ls_iterations": int(env.mj_model.opt.ls_iterations),
              "peak_rss_mb": common.peak_rss_mb()}
  prefix = f"env/{name}" if backend == "mjx" else f"env/{name}/{backend}"
  return [common.record(f"{prefix}/b{batch_size}/env_steps_per_s", rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/b{batch_size}/reset_first_call_s", reset_s, "s",
                        cache=reset_cache, **settings),
          common.record(f"{prefix}/b{batch_size}/step_first_call_s", step_s, "s",
                        cache=step_cache, **settings)]


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  for name in _ENVS.value:
    records += measure(name, _BATCH.value, _STEPS.value, _REPEATS.value, _BACKEND.value)
    common.print_table(records[-3:])
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
