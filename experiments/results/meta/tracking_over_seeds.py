"""The tracking check of a batched run's adaptation, per training seed and over them.

  .venv/bin/python experiments/results/meta/tracking_over_seeds.py \
      runs/meta/hcv_pearl_5seeds/adapt/summary.json pearl \
      experiments/results/meta/hcv_pearl_5seeds_tracking.json

Reads ``experiments.compare_adaptation``'s ``summary.json`` (its ``<method>`` entry's
``tracking_by_training_seed``: each training seed's held-out targets, velocities before
and after adaptation, the slopes and whether each target improved) and writes, per
training seed, the slope after adaptation, the targets improved, the mean |v - target|
before and after and the check (slope >= 0.7 and every target improved); over the seeds,
the mean of the slope and of the errors with 95 % stratified-bootstrap CIs
(``earjax.statistics``) and how many seeds pass each half of the check.
"""
import json
import sys

import numpy as np

from earjax import comparison as compare
from earjax import statistics


def main(summary_path: str, method: str, out_path: str) -> None:
  with open(summary_path) as f:
    entry = json.load(f)[method]
  seeds = []
  for i, s in enumerate(entry["tracking_by_training_seed"]):
    targets, before, after = (np.asarray(s[k], np.float64)
                              for k in ("targets", "before", "after"))
    seeds.append({"training_seed_index": i, "slope_after": s["slope_after"],
                  "slope_before": s["slope_before"],
                  "targets_improved": int(sum(s["improved"])), "targets": len(targets),
                  "velocity_error_before": float(np.abs(before - targets).mean()),
                  "velocity_error_after": float(np.abs(after - targets).mean()),
                  "holds": bool(s["holds"]),
                  "not_improved": [{"target": float(t), "before": float(b), "after": float(a)}
                                   for t, b, a, ok in zip(targets, before, after, s["improved"])
                                   if not ok]})
  per_seed = lambda key: np.asarray([s[key] for s in seeds], np.float64)
  intervals = statistics.interval_estimates(
      {k: per_seed(k) for k in ("slope_after", "velocity_error_before",
                                "velocity_error_after")}, seed=0)
  out = {"summary": summary_path, "method": method, "n_training_seeds": len(seeds),
         "slope_threshold": compare.TRACKING_SLOPE, "seeds": seeds,
         "over_seeds": intervals,
         "seeds_with_slope_at_least_threshold": int(sum(
             s["slope_after"] >= compare.TRACKING_SLOPE for s in seeds)),
         "seeds_with_every_target_improved": int(sum(
             s["targets_improved"] == s["targets"] for s in seeds)),
         "seeds_passing_the_check": int(sum(s["holds"] for s in seeds)),
         "training_seconds": entry.get("training_seconds")}
  with open(out_path, "w") as f:
    json.dump(out, f, indent=1)
  print(json.dumps({k: v for k, v in out.items() if k != "seeds"}, indent=1))


if __name__ == "__main__":
  main(*sys.argv[1:])
