"""PEARL's encoder context, before and after issue 36 (measured 2026-12-07).

Trains PEARL on Point-Vel's sampled targets (16 training, 5 held out, U(0, 1.5); the
fast check of tests/test_pearl.py, 3 seeds in one batched run) with the code of the
repository it runs in, adapts every training seed to the held-out targets (3 context
episodes, 3 adaptation seeds, the posterior mean evaluated on 3 episodes) and writes the
achieved velocities and the tracking figures (``earjax.comparison.tracking``'s, computed
here so that the code before it can run this file):

  cd <checkout> && PYTHONPATH=. python experiments/results/pearl_context/measure.py OUT.json [own]

With ``own``: Point-Vel's own targets instead (train -1.5, -0.5, 0.5, 1.5; held out -1, 0,
1: the setting of issue 36's report), the other flags the same.

"before": commit 305538c (the context drawn from the task's whole replay) with the
sampled-task env files of 5cc829d; "after": 5cc829d and later (the encoder buffer).
"""
import json
import subprocess
import sys
import time

import jax
import numpy as np

WORKDIR = "/tmp/pearl_context_run"
FLAGS = ["--config=experiments/configs/point_vel.py:cpu", "--config.agent=pearl",
         "--config.reward_scale=5", "--config.env.task_interval=(0.0,1.5)",
         "--config.env.num_train_tasks=16", "--config.env.num_test_tasks=5",
         "--config.envs_per_task=2", "--config.batch_size_per_task=32",
         "--config.pearl.encoder_hidden=(64,64)", "--config.num_epochs=105",
         "--config.num_seeds=3"]


def main(out_path, own_tasks=False):
  flags = [f for f in FLAGS if not own_tasks or not f.startswith("--config.env.")]
  subprocess.run(["rm", "-rf", WORKDIR], check=True)
  start = time.time()
  subprocess.run([sys.executable, "-m", "experiments.train", f"--workdir={WORKDIR}", *flags],
                 check=True, capture_output=True)
  train_seconds = time.time() - start
  from earjax.adaptation import pearl   # pylint: disable=import-outside-toplevel
  from earjax.run import Run            # pylint: disable=import-outside-toplevel
  run = Run.load(WORKDIR, agent="pearl", what="PEARL's adaptation", impl="jax")
  targets = np.asarray(run.env.adapt_tasks[:, 0])
  rows = np.repeat(run.env.adapt_tasks, 3, axis=0)
  seeds = []
  for k in range(run.num_seeds):
    items, epoch = run.restore_best_items(k)
    adapting = pearl.PEARLRun(WORKDIR, run.config, run.env, run.networks,
                              items["policy"]["actor"], items["encoder"], epoch)
    out = pearl.adapt(adapting, rows, jax.random.PRNGKey(0), 3, 3)
    velocity = out["eval_velocity"].reshape(len(targets), 3, -1).mean(1)   # [targets, 4]
    before, after = velocity[:, 0], velocity[:, -1]
    band = 0.1 * np.maximum(1.0, np.abs(targets))
    improved = (np.abs(after - targets) < np.abs(before - targets)) | (
        np.abs(after - targets) <= band)
    seeds.append({"seed_index": k, "checkpoint_epoch": int(epoch),
                  "velocity_after_episodes": velocity.tolist(),
                  "slope_before": float(np.polyfit(targets, before, 1)[0]),
                  "slope_after": float(np.polyfit(targets, after, 1)[0]),
                  "error_before": float(np.abs(before - targets).mean()),
                  "error_after": float(np.abs(after - targets).mean()),
                  "improved": improved.tolist(),
                  "posterior_std_after": float(out["posterior_std"][:, -1].mean())})
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
  with open(out_path, "w") as f:
    json.dump({"commit": commit, "flags": flags, "targets": targets.tolist(),
               "train_seconds": train_seconds, "seeds": seeds,
               "slope_after_mean": float(np.mean([s["slope_after"] for s in seeds])),
               "error_after_mean": float(np.mean([s["error_after"] for s in seeds])),
               "error_before_mean": float(np.mean([s["error_before"] for s in seeds]))},
              f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], own_tasks=sys.argv[2:] == ["own"])
