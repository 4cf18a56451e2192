"""The benchmark suite runs in ``--quick`` mode and writes well-formed records.

Speeds are never asserted here: ``python -m benchmarks.run`` measures them.  The quick
run compiles one small env rollout, a tiny update and the tiny training epoch of
``tests/test_training.py`` (same shapes, so the persistent cache shares it).
"""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"name", "value", "unit", "settings", "jax", "backend", "device", "git_commit"}


def test_quick_suite_writes_records(tmp_path):
  out = tmp_path / "suite.json"
  subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", f"--out={out}"],
                 cwd=REPO, check=True, capture_output=True, text=True,
                 env=dict(os.environ, JAX_PLATFORMS="cpu"))
  records = json.loads(out.read_text())
  assert isinstance(records, list) and records
  for r in records:
    assert KEYS <= set(r), r
    assert isinstance(r["name"], str) and isinstance(r["unit"], str)
    assert isinstance(r["settings"], dict) and r["settings"]["quick"] is True
    assert r["value"] is None or isinstance(r["value"], (int, float))
  names = {r["name"] for r in records}
  assert len(names) == len(records)
  assert "train/brax_matched/env_steps_per_s" in names
  for section in ("peak/", "env/", "learner/", "train/", "memory/"):
    assert any(n.startswith(section) for n in names), section
