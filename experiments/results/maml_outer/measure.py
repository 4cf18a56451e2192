"""MAML's outer step, Adam vs TRPO, on Point-Vel's sampled targets (issue 36; measured
2026-12-07): 16 training and 5 held-out targets from U(0, 1.5) (``tests/tiny.py``'s
``sampled_point_vel``), 50 meta-iterations of 10 episodes per task, then 3 inner steps
on each held-out target (3 seeds) and ``comparison.tracking``.

  PYTHONPATH=.:tests python experiments/results/maml_outer/measure.py OUT.json
"""
import json
import shutil
import sys
import time

import jax

from earjax import comparison as compare
from earjax import envs
from earjax.training import train_and_evaluate
from tiny import sampled_point_vel


def main(out_path):
  out = {}
  for outer in ("adam", "trpo"):
    config = sampled_point_vel("maml", epochs=50)
    config.maml.hidden = (32, 32)
    config.maml.inner_lr = 0.5
    config.maml.episodes_per_task = 10
    config.maml.outer = outer
    workdir = f"/tmp/maml_outer_{outer}"
    shutil.rmtree(workdir, ignore_errors=True)
    start = time.time()
    train_and_evaluate(config, workdir)
    seconds = time.time() - start
    env = envs.make("point_vel", config.env)
    record = compare.run_method("maml", workdir, env.adapt_tasks, env.adapt_task_names,
                                seeds=3, key=jax.random.PRNGKey(0), budget=6000,
                                eval_episodes=3)
    out[outer] = {"train_seconds": seconds, "tracking": compare.tracking(record)}
  with open(out_path, "w") as f:
    json.dump(out, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1])
