"""Reliability: preemption, kill -9, non-finite values and bad input lose nothing.

Every run is the tiny Point-Vel config of ``tiny.py``: in-process runs share one
Trainer (one trace), and the CLI children find its compiled functions in the persistent
compilation cache.  The long run (``LONG``) is trained once, uninterrupted, in-process;
the crash and signal tests must reproduce it bitwise.
"""
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest

from earjax.training import train_and_evaluate
from earjax.training.job import WATCHDOG_EXIT_CODE
from tiny import (REPO, cli_command, leaves, metrics_rows, restored_state, state_epochs,
                  tiny_config, tiny_flags)

LONG = {"num_epochs": 30, "eval_every": 3}
# Runs that are not killed at random moments save every third epoch (a save costs more
# than a tiny epoch); the state and metrics do not depend on it.
SPARSE_SAVES = {"checkpoint_every": 3}


@pytest.fixture(scope="session")  # session: xdist may interleave modules on a worker
def reference(tmp_path_factory):
  """The uninterrupted LONG run: (workdir, final state leaves, metrics rows)."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  config = tiny_config(**LONG, **SPARSE_SAVES)
  train_and_evaluate(config, workdir)
  _, state = restored_state(workdir, config)
  return workdir, leaves(state), metrics_rows(workdir)


def launch(workdir, **changes):
  return subprocess.Popen(cli_command(f"--workdir={workdir}",
                                      *tiny_flags(**{**LONG, **changes})),
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)


def wait_for_new_checkpoint(proc, workdir, timeout=300, epoch=None):
  """Blocks until the child has saved a checkpoint of this launch (or of ``epoch``), or
  has exited."""
  before = max(state_epochs(workdir), default=0)
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    latest = max(state_epochs(workdir), default=0)
    if (latest >= epoch) if epoch else (latest > before):
      return
    time.sleep(0.02)
  assert proc.poll() is not None, "no checkpoint within the timeout"


def assert_equals_reference(workdir, reference):
  _, want_leaves, want_rows = reference
  _, state = restored_state(workdir, tiny_config(**LONG))
  assert int(state.epoch) == LONG["num_epochs"]
  for got, want in zip(leaves(state), want_leaves):
    np.testing.assert_array_equal(got, want)
  assert metrics_rows(workdir) == want_rows   # every eval epoch once, in order, identical


def test_kill_9_at_three_random_moments_loses_nothing(tmp_path, reference):
  workdir = str(tmp_path / "crash")
  rng = random.Random(0)
  kills = []
  for _ in range(3):
    proc = launch(workdir)
    wait_for_new_checkpoint(proc, workdir)
    time.sleep(rng.uniform(0.0, 1.0))   # inside an epoch, an evaluation or a save
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    kills.append((proc.returncode, max(state_epochs(workdir), default=0)))
  assert sum(rc == -signal.SIGKILL for rc, _ in kills) >= 2, kills
  progress = [epoch for _, epoch in kills]
  assert progress == sorted(progress) and progress[-1] < LONG["num_epochs"], kills
  proc = launch(workdir)
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-2000:]
  assert_equals_reference(workdir, reference)
  # Orbax commits by renaming: no temporary checkpoint directory is ever listed.
  assert all(n.isdigit() for n in os.listdir(os.path.join(workdir, "checkpoints", "state")))


def test_sigterm_and_sigint_checkpoint_exit_0_and_resume_exactly(tmp_path, reference):
  workdir = str(tmp_path / "preempted")
  for sig in (signal.SIGTERM, signal.SIGINT):
    proc = launch(workdir, **SPARSE_SAVES)
    wait_for_new_checkpoint(proc, workdir)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    stop_line = [line for line in stderr.splitlines() if line.startswith("stopped by")]
    epoch = max(state_epochs(workdir))
    assert stop_line == [f"stopped by {sig.name} after epoch {epoch}; checkpoint "
                         f"{os.path.abspath(workdir)}/checkpoints/state/{epoch}; run the "
                         f"same command to resume"], stderr[-2000:]
    assert all(r["epoch"] <= epoch for r in metrics_rows(workdir))
  proc = launch(workdir, **SPARSE_SAVES)
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-2000:]
  assert_equals_reference(workdir, reference)


def test_same_seed_same_metrics_and_a_resumed_run_equals_a_straight_one(tmp_path, reference):
  workdir = str(tmp_path / "again")
  train_and_evaluate(tiny_config(**{**LONG, **SPARSE_SAVES, "num_epochs": 12}), workdir)
  train_and_evaluate(tiny_config(**LONG, **SPARSE_SAVES), workdir)
  assert_equals_reference(workdir, reference)


# ---- an epoch that makes no progress: the watchdog, and signals during it --------------

STALL = {"num_epochs": 6, "stall_epoch": 4}


def stderr_line(stderr, start):
  lines = [line for line in stderr.splitlines() if line.startswith(start)]
  assert len(lines) == 1, stderr[-2000:]
  return lines[0]


def test_watchdog_ends_a_stalled_epoch_and_the_run_resumes(tmp_path):
  workdir = str(tmp_path / "stalled")
  proc = launch(workdir, **STALL, watchdog_min_s=2.0, watchdog_factor=5.0)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == WATCHDOG_EXIT_CODE, stderr[-2000:]
  line = stderr_line(stderr, "watchdog: ")
  assert line.startswith("watchdog: epoch 4 made no progress in "), line
  assert ("(allowed 2 s; 4 envs = 2 tasks x 2, batch 4 per task); likely a deadlock of "
          "XLA's CPU runtime") in line, line
  assert line.endswith(f"last checkpoint {os.path.abspath(workdir)}/checkpoints/state/3 "
                       f"(intact); run the same command to resume"), line
  assert state_epochs(workdir) == [2, 3]
  proc = launch(workdir, **{**STALL, "stall_epoch": 0})
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-2000:]
  assert [r["epoch"] for r in metrics_rows(workdir)] == [3, 6]


@pytest.mark.parametrize("signals, code, start", [
    ((signal.SIGTERM,), 128 + signal.SIGTERM,
     "SIGTERM: epoch 4 did not end within stop_grace_s=1 s; exiting at once; "),
    ((signal.SIGTERM, signal.SIGINT), 128 + signal.SIGINT,
     "second SIGINT: exiting at once; "),
], ids=["grace_period", "second_signal"])
def test_a_signal_during_a_stalled_epoch_ends_the_process(tmp_path, signals, code, start):
  workdir = str(tmp_path / "stalled")
  grace = 1.0 if len(signals) == 1 else 600.0
  proc = launch(workdir, **STALL, stop_grace_s=grace)
  wait_for_new_checkpoint(proc, workdir, epoch=3)
  time.sleep(0.5)
  for sig in signals:
    proc.send_signal(sig)
    time.sleep(0.3)
  _, stderr = proc.communicate(timeout=60)
  assert proc.returncode == code, stderr[-2000:]
  line = stderr_line(stderr, start.split(":")[0] + ":")
  assert line == start + (f"last checkpoint {os.path.abspath(workdir)}/checkpoints/state/3 "
                          f"(intact); run the same command to resume"), line
  assert state_epochs(workdir) == [2, 3]
  _, state = restored_state(workdir, tiny_config(**STALL))
  assert int(state.epoch) == 3
