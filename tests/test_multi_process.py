"""A multi-host job on loopback: two ``experiments.train`` processes joined by JAX's
distributed runtime (coordinator on 127.0.0.1, CPU collectives through gloo), one CPU
device each, on the tiny Point-Vel run over all four training tasks."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tiny import REPO, restored_state, tiny_config, tiny_flags

TASKS = (0, 1, 2, 3)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def command(workdir, num_epochs, *extra):
  return [sys.executable, "-m", "experiments.train",
          "--config=experiments/configs/point_vel.py:cpu", f"--workdir={workdir}",
          *tiny_flags(task_ids=TASKS, num_epochs=num_epochs), *extra]


def launch(workdir, num_epochs, port):
  """The two processes of one job."""
  return [subprocess.Popen(
      command(workdir, num_epochs, "--config.num_processes=2", f"--config.process_id={i}",
              f"--config.coordinator_address=127.0.0.1:{port}"),
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for i in range(2)]


def finish(procs, timeout=600):
  out = []
  for proc in procs:
    _, stderr = proc.communicate(timeout=timeout)
    out.append((proc.returncode, stderr))
  return out


def test_sigterm_stops_both_processes_at_one_epoch_and_the_job_resumes_as_two_devices(
    tmp_path):
  """SIGTERM to process 1: both processes checkpoint the same epoch and exit 0; the job
  relaunched runs 2 more epochs; its state equals, bitwise, that of one process with
  two devices running as many epochs straight (the same sums, the same collectives)."""
  job, reference = str(tmp_path / "job"), str(tmp_path / "reference")
  procs = launch(job, 500, free_port())
  metrics = os.path.join(job, "metrics.jsonl")
  deadline = time.monotonic() + 300
  while not (os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 2):
    assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.2)
  procs[1].send_signal(signal.SIGTERM)
  (code0, err0), (code1, err1) = finish(procs)
  assert code0 == code1 == 0, err0[-2000:] + err1[-2000:]
  last0, last1 = err0.strip().splitlines()[-1], err1.strip().splitlines()[-1]
  stopped = int(last1.split("after epoch ")[1].split(";")[0])
  assert last1.startswith(f"stopped by SIGTERM after epoch {stopped}; checkpoint ")
  assert last0.startswith(f"stopped by SIGTERM on process 1 after epoch {stopped}; ")
  assert os.path.isdir(os.path.join(job, "checkpoints", "state", str(stopped)))

  epochs = stopped + 2
  for code, stderr in finish(launch(job, epochs, free_port())):
    assert code == 0, stderr[-3000:]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  proc = subprocess.run(command(reference, epochs, "--config.num_devices=2"), cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Both checkpoints hold global arrays over two devices: read onto this process's one
  # (orbax reshards).
  config = tiny_config(task_ids=TASKS, num_epochs=epochs, num_devices=1)
  _, a = restored_state(job, config)
  _, b = restored_state(reference, config)
  assert int(a.epoch) == epochs
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  with open(metrics) as f:   # written by process 0 alone, one line per epoch
    assert [json.loads(line)["epoch"] for line in f] == list(range(1, epochs + 1))


@pytest.mark.parametrize("flags, line", [
    (["--config.process_id=2"], "error: process_id=2 is out of range for num_processes=2 "
                                "(0..1)"),
    (["--config.process_id=1", "--config.coordinator_timeout_s=2"],
     "error: process 1 of 2: no coordinator at 127.0.0.1:{port} within 2 s "
     "(Connection refused)")])
def test_bad_process_settings_are_refused_in_one_line(tmp_path, flags, line):
  port = free_port()
  proc = subprocess.run(
      command(str(tmp_path / "run"), 2, "--config.num_processes=2",
              f"--config.coordinator_address=127.0.0.1:{port}", *flags),
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [line.format(port=port)]
  assert not os.path.exists(tmp_path / "run")
