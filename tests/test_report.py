"""``experiments.report``: per-seed values read from batched and single-seed runs, rliable's
CIs around the mean, a difference called only where the intervals are apart."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tiny import REPO


def write_run(workdir, rows):
  os.makedirs(workdir)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")


def batched(values_per_epoch):
  """Rows of a batched run: epoch e's seeds have ``values_per_epoch[e]``."""
  return [{"epoch": e + 1, "env_steps": 100 * (e + 1), "eval/velocity_error_mean":
           float(np.mean(v)), "seeds": {"eval/velocity_error_mean": list(v)}}
          for e, v in enumerate(values_per_epoch)]


def report(tmp_path, *runs):
  out = tmp_path / "report"
  proc = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={','.join(runs)}",
                         "--metric=eval/velocity_error_mean", "--reps=500", f"--out={out}"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / "report.json") as f:
    return json.load(f), out


def test_separated_runs_are_called_and_overlapping_ones_are_not(tmp_path):
  good = [0.10, 0.11, 0.12, 0.09, 0.10]
  bad = [0.50, 0.52, 0.49, 0.51, 0.50]
  write_run(tmp_path / "good", batched([[1.0] * 5, good]))
  write_run(tmp_path / "bad", batched([[1.0] * 5, bad]))
  # Five single-seed runs joined with "+": the same values as "good".
  for i, v in enumerate(good):
    write_run(tmp_path / f"single{i}", [{"epoch": 1, "env_steps": 100,
                                         "eval/velocity_error_mean": 1.0},
                                        {"epoch": 2, "env_steps": 200,
                                         "eval/velocity_error_mean": v}])
  singles = "+".join(str(tmp_path / f"single{i}") for i in range(5))
  got, out = report(tmp_path, f"good={tmp_path / 'good'}", f"bad={tmp_path / 'bad'}",
                    f"singles={singles}")
  assert got["per_seed"]["good"] == good and got["per_seed"]["singles"] == good
  est = got["estimates"]
  assert est["good"]["n"] == 5 and est["good"]["mean"] == pytest.approx(np.mean(good))
  lo, hi = est["good"]["mean_ci"]
  assert lo <= np.mean(good) <= hi and min(good) <= lo and hi <= max(good)
  assert got["verdicts"]["good vs bad"] == "good < bad (better)"
  assert got["verdicts"]["good vs singles"] == "overlap: no difference called"
  assert got["lower_is_better"] is True
  assert (out / "curves.png").exists() and "| good | 5 |" in (out / "report.md").read_text()
  assert got["curves"]["good"]["env_steps"] == [100, 200]


def test_a_missing_metric_is_one_line(tmp_path):
  write_run(tmp_path / "run", batched([[0.1, 0.2]]))
  proc = subprocess.run([sys.executable, "-m", "experiments.report",
                         f"--runs=a={tmp_path / 'run'}", "--metric=eval/nothing",
                         f"--out={tmp_path / 'r'}"], cwd=REPO, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == ["error: no 'eval/nothing' in the run's rows"]


def test_seeded_intervals_repeat_and_bracket_the_mean():
  from earjax import statistics
  scores = {"a": np.array([0.1, 0.4, 0.2, 0.9, 0.5])}
  first = statistics.interval_estimates(scores, reps=300, seed=0)["a"]
  assert first == statistics.interval_estimates(scores, reps=300, seed=0)["a"]
  assert first["mean"] == pytest.approx(0.42) and first["n"] == 5
  assert 0.1 <= first["mean_ci"][0] < 0.42 < first["mean_ci"][1] <= 0.9


def tsac_rows(lambdas, sparse, budgets):
  """A batched TSAC run's rows: epoch e's seeds have ``lambdas[e]`` etc.; the shared
  policy's estimate is the final action's minus 1."""
  rows = []
  for e, (lam, q, b) in enumerate(zip(lambdas, sparse, budgets)):
    seeds = {"train/lagrange": lam, "train/sparse_return": q, "train/budget": b,
             "train/sp_sparse_return": [v - 1.0 for v in q]}
    rows.append({"epoch": 10 * (e + 1), "env_steps": 1000 * (e + 1),
                 **{k: float(np.mean(v)) for k, v in seeds.items()}, "seeds": seeds})
  return rows


def test_the_lagrangian_plot_reads_every_seeds_multiplier_and_gap(tmp_path):
  """``experiments.plot_lagrangian``: per seed, lambda's last and largest value, the last
  gap b - Q_s(final action) and lift Q_s(final) / Q_s(shared policy's), by hand; a
  malformed --runs pair is one line."""
  write_run(tmp_path / "cell", tsac_rows(lambdas=[[1.0, 2.0], [3.0, 1.5], [2.5, 0.0]],
                                         sparse=[[1.0, 1.0], [2.0, 4.0], [3.0, 5.0]],
                                         budgets=[[2.0, 2.0], [2.4, 4.8], [3.6, 6.0]]))
  out = tmp_path / "plot" / "lagrangian.png"
  proc = subprocess.run([sys.executable, "-m", "experiments.plot_lagrangian",
                         f"--runs=cell={tmp_path / 'cell'}", f"--out={out}"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert out.exists()
  with open(tmp_path / "plot" / "lagrangian.json") as f:
    got = json.load(f)["per_seed"]["cell"]
  assert got["env_steps"] == 3000
  assert got["lambda_last"] == [2.5, 0.0] and got["lambda_max"] == [3.0, 2.0]
  assert got["gap_last"] == pytest.approx([0.6, 1.0])
  assert got["lift_last"] == pytest.approx([3.0 / 2.0, 5.0 / 4.0])
  proc = subprocess.run([sys.executable, "-m", "experiments.plot_lagrangian", "--runs=cell",
                         f"--out={out}"], cwd=REPO, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: --runs takes name=workdir pairs, got 'cell'"]
