"""Data-parallel scaling of the training epoch over forced host devices (issue 14).

  python -m benchmarks.scaling --devices=1,2,4 --out=runs/bench/scaling_cpu.json

Each device count N runs in a child process of its own (the device count is fixed when
jax starts: ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).  Per setting it
records env-steps/s and updates/s of ``Trainer.epoch`` (``train_throughput.measure``:
compile, warm-up, median of ``--repeats``) with ``num_devices=N``, and the fraction of
the epoch the devices spend in collectives: one more epoch is profiled
(``jax.profiler``, a Perfetto trace) and the durations of its all-reduce, all-gather,
all-to-all and collective-permute ops, summed over devices, are divided by N times the
epoch's wall time.

Settings: ``brax_matched`` (one task, 64 envs, batch 256: only ``storage`` splits it),
and the ``paper`` preset of HalfCheetah-Vel (10 tasks x 1 env, batch 10 x 128) in every
layout the device count divides; a setting a count does not divide is recorded as
skipped with the reason (``parallel.problems``).  ``tiny`` (Point-Vel, seconds) checks
the tool itself.
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax

from benchmarks import common
from benchmarks import settings as settings_lib
from benchmarks import train_throughput
from earjax import envs
from earjax import parallel
from earjax.training import Trainer

_DEVICES = flags.DEFINE_list("devices", ["1", "2", "4"], "Device counts to time.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed epochs per setting.")
_SETTINGS = flags.DEFINE_list("settings", ["brax_matched", "paper"], "Settings to time.")
_OUT = flags.DEFINE_string("out", "runs/bench/scaling_cpu.json", "JSON records.")
_CHILD = flags.DEFINE_integer("child", 0, "Internal: time this device count here.")

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute",
               "reduce-scatter")


def configs(setting: str, num_devices: int):
  """(layout, config) pairs of ``setting`` at ``num_devices``."""
  base = {"brax_matched": settings_lib.brax_matched,
          "paper": lambda: settings_lib.preset("paper"), "tiny": settings_lib.tiny}[setting]
  layouts = ("tasks",) if num_devices == 1 else ("tasks", "storage")
  for layout in layouts:
    config = base()
    config.num_devices, config.shard_layout = num_devices, layout
    yield layout, config


def collective_fraction(trainer, state, num_devices: int) -> tuple[float, object]:
  """(share of the devices' time in collective ops during one epoch, new state)."""
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    start = time.perf_counter()
    state, metrics = trainer.epoch(state)
    jax.block_until_ready(metrics)
    wall = time.perf_counter() - start
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"),
                     recursive=True)[0]
    with gzip.open(path) as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  busy_us = sum(e.get("dur", 0) for e in events
                if e.get("ph") == "X" and e.get("name", "").startswith(COLLECTIVES))
  return busy_us / 1e6 / (num_devices * wall), state


def child(num_devices: int) -> list[dict]:
  assert jax.device_count() == num_devices, jax.devices()
  records = []
  for setting in _SETTINGS.value:
    for layout, config in configs(setting, num_devices):
      name = f"scaling/{setting}/{layout}/devices{num_devices}"
      problems = parallel.problems(config, len(config.task_ids) or envs.make(
          config.env_name).num_tasks)
      if problems:
        records.append(common.record(f"{name}/skipped", 1, "flag", reason="; ".join(problems)))
        continue
      trainer = Trainer.from_config(config)
      measured = train_throughput.measure(name, config, _REPEATS.value, trainer)
      # Its programs are compiled now: one epoch to warm up, one profiled.
      state, _ = trainer.epoch(trainer.init(jax.random.PRNGKey(0), trainer.task_params))
      fraction, _ = collective_fraction(trainer, state, num_devices)
      settings = dict(measured[0]["settings"], num_devices=num_devices, shard_layout=layout)
      for record in measured:
        record["settings"] = settings
      records += measured
      records.append(common.record(f"train/{name}/collective_fraction", fraction, "fraction",
                                   **settings))
  return records


def main(argv):
  del argv
  if _CHILD.value:
    json.dump(child(_CHILD.value), sys.stdout)
    return
  records = []
  for n in (int(d) for d in _DEVICES.value):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", f"--child={n}",
                           f"--repeats={_REPEATS.value}",
                           f"--settings={','.join(_SETTINGS.value)}"],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
      sys.exit(f"devices={n} failed:\n{proc.stderr[-3000:]}")
    records += json.loads(proc.stdout)
  os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
  common.write(records, _OUT.value)
  print(common.markdown_table(records))


if __name__ == "__main__":
  app.run(main)
