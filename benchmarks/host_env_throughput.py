"""Meta-World MT10 on the host: envpool alone vs through ``envs.HostBatch`` in a jitted scan.

  python -m benchmarks.host_env_throughput --out=benchmarks/results/mt10_host_cpu.json

Random actions, all ten tasks, ``envs_per_task`` envs each.  ``envpool`` steps the ten
pools from Python (``send`` to all, then ``recv``: the host-side ceiling); ``io_callback``
steps the same pools from inside one jitted ``lax.scan`` of ``steps`` steps, the way the
Trainer's epoch does (one host call per step of the batch, auto-reset included).  The
end-to-end rate of a training run (gradient steps included) is read from its
``metrics.jsonl`` in RESULTS.md.
"""
from __future__ import annotations

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from earjax import envs
from earjax.compilation_cache import enable_compilation_cache

_ENVS_PER_TASK = flags.DEFINE_list("envs_per_task", ["1", "4", "16"], "Envs of each task.")
_STEPS = flags.DEFINE_integer("steps", 500, "Steps of every env per timed call.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls; medians are reported.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


def measure(envs_per_task: int, steps: int, repeats: int) -> list[dict]:
  family = envs.make("metaworld_mt10")
  batch = family.batch()
  num_envs = family.num_tasks * envs_per_task
  task_params = jnp.repeat(jnp.asarray(family.train_tasks), envs_per_task, axis=0)
  state = jax.jit(batch.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs),
                               task_params)
  rng = np.random.default_rng(0)

  def host_only():
    for _ in range(steps):
      batch._host_step(rng.uniform(-1, 1, (num_envs, 4)).astype(np.float32))

  host_rate = common.median_rate(host_only, num_envs * steps, repeats)
  jit_rate, first_call, _ = common.random_action_throughput(
      batch.step, state, num_envs, family.action_size, steps, repeats)
  settings = {"envs_per_task": envs_per_task, "num_envs": num_envs, "steps": steps,
              "repeats": repeats, "backend": "envpool 1.2.5, one pool per task, 1 thread each",
              "other_jobs": common.background_load()}
  batch.close()
  return [common.record(f"mt10/envpool/{num_envs}", host_rate, "env-steps/s", **settings),
          common.record(f"mt10/io_callback/{num_envs}", jit_rate, "env-steps/s",
                        first_call_s=first_call, **settings)]


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  for n in _ENVS_PER_TASK.value:
    records += measure(int(n), _STEPS.value, _REPEATS.value)
  common.print_table(records)
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
