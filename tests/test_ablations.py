"""``experiments.ablations``: a variant's run, its three measures, the summary and its plot,
resuming a finished sweep without retraining, bad input in one line (tiny Point-Vel run),
and the release bug trained as the no-noise ablation."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from earjax.training import train_and_evaluate
from experiments import ablations
from tiny import (CPU_PRESET, REPO, leaves, metrics_rows, restored_state, tiny_config,
                  tiny_flags)


def sweep(root, *args):
  return subprocess.run(
      [sys.executable, "-m", "experiments.ablations", f"--config={CPU_PRESET}",
       *tiny_flags(), f"--root={root}", "--variants=no_noise", "--seeds=3",
       "--adapt_tasks=1", "--generations=1", "--betas=0,0.5,1", *args],
      cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a_variant_is_trained_measured_and_summarised(tmp_path):
  proc = sweep(tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  run = tmp_path / "no_noise" / "seed3"
  with open(run / "config.json") as f:
    config = json.load(f)
  assert config["ear_sac"]["lte_noise_std"] == 0.0 and config["seed"] == 3
  with open(tmp_path / "summary.json") as f:
    summary = json.load(f)
  assert summary["complete"] is True
  row = summary["runs"]["no_noise"]["seed3"]
  with open(run / "ablation_interpolate" / "vel-1.5_vel1.5.json".replace("-", "_minus_")) as f:
    interpolation = json.load(f)
  assert row["monotone"] == interpolation["linearity"]["deterministic"]["monotone"]
  a, b = np.asarray(interpolation["lte_a"]), np.asarray(interpolation["lte_b"])
  assert row["end_angle_deg"] == pytest.approx(
      np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))), abs=1e-3)
  # Unit-length ends: beta 0.5 is the middle of the arc too, so the two lines agree.
  assert row["r2_vs_arc"] == pytest.approx(row["r2_vs_line"], abs=1e-6)
  with open(run / "ablation_adapt" / "results.json") as f:
    cem = json.load(f)["methods"]["cem"]["tasks"]["vel1"]["final"]["deterministic"]
  assert row["cem_velocity_error"] == cem["velocity_error"]
  assert row["velocity_error"] == ablations.final_evaluation(str(run))[
      "eval/velocity_error_mean"]
  assert summary["summary"]["no_noise"]["velocity_error"] == {
      "mean": row["velocity_error"], "std": 0.0, "seeds": 1}
  assert (tmp_path / "interpolation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  # Finished stages are kept: the same command measures again without training.
  metrics = (run / "metrics.jsonl").read_text()
  checkpoints = sorted(os.listdir(run / "checkpoints" / "state"))
  again = sweep(tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  assert (run / "metrics.jsonl").read_text() == metrics
  assert sorted(os.listdir(run / "checkpoints" / "state")) == checkpoints
  with open(tmp_path / "summary.json") as f:
    assert json.load(f)["runs"] == summary["runs"]
  assert np.isfinite(row["cem_velocity_error"])


def test_an_unknown_variant_is_refused_in_one_line(tmp_path):
  proc = sweep(tmp_path, "--variants=base,no_lte")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: unknown variant(s) no_lte; valid: " + ", ".join(ablations.VARIANTS)]
  assert not os.listdir(tmp_path)


def test_the_release_bug_is_the_no_noise_ablation_bit_for_bit(tmp_path):
  """Variant (3) gives the decoder the clean LTE, as the release did (it computed Algorithm
  1's noisy LTE and dropped it), so it trains exactly as variant (2) (sigma = 0) does from
  the same seed, while the base (noise applied) trains otherwise: the sweep's release_bug
  and no_noise rows can differ by nothing."""
  runs = {}
  for variant in ("no_noise", "release_bug", "base"):
    config = ablations.variant_config(tiny_config(), variant, seed=0)
    train_and_evaluate(config, str(tmp_path / variant))
    runs[variant] = (leaves(restored_state(str(tmp_path / variant), config)[1]),
                     metrics_rows(str(tmp_path / variant)))
  (bug, bug_rows), (clean, clean_rows) = runs["release_bug"], runs["no_noise"]
  assert bug_rows == clean_rows
  for x, y in zip(bug, clean):
    np.testing.assert_array_equal(x, y)
  noisy, _ = runs["base"]
  assert any(not np.array_equal(x, y) for x, y in zip(noisy, clean))
