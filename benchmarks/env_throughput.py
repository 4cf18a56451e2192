"""Env-only throughput: env-steps/s of each family's auto-reset batch, tasks mixed.

  python -m benchmarks.env_throughput [--batch=256] [--envs=hopper_vel,...] [--out=F.json]

Every training task of the family appears in the batch (task i at env i mod num_tasks);
actions are uniform random; a jitted ``lax.scan`` of ``--steps`` steps is timed after a
warm-up call, median over repeats.  The first calls of reset and of the step scan give
their compile times (with a warm persistent cache, the time to load them).
"""
import time

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
  env = envs.make(name, backend=backend)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks[np.arange(batch_size) % env.num_tasks])
  start = time.perf_counter()
  state = jax.jit(batch.reset)(jax.random.split(jax.random.PRNGKey(0), batch_size), tasks)
  jax.block_until_ready(state)
  reset_s = time.perf_counter() - start
  rate, step_s = common.random_action_throughput(batch.step, state, batch_size,
                                                 env.action_size, steps, repeats)
  settings = {"env": name, "backend": backend, "batch": batch_size, "steps_per_call": steps,
              "solver_iterations": int(env.mj_model.opt.iterations),
              "ls_iterations": int(env.mj_model.opt.ls_iterations)}
  prefix = f"env/{name}" if backend == "mjx" else f"env/{name}/{backend}"
  return [common.record(f"{prefix}/env_steps_per_s", rate, "env-steps/s", **settings),
          common.record(f"{prefix}/reset_first_call_s", reset_s, "s", **settings),
          common.record(f"{prefix}/step_first_call_s", step_s, "s", **settings)]


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
