"""Learning curves of one or more runs from their metrics.jsonl, as a PNG.

  python -m experiments.plot_curves --workdirs=runs/a,runs/b --out=curves.png
"""
import os

from absl import app
from absl import flags
import matplotlib

from earjax.training.loggers import read_rows

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories to plot.", required=True)
_OUT = flags.DEFINE_string("out", "curves.png", "Output PNG.")


def main(argv):
  del argv
  runs = {os.path.basename(os.path.normpath(w)): read_rows(w) for w in _WORKDIRS.value}
  has = lambda key: any(key in r for rows in runs.values() for r in rows)
  # Panels: the mean return, the success rate, the velocity error and the direction
  # error where the runs report them, then per task the velocity (velocity families) or the success rate.
  panels = [("eval/return_mean", "mean evaluation return")]
  if has("eval/success_rate"):
    panels.append(("eval/success_rate", "success rate (mean over tasks)"))
  if has("eval/velocity_error_mean"):
    panels.append(("eval/velocity_error_mean", "mean |velocity - target| (m/s)"))
  if has("eval/direction_error_mean"):   # Ant-Dir
    panels.append(("eval/direction_error_mean", "mean angle to the direction (deg)"))
  per_task = "velocity" if any(k.startswith("eval/velocity/") for rows in runs.values()
                               for k in rows[-1]) else "success"
  fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 3.6))
  for label, rows in runs.items():
    steps = [r["env_steps"] / 1e6 for r in rows]
    for ax, (key, _) in zip(axes, panels):
      ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=label)
    tasks = [k.split("/", 2)[2] for k in rows[-1] if k.startswith("eval/return/")]
    for task in tasks:
      axes[-1].plot(steps, [r.get(f"eval/{per_task}/{task}", float("nan")) for r in rows],
                    label=f"{label} {task}" if len(runs) > 1 else task)
  for ax, (key, ylabel) in zip(axes, panels):
    ax.set_ylabel(ylabel)
    if key == "eval/velocity_error_mean":
      ax.axhline(0.5, color="gray", ls="--", lw=0.8)
  axes[-1].set_ylabel(f"evaluation {per_task} per task" +
                      (" (m/s)" if per_task == "velocity" else ""))
  for ax in axes:
    ax.set_xlabel("million env steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(_OUT.value, dpi=110)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
