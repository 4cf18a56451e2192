"""One job per workdir (``earjax.training.lock``): a second job is refused in one line, a
crashed job's leftover lock is taken over, a finished job leaves nothing behind."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from earjax.config import ConfigError
from earjax.training import train_and_evaluate
from earjax.training.lock import WorkdirLock
from tiny import REPO, cli_command, metrics_rows, tiny_config, tiny_flags


def busy_line(workdir, pid) -> str:
  return (rf"^workdir '{workdir}' is in use by another job \(process 0: pid {pid} on "
          rf"{socket.gethostname()}, since [\d\-T:]+\); wait for it to end or use another "
          rf"workdir$")


def test_a_job_on_a_held_workdir_is_refused_and_writes_nothing(tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  with WorkdirLock(workdir, 0):
    with pytest.raises(ConfigError, match=busy_line(workdir, os.getpid())):
      train_and_evaluate(tiny_config(num_epochs=1), workdir)
    assert os.listdir(workdir) == [".lock.process_0"]
  assert os.listdir(workdir) == []   # released: the lock file goes with it


def test_a_crashed_jobs_leftover_lock_is_taken_over(tmp_path):
  """A process that held the lock is killed (-9): its file stays, naming it, and the next
  job takes the workdir over; when that job ends, the file is gone."""
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\n"
       "from earjax.training.lock import WorkdirLock\n"
       "WorkdirLock(sys.argv[1], 0).acquire()\nprint('held', flush=True)\ntime.sleep(120)",
       workdir], cwd=REPO, stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(ConfigError, match=busy_line(workdir, holder.pid)):
    WorkdirLock(workdir, 0).acquire()
  holder.kill()
  holder.wait()
  with open(os.path.join(workdir, ".lock.process_0")) as f:
    assert json.load(f)["pid"] == holder.pid    # the leftover
  assert train_and_evaluate(tiny_config(num_epochs=1), workdir)["epoch"] == 1
  assert not os.path.exists(os.path.join(workdir, ".lock.process_0"))


def test_a_job_whose_lock_file_was_removed_leaves_the_next_jobs_lock_alone(tmp_path):
  """The workdir's lock file removed under a running job (``rm -rf`` of the workdir's
  contents) and a second job started there: when the first ends, the second still holds
  the workdir (a third is refused) and, when it ends, it removes its file without error.
  (Before, the first job removed the second's file and the second crashed at its end on
  the missing file, after a complete run.)"""
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  path = os.path.join(workdir, ".lock.process_0")
  first = WorkdirLock(workdir, 0)
  first.acquire()
  os.remove(path)
  with WorkdirLock(workdir, 0):
    first.release()
    assert os.path.exists(path)
    with pytest.raises(ConfigError, match=busy_line(workdir, os.getpid())):
      WorkdirLock(workdir, 0).acquire()
  assert os.listdir(workdir) == []


def test_the_same_command_twice_runs_once(tmp_path):
  """``experiments.train`` started twice on one workdir, a second apart: the second exits
  2 with one line; the first runs on alone (no interleaved metrics) and stops cleanly."""
  workdir = str(tmp_path / "run")
  command = cli_command(f"--workdir={workdir}", *tiny_flags(num_epochs=10_000))
  first = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
  lock = os.path.join(workdir, ".lock.process_0")
  deadline = time.monotonic() + 120
  while not os.path.exists(lock):
    assert time.monotonic() < deadline and first.poll() is None
    time.sleep(0.2)
  time.sleep(1.0)
  second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert second.returncode == 2
  lines = second.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      f"error: workdir '{workdir}' is in use by another job (process 0: pid {first.pid} "), lines
  first.send_signal(signal.SIGTERM)
  _, stderr = first.communicate(timeout=300)
  assert first.returncode == 0, stderr[-2000:]
  epochs = [r["epoch"] for r in metrics_rows(workdir)]
  assert epochs == list(range(1, len(epochs) + 1))
