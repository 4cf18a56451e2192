"""Data parallelism (``earjax.parallel``) on four forced host devices: one process of its
own (``multi_device.py``; the device count is fixed when jax starts) runs the tiny
Point-Vel run on one device, on two and on four and reports; these tests read its report.
Then a multi-host job on loopback: two ``experiments.train`` processes joined by JAX's
distributed runtime (coordinator on 127.0.0.1, CPU collectives through gloo), one CPU
device each, against the two-device run.  (One file: the report is computed once.)"""
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

import earjax
from earjax import parallel
from earjax.config import validate
from multi_device import TWO_DEVICE_EPOCHS
from tiny import REPO, restored_state, tiny_config, tiny_flags

# Float32 sums in another order: the all-reduce adds per-device partial gradients, one
# device adds the whole batch at once.  After 4 epochs of 3 steps the parameters differ
# by a few float32 ulps; 1e-6 leaves room and still fails any real divergence (a
# different batch or RNG stream moves them by orders of magnitude more).
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  """multi_device.py's measurements, and ``two_device_workdir``: its two-device run."""
  workdir = str(tmp_path_factory.mktemp("two_devices") / "run")
  env = dict(os.environ,
             XLA_FLAGS=f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=4",
             PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]))
  proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "multi_device.py"),
                         workdir], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(json.loads(proc.stdout), two_device_workdir=workdir)


@pytest.mark.parametrize("layout", parallel.LAYOUTS)
def test_four_devices_give_the_one_device_run_within_float_tolerance(report, layout):
  assert report["devices"] == 4
  got = report[layout]
  assert got["counters_equal"]
  assert got["learner_max_diff"] <= TOLERANCE
  assert got["replay_max_diff"] <= TOLERANCE   # same actions, hence the same transitions
  assert got["learner_replicated"]
  assert got["env_spec"] == "P('data',)"
  assert got["replay_spec"] == {"tasks": "P('data',)", "storage": "P(None, 'data')"}[layout]


# MAML's meta-iteration standardises advantages and fits its baseline by a ridge solve,
# which magnify the all-reduce's reordering: 2.5e-5 measured after 4 meta-iterations on
# 4 devices (2026-11-23); 1e-4 leaves room.
MAML_TOLERANCE = 1e-4


def test_four_devices_split_a_batch_of_four_seeds_as_one_device_runs_it(report):
  """Seeds over devices: whole seeds per device; the epoch's one collective is a scalar
  all-reduce (whether the updates are due, read off seed 0, reaches every device); the
  state after four epochs equals the one-device batch's."""
  got = report["seeds"]
  assert got["spec"] == "P('data',)"
  assert got["collectives"]["all-reduce"] <= 1 and got["collectives"]["all-gather"] == 0
  assert got["state_max_diff"] <= TOLERANCE


def test_maml_lays_its_episodes_over_the_devices(report):
  got = report["maml"]
  assert got["learner_max_diff"] <= MAML_TOLERANCE
  assert got["collectives"]["all-reduce"] >= 1
  assert got["collectives"]["host_callbacks"] == got["collectives"]["outfeed"] == 0


@pytest.mark.parametrize("layout", parallel.LAYOUTS)
def test_the_compiled_epoch_all_reduces_and_never_touches_the_host(report, layout):
  ops = report[layout]["collectives"]
  assert ops["all-reduce"] >= 1
  assert ops["outfeed"] == ops["infeed"] == ops["send"] == ops["recv"] == 0
  assert ops["host_callbacks"] == 0


def test_a_sharded_run_resumes_on_another_device_count(report):
  """Through the job: a checkpoint of four devices resumed on one (orbax reshards it)
  continues as the four-device run does.  (Resumed on as many devices, bitwise: the
  two-process job below.)"""
  assert report["resume_on_one_epoch"] == 4
  assert report["resume_on_one_max_diff"] <= TOLERANCE


def test_device_counts_that_do_not_divide_the_batches_are_refused_in_one_line(report):
  refusals = report["refusals"]
  assert refusals["more_than_available"] == "num_devices=8, but the job has 4 device(s)"
  assert refusals["three_devices_four_tasks"].splitlines() == [
      "shard_layout=tasks needs the task count (4) divisible by the device count (3); use "
      "shard_layout=storage or another num_devices",
      "the SGD batch (tasks x batch_size_per_task = 16) is not divisible by the device "
      "count (3)"]
  assert refusals["storage_batch"] == ("the SGD batch (tasks x batch_size_per_task = 16) "
                                       "is not divisible by the device count (3)")


def test_one_device_annotates_nothing():
  assert parallel.Layout.for_run(tiny_config(num_devices=1)) is None
  assert parallel.problems(tiny_config(num_devices=1), num_tasks=3) == []


def test_bad_parallel_keys_are_refused_in_one_line():
  assert validate(tiny_config(shard_layout="rows")) == [
      "shard_layout must be one of tasks, storage, got 'rows'"]
  assert validate(tiny_config(num_devices=-1)) == [
      "num_devices must be a non-negative integer, got -1"]


def test_cem_lays_its_candidates_over_the_devices_and_finds_the_same(report):
  """3 tasks x 90 candidates over 4 devices (an uneven split XLA pads): the same scores,
  elites and best LTEs as on one device; the compiled search has collectives (the
  per-task top-k reads every device's scores)."""
  got = report["cem"]
  assert got["devices"] == 4
  assert got["max_diff"] <= TOLERANCE
  assert got["collectives"] >= 1


# ---- two processes on loopback ---------------------------------------------------------

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
    tmp_path, report):
  """SIGTERM to process 1: both processes checkpoint the same epoch and exit 0; the job
  relaunched runs to its end; its state equals, bitwise, that of one process with two
  devices running as many epochs straight (the same sums, the same collectives)."""
  job, reference = str(tmp_path / "job"), report["two_device_workdir"]
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

  epochs = TWO_DEVICE_EPOCHS
  assert stopped < epochs, f"the job passed epoch {epochs} before SIGTERM stopped it"
  for code, stderr in finish(launch(job, epochs, free_port())):
    assert code == 0, stderr[-3000:]
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
  # Read back here, on one device: the two-process job's LTEs are the saving job's
  # (its states equal the two-device reference's, whose LTEs that job read).
  _, ltes = earjax.load_policy(job, "latest")
  np.testing.assert_array_equal(ltes, report["two_device_ltes"])
  run_the_lte_tools(job, tmp_path)


def run_the_lte_tools(workdir, out):
  """``interpolate`` and ``adapt`` on ``workdir``'s latest checkpoint, each in a process
  of its own (one device)."""
  for tool, flags in (("interpolate", ["--task_a=vel-1.5", "--task_b=vel1.5",
                                       "--betas=0,1", "--seeds=1"]),
                      ("adapt", ["--tasks=1", "--methods=cem", "--generations=1",
                                 "--eval_episodes=1", "--nosave_skills"])):
    proc = subprocess.run([sys.executable, "-m", f"experiments.{tool}",
                           f"--workdir={workdir}", "--checkpoint=latest",
                           f"--out_dir={out / tool}", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (tool, proc.stderr[-3000:])


def test_a_run_saved_on_four_devices_is_read_on_one(report, tmp_path):
  """``load_policy`` in this one-device process reads the four-device run's best and
  latest checkpoints; the latest's LTEs equal, bitwise, those its saving job read; the
  LTE tools run on it."""
  workdir = report["four_device_workdir"]
  _, ltes = earjax.load_policy(workdir, "latest")
  np.testing.assert_array_equal(ltes, report["four_device_ltes"])
  _, best = earjax.load_policy(workdir)
  assert best.shape == ltes.shape and np.isfinite(best).all()
  run_the_lte_tools(workdir, tmp_path)


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


def wait_for_epochs(workdir, epochs, procs, timeout=300):
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.monotonic() + timeout
  while not (os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= epochs):
    assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.2)


PEER_TIMEOUT_S = 5


@pytest.mark.parametrize("lost", [1, 0])
def test_a_lost_peer_stops_the_others_in_one_line_and_the_job_resumes(tmp_path, lost):
  """``kill -9`` of process 1 (or of the coordinator, process 0): the survivor exits 4
  within the peer timeout with one line that names the lost process, the epoch it
  reached and the last intact checkpoint, no stack trace (XLA's report goes to the
  workdir's logs); relaunching both processes resumes the job to its end (after the
  loss of process 1; the relaunch is the same after either)."""
  job, port = str(tmp_path / "job"), free_port()
  procs = [subprocess.Popen(
      command(job, 500, "--config.num_processes=2", f"--config.process_id={i}",
              f"--config.coordinator_address=127.0.0.1:{port}",
              f"--config.peer_timeout_s={PEER_TIMEOUT_S}"),
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  wait_for_epochs(job, 2, procs)
  procs[lost].kill()
  killed = time.monotonic()
  survivor = procs[1 - lost]
  _, stderr = survivor.communicate(timeout=120)
  took = time.monotonic() - killed
  procs[lost].communicate()
  assert survivor.returncode == 4, stderr[-3000:]
  assert took < PEER_TIMEOUT_S + 15, took
  lines = [line for line in stderr.replace("\r", "\n").splitlines()
           if line.strip() and "env-step" not in line and "cpu_aot_loader" not in line]
  who = ("process 1 (no heartbeat for peer_timeout_s=5 s)" if lost == 1
         else "the coordinator, process 0 (its service stopped answering)")
  assert len(lines) == 1 and lines[0].startswith(f"error: lost {who}: process {1 - lost} "
                                                 f"stopped after epoch "), lines
  assert "; last checkpoint " in lines[0] and " (intact); relaunch every process with " \
      "the same command to resume" in lines[0]
  log = os.path.join(job, "logs", f"process_{1 - lost}.log")
  assert lines[0].endswith(f"(the runtime's report: {log})") and os.path.getsize(log) > 0
  if lost == 0:   # the relaunch does not depend on which process was lost: tested once
    return
  # Relaunched, the job resumes from its last checkpoint and runs to its end.
  for code, err in finish(launch(job, 6, free_port())):
    assert code == 0, err[-3000:]
  with open(os.path.join(job, "metrics.jsonl")) as f:
    assert [json.loads(line)["epoch"] for line in f] == list(range(1, 7))
