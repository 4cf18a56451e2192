"""Compile time cold and warm, and peak memory, of fresh processes running one epoch.

The child (``benchmarks.first_epoch``) runs twice with ``$EARJAX_CACHE_DIR`` pointing at
a new empty directory: the first run compiles everything cold, the second is a relaunch
that finds the compilation and program caches warm.  The relaunch figure is the child's
whole wall time, spawn to exit, imports included.  ``measure_cli`` does the same with
the user's command, ``experiments.train`` of one epoch into a new workdir (the job's
evaluation, checkpoint and metrics included).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common


def run_child(setting: str, cache_dir: str, timeout_s: float) -> tuple[dict, float]:
  """(the child's JSON line, wall seconds from spawn to exit)."""
  env = dict(os.environ, EARJAX_CACHE_DIR=cache_dir)
  start = time.perf_counter()
  done = subprocess.run([sys.executable, "-m", "benchmarks.first_epoch",
                         f"--setting={setting}"], capture_output=True, text=True,
                        env=env, timeout=timeout_s, check=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  wall = time.perf_counter() - start
  return json.loads(done.stdout.strip().splitlines()[-1]), wall


CLI_PRESET = "experiments/configs/halfcheetah_vel.py:cpu"


def measure_cli(preset: str = CLI_PRESET, timeout_s: float = 900) -> list[dict]:
  """``compile/cli/{cold,warm}/process_s``: ``experiments.train --config=<preset>
  --config.num_epochs=1`` spawn to exit, into a new workdir, empty caches, then warm."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  walls = []
  with tempfile.TemporaryDirectory(prefix="earjax_cli_") as tmp:
    env = dict(os.environ, EARJAX_CACHE_DIR=os.path.join(tmp, "cache"))
    for run in ("cold", "warm"):
      start = time.perf_counter()
      subprocess.run([sys.executable, "-m", "experiments.train", f"--config={preset}",
                      "--config.num_epochs=1", f"--workdir={os.path.join(tmp, run)}"],
                     capture_output=True, text=True, env=env, timeout=timeout_s,
                     check=True, cwd=repo)
      walls.append(time.perf_counter() - start)
  return [common.record(f"compile/cli/{run}/process_s", wall, "s", preset=preset,
                        num_epochs=1)
          for run, wall in zip(("cold", "warm"), walls)]


def measure(setting: str, timeout_s: float = 600) -> list[dict]:
  """Records ``compile/<setting>/{cold,warm}/...`` and ``memory/<setting>/peak_rss_mb``."""
  with tempfile.TemporaryDirectory(prefix="earjax_cold_cache_") as cache_dir:
    cold, cold_wall = run_child(setting, cache_dir, timeout_s)
    warm, warm_wall = run_child(setting, cache_dir, timeout_s)
  prefix = f"compile/{setting}"
  return [
      common.record(f"{prefix}/cold/epoch_compile_s", cold["epoch_compile_s"], "s",
                    setting=setting, process_wall_s=cold_wall, **cold),
      common.record(f"{prefix}/cold/to_first_epoch_s", cold_wall, "s",
                    setting=setting, **cold),
      common.record(f"{prefix}/warm/to_first_epoch_s", warm_wall, "s",
                    setting=setting, **warm),
      common.record(f"memory/{setting}/peak_rss_mb", max(cold["peak_rss_mb"],
                                                         warm["peak_rss_mb"]), "MiB",
                    setting=setting)]
