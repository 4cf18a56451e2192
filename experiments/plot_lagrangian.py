"""TSAC's Lagrange multiplier beside what its dual step integrates (T7 of
``earjax/agents/tsac/__init__.py``: lambda <- clip(lambda + eta (b - mean Q_s), 0, lambda_max)).

  python -m experiments.plot_lagrangian \
      --runs=b1.2_lr1e-2=runs/tsac_sweep/b1.2_lr1e-2,b1.0_lr1e-2=runs/tsac_sweep/b1.0_lr1e-2 \
      --out=runs/tsac_sweep/lagrangian.png

One column per run (``name=workdir``, as ``experiments.report`` takes them): on top lambda
(``train/lagrange``), below it the sparse critic's estimate of the final action
(``train/sparse_return``), of the shared policy's own action (``train/sp_sparse_return``)
and the budget b (``train/budget``), every seed of a batched run a line of its own, so
that lambda's rise and fall can be read against the gap b - Q_s it integrates.  Also writes
``<out>.json``: per run and seed, lambda's last and largest value, the last gap and the
last lift Q_s(final action) / Q_s(shared policy's action).
"""
import os

from absl import app
from absl import flags
import numpy as np

from earjax import files
from earjax.training.loggers import read_rows, seed_values
from experiments import cli

_RUNS = flags.DEFINE_list("runs", None, "name=workdir pairs (TSAC runs).", required=True)
_OUT = flags.DEFINE_string("out", None, "Output PNG.", required=True)

LAMBDA = "train/lagrange"
ESTIMATES = (("train/sparse_return", "Q_s(s, final action)", "-"),
             ("train/sp_sparse_return", "Q_s(s, shared policy's action)", ":"),
             ("train/budget", "budget b", "--"))


def series(workdir: str) -> dict:
  """``{"env_steps": [...], metric: [rows, seeds] array}`` of a TSAC run's metrics."""
  rows = read_rows(workdir)
  out = {"env_steps": np.array([r["env_steps"] for r in rows])}
  for metric in (LAMBDA,) + tuple(m for m, _, _ in ESTIMATES):
    out[metric] = np.array([seed_values(r, metric) for r in rows])
  return out


def summary(data: dict) -> dict:
  """Per seed: lambda's last and largest value, the last gap b - Q_s(final action), and
  the correction's last lift Q_s(final action) / Q_s(shared policy's action)."""
  lam, gap = data[LAMBDA], data["train/budget"] - data["train/sparse_return"]
  lift = data["train/sparse_return"] / data["train/sp_sparse_return"]
  return {"env_steps": int(data["env_steps"][-1]),
          "lambda_last": lam[-1].tolist(), "lambda_max": lam.max(axis=0).tolist(),
          "gap_last": gap[-1].tolist(), "lift_last": lift[-1].tolist()}


def main(argv):
  cli.start(argv)
  specs = cli.named_runs(_RUNS.value)
  try:
    runs = {name: series(workdir) for name, workdir in specs.items()}
  except ValueError as e:
    cli.fail([str(e)])
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 6), squeeze=False,
                           sharex="col")
  for column, (name, data) in enumerate(runs.items()):
    steps = data["env_steps"] / 1e3
    top, bottom = axes[0, column], axes[1, column]
    for seed in range(data[LAMBDA].shape[1]):     # one colour per seed, one style per figure
      color = f"C{seed}"
      top.plot(steps, data[LAMBDA][:, seed], color=color, lw=0.9, label=f"seed {seed}")
      for metric, label, style in ESTIMATES:
        bottom.plot(steps, data[metric][:, seed], color=color, ls=style, lw=0.9,
                    label=label if seed == 0 else None)
    top.set_title(name, fontsize=9)
    bottom.set_xlabel("thousand env steps (per seed)")
  axes[0, 0].set_ylabel("lambda (one line per seed)")
  axes[1, 0].set_ylabel("sparse critic's estimate")
  axes[0, 0].legend(fontsize=7)
  axes[1, 0].legend(fontsize=7)
  for ax in axes.flat:
    ax.grid(alpha=0.3)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  fig.savefig(_OUT.value, dpi=110)
  plt.close(fig)
  files.write_json(os.path.splitext(_OUT.value)[0] + ".json",
                   {"runs": specs, "per_seed": {n: summary(d) for n, d in runs.items()}})
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
