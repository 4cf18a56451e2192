"""Learning curves of one or more runs from their metrics.jsonl, as a PNG.

  python -m experiments.plot_curves --workdirs=runs/a,runs/b --out=curves.png
"""
import json
import os

from absl import app
from absl import flags
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories to plot.", required=True)
_OUT = flags.DEFINE_string("out", "curves.png", "Output PNG.")


def read(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def main(argv):
  del argv
  has_error = any("eval/velocity_error_mean" in r for w in _WORKDIRS.value for r in read(w))
  panels = 3 if has_error else 2
  fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
  for workdir in _WORKDIRS.value:
    rows = read(workdir)
    steps = [r["env_steps"] / 1e6 for r in rows]
    label = os.path.basename(os.path.normpath(workdir))
    tasks = [k.split("/", 2)[2] for k in rows[-1] if k.startswith("eval/return/")]
    axes[0].plot(steps, [r["eval/return_mean"] for r in rows], label=label)
    if has_error:
      axes[1].plot(steps, [r["eval/velocity_error_mean"] for r in rows], label=label)
    for task in tasks:
      axes[-1].plot(steps, [r[f"eval/velocity/{task}"] for r in rows],
                    label=f"{label} {task}" if len(_WORKDIRS.value) > 1 else task)
  axes[0].set_ylabel("mean evaluation return")
  if has_error:
    axes[1].set_ylabel("mean |velocity - target| (m/s)")
    axes[1].axhline(0.5, color="gray", ls="--", lw=0.8)
  axes[-1].set_ylabel("evaluation velocity per task (m/s)")
  for ax in axes:
    ax.set_xlabel("million env steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(_OUT.value, dpi=110)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
