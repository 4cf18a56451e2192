"""Does MAML's inner step move a HalfCheetah-Vel policy toward its target? (issue 36)

Loads a MAML run's latest checkpoint (one training seed), takes ``STEPS`` inner
policy-gradient steps (``earjax.adaptation.maml.adapt``: 20 sampled episodes a step, the
reference's fast batch) on four targets spanning the run's interval, at the reference's
inner learning rate 0.1 and at 5x and 20x it, and records the deterministic policy's mean
forward velocity and return before and after each step (5 fresh episodes each).  If the
step carried task information, the velocity after it would rise with the target (slope
of velocity after 1 step vs target > 0) and the return would improve on every target.

  PYTHONPATH=. python experiments/results/meta/maml_inner_step.py WORKDIR OUT.json [SEED_INDEX]
"""
import json
import sys
import time

import jax
import numpy as np

from earjax.adaptation import maml

TARGETS = (0.25, 1.0, 1.75, 2.5)
INNER_LRS = (0.1, 0.5, 2.0)
STEPS = 2


def main(workdir: str, out: str, seed_index: int = 0) -> None:
  run = maml.load(workdir, seed_index=seed_index)
  tasks = np.asarray(TARGETS, np.float32)[:, None]
  record = {"workdir": workdir, "seed_index": seed_index, "epoch": int(run.epoch),
            "targets": list(TARGETS), "episodes_per_step": 20, "eval_episodes": 5,
            "steps": STEPS, "by_inner_lr": {}}
  for lr in INNER_LRS:
    start = time.time()
    r = maml.adapt(run, tasks, jax.random.PRNGKey(0), steps=STEPS, episodes_per_step=20,
                   eval_episodes=5, inner_lr=lr)
    velocity, ret = np.asarray(r["eval_velocity"]), np.asarray(r["eval_return"])
    record["by_inner_lr"][str(lr)] = {
        "velocity": velocity.tolist(), "return": ret.tolist(),
        "sampled_return": np.asarray(r["sampled_return"]).tolist(),
        "slope_velocity_after_1_step": float(np.polyfit(TARGETS, velocity[:, 1], 1)[0]),
        "targets_improved_after_1_step": int((ret[:, 1] > ret[:, 0]).sum()),
        "seconds": time.time() - start}
    print(lr, json.dumps(record["by_inner_lr"][str(lr)]["velocity"]), flush=True)
  with open(out, "w") as f:
    json.dump(record, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
