"""Env-only throughput: env-steps/s of each family's auto-reset batch, tasks mixed.

  python -m benchmarks.env_throughput [--batch=256] [--envs=hopper_vel,...] [--out=F.json]

Every training task of the family appears in the batch (task i at env i mod num_tasks);
actions are uniform random; a jitted ``lax.scan`` of ``--steps`` steps is timed after a
warm-up call, median over repeats.  Compile time is that of the first call.
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
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls; the median is reported.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


def measure(name: str, batch_size: int, steps: int, repeats: int) -> list[dict]:
  env = envs.make(name)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks[np.arange(batch_size) % env.num_tasks])

  @jax.jit
  def run(state, key):
    def body(state, key):
      actions = jax.random.uniform(key, (batch_size, env.action_size), minval=-1, maxval=1)
      state = batch.step(state, actions)
      return state, state.reward
    state, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state, rewards.sum()

  start = time.perf_counter()
  state = jax.jit(batch.reset)(jax.random.split(jax.random.PRNGKey(0), batch_size), tasks)
  state, _ = jax.block_until_ready(run(state, jax.random.PRNGKey(1)))
  compile_s = time.perf_counter() - start
  holder = {"state": state}

  def call():
    holder["state"], total = run(holder["state"], jax.random.PRNGKey(2))
    jax.block_until_ready(total)

  rate = common.median_rate(call, batch_size * steps, repeats)
  settings = {"env": name, "batch": batch_size, "steps_per_call": steps}
  return [common.record(f"env/{name}/env_steps_per_s", rate, "env-steps/s", **settings),
          common.record(f"env/{name}/first_call_s", compile_s, "s", **settings)]


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  for name in _ENVS.value:
    records += measure(name, _BATCH.value, _STEPS.value, _REPEATS.value)
    common.print_table(records[-2:])
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
