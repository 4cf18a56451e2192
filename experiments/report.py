"""Seeds' statistics of trained runs: a table with 95 % bootstrap CIs, curves with CI
bands, and every per-seed value, from rliable (Agarwal et al. 2021).

  python -m experiments.report --runs=ear=runs/hcv_5seeds,ohe=runs/hcv_ohe_5seeds \
      --metric=eval/velocity_error_mean --out=runs/report

``--runs``: ``name=workdir`` pairs; a workdir is a batched run (``num_seeds`` > 1: its
seeds) or several single-seed runs joined with ``+``.  Per method, the ``--metric`` of
every seed at the last evaluation (or ``--epoch``) is one run's score; the table gives,
per method, n, the mean and the IQM with 95 % stratified-bootstrap CIs
(``rliable.library.get_interval_estimates``, ``--reps`` resamples), and per pair of
methods whether the mean CIs are apart ("A < B") or overlap (no difference called).
``--lower_is_better`` orders the verdicts for errors (the default for metrics named
``*error*``).  Writes ``<out>/report.json`` (every per-seed value, the estimates, the
command), ``<out>/report.md`` (the table) and ``<out>/curves.png`` (the mean over seeds
vs env steps with 95 % CI bands).
"""
from __future__ import annotations

import itertools
import os
import sys

from absl import app
from absl import flags
import numpy as np

from earjax import files
from earjax.statistics import BOOTSTRAP_REPS, interval_estimates
from earjax.training.loggers import read_rows, seed_values
from experiments import cli

_RUNS = flags.DEFINE_list("runs", None, "name=workdir[+workdir...] pairs.", required=True)
_METRIC = flags.DEFINE_string("metric", "eval/return_mean", "The metrics.jsonl figure.")
_EPOCH = flags.DEFINE_integer("epoch", None, "The evaluation epoch (default: each run's last).")
_REPS = flags.DEFINE_integer("reps", BOOTSTRAP_REPS, "Bootstrap resamples.")
_LOWER = flags.DEFINE_bool("lower_is_better", None, "Whether a lower figure is better "
                           "(default: true for metrics named *error*).")
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)


def method_scores(spec: str, metric: str, epoch: int | None):
  """(per-seed scores at the epoch, {env_steps: per-seed scores} of every evaluation
  all the method's runs share) of ``workdir[+workdir...]``."""
  runs = [read_rows(w) for w in spec.split("+")]
  final, curves = [], {}
  for rows in runs:
    chosen = rows[-1] if epoch is None else next(
        (r for r in rows if r["epoch"] == epoch), None)
    if chosen is None:
      raise ValueError(f"no evaluation at epoch {epoch} in {spec!r}")
    final += seed_values(chosen, metric)
    for row in rows:
      curves.setdefault(row["env_steps"], []).append(seed_values(row, metric))
  shared = {s: sum(v, []) for s, v in sorted(curves.items()) if len(v) == len(runs)}
  return np.asarray(final), shared


def verdict(a: str, b: str, est: dict, lower_is_better: bool) -> str:
  """"a < b" / "b < a" when the mean CIs are apart (the lower first; "(better)" where
  lower is better), else "overlap"."""
  (lo_a, hi_a), (lo_b, hi_b) = est[a]["mean_ci"], est[b]["mean_ci"]
  if hi_a < lo_b:
    return f"{a} < {b}" + (" (better)" if lower_is_better else "")
  if hi_b < lo_a:
    return f"{b} < {a}" + (" (better)" if lower_is_better else "")
  return "overlap: no difference called"


def table(metric: str, est: dict, verdicts: dict) -> str:
  lines = [f"| method | n | mean {metric} (95 % CI) | IQM (95 % CI) |", "|---|---:|---|---|"]
  for name, e in est.items():
    lines.append(f"| {name} | {e['n']} | {e['mean']:.4g} [{e['mean_ci'][0]:.4g}, "
                 f"{e['mean_ci'][1]:.4g}] | {e['iqm']:.4g} [{e['iqm_ci'][0]:.4g}, "
                 f"{e['iqm_ci'][1]:.4g}] |")
  if verdicts:
    lines += ["", "| pair | verdict |", "|---|---|"]
    lines += [f"| {a} vs {b} | {v} |" for (a, b), v in verdicts.items()]
  return "\n".join(lines) + "\n"


def plot(curves: dict, reps: int, metric: str, path: str) -> dict:
  """Mean over seeds vs env steps with 95 % CI bands, and each seed's curve thin; returns
  the bands drawn."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6, 4))
  bands = {}
  for name, points in curves.items():
    steps = list(points)
    est = [interval_estimates({name: np.asarray(points[s])}, reps)[name] for s in steps]
    bands[name] = {"env_steps": steps, "mean": [e["mean"] for e in est],
                   "ci": [e["mean_ci"] for e in est]}
    line, = ax.plot(steps, bands[name]["mean"], label=f"{name} (mean, 95 % CI)")
    ax.fill_between(steps, [c[0] for c in bands[name]["ci"]],
                    [c[1] for c in bands[name]["ci"]], alpha=0.25, color=line.get_color())
    per_seed = np.array([points[s] for s in steps])          # [points, seeds]
    ax.plot(steps, per_seed, color=line.get_color(), alpha=0.35, linewidth=0.7)
  ax.set_xlabel("env steps (per seed)")
  ax.set_ylabel(metric)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return bands


def main(argv):
  cli.start(argv)
  specs = cli.named_runs(_RUNS.value)
  try:
    loaded = {n: method_scores(s, _METRIC.value, _EPOCH.value) for n, s in specs.items()}
  except ValueError as e:
    cli.fail([str(e)])
  lower = ("error" in _METRIC.value) if _LOWER.value is None else _LOWER.value
  scores = {n: v[0] for n, v in loaded.items()}
  est = interval_estimates(scores, _REPS.value)
  verdicts = {(a, b): verdict(a, b, est, lower) for a, b in itertools.combinations(specs, 2)}
  os.makedirs(_OUT.value, exist_ok=True)
  bands = plot({n: v[1] for n, v in loaded.items()}, min(_REPS.value, 500), _METRIC.value,
               os.path.join(_OUT.value, "curves.png"))
  text = table(_METRIC.value, est, verdicts)
  files.write_text(os.path.join(_OUT.value, "report.md"), text)
  files.write_json(os.path.join(_OUT.value, "report.json"), {
      "command": " ".join(["python -m experiments.report"] + sys.argv[1:]),
      "metric": _METRIC.value, "epoch": _EPOCH.value, "reps": _REPS.value,
      "lower_is_better": lower, "runs": specs,
      "per_seed": {n: s.tolist() for n, s in scores.items()}, "estimates": est,
      "verdicts": {f"{a} vs {b}": v for (a, b), v in verdicts.items()}, "curves": bands})
  print(text)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
