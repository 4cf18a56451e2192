"""Data parallelism (``earjax.parallel``) on four forced host devices: one process of its
own (``multi_device.py``; the device count is fixed when jax starts) runs the tiny
Point-Vel run on one device and on four and reports; these tests read its report."""
import json
import os
import subprocess
import sys

import pytest

from earjax import parallel
from earjax.config import validate
from tiny import REPO, tiny_config

# Float32 sums in another order: the all-reduce adds per-device partial gradients, one
# device adds the whole batch at once.  After 4 epochs of 3 steps the parameters differ
# by a few float32 ulps; 1e-6 leaves room and still fails any real divergence (a
# different batch or RNG stream moves them by orders of magnitude more).
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def report():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]))
  proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "multi_device.py")],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout)


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


@pytest.mark.parametrize("layout", parallel.LAYOUTS)
def test_the_compiled_epoch_all_reduces_and_never_touches_the_host(report, layout):
  ops = report[layout]["collectives"]
  assert ops["all-reduce"] >= 1
  assert ops["outfeed"] == ops["infeed"] == ops["send"] == ops["recv"] == 0
  assert ops["host_callbacks"] == 0


def test_a_sharded_run_resumes_bitwise_and_on_another_device_count(report):
  """Through the job: 2 epochs then extended to 4 on four devices equals 4 straight;
  a checkpoint of four devices resumed on one (orbax reshards it) continues alike."""
  assert report["resume_bitwise"]
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
