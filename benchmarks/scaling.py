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
``brax_matched_overlap`` (the same with ``overlap_collection``: collection and updates
independent inside the epoch),
and the ``paper`` preset of HalfCheetah-Vel (10 tasks x 1 env, batch 10 x 128) in every
layout the device count divides; a setting a count does not divide is recorded as
skipped with the reason (``parallel.problems``).  ``tiny`` (Point-Vel, seconds) checks
the tool itself.

``--arithmetic=8,16``: the ``paper`` preset on more devices than this box has, without
timing (``arithmetic``): per-device batch and learner FLOPs, the bytes XLA all-reduces
per update, which layouts divide (a child with 16 forced host devices).
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from benchmarks import common
from benchmarks import learner_throughput
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
_ARITHMETIC = flags.DEFINE_list(
    "arithmetic", ["8", "16"], "Device counts for the paper preset's arithmetic (no timing).")
_ARITHMETIC_CHILD = flags.DEFINE_integer("arithmetic_child", 0, "Internal.")

COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute",
               "reduce-scatter")


def overlapped(config):
  config.overlap_collection = True
  return config


def configs(setting: str, num_devices: int):
  """(layout, config) pairs of ``setting`` at ``num_devices``."""
  base = {"brax_matched": settings_lib.brax_matched,
          "brax_matched_overlap": lambda: overlapped(settings_lib.brax_matched()),
          "paper": lambda: settings_lib.preset("paper"), "tiny": settings_lib.tiny}[setting]
  layouts = ("tasks",) if num_devices == 1 else ("tasks", "storage")
  for layout in layouts:
    config = base()
    config.num_devices, config.shard_layout = num_devices, layout
    yield layout, config


def collective_fraction(trainer, state, num_devices: int) -> tuple[float, object]:
  """(share of the devices' time in collective ops during one epoch, new state)."""
  holder = {}

  def epoch():
    holder["out"] = trainer.epoch(state)
    jax.block_until_ready(holder["out"][1])

  events, wall = common.traced(epoch)
  state = holder["out"][0]
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


def allreduce_bytes(hlo_text: str) -> int:
  """Bytes of the arrays the all-reduce ops of a compiled module's text produce."""
  sizes = {"f32": 4, "s32": 4, "u32": 4, "f16": 2, "bf16": 2, "f64": 8, "pred": 1}
  total = 0
  for line in hlo_text.splitlines():
    if " all-reduce(" not in line or "=" not in line:
      continue
    shapes = line.split("=", 1)[1].split(" all-reduce(", 1)[0]
    for dtype, dims in re.findall(r"(\w+)\[([\d,]*)\]", shapes):
      total += sizes.get(dtype, 4) * math.prod(int(d) for d in dims.split(",") if d)
  return total


def arithmetic(device_counts: list[int]) -> list[dict]:
  """The ``paper`` preset over more devices than this box has, without timing: its
  parameters, the per-device SGD batch and learner FLOPs, the bytes XLA all-reduces per
  update (the update compiled for the devices, batch split, state replicated; read from
  its HLO), and which layouts and ``envs_per_task`` divide.  Runs with
  ``max(device_counts)`` forced host devices."""
  config = settings_lib.preset("paper")
  config.num_devices = 1    # the update is laid out below, per device count
  trainer = Trainer.from_config(config)
  state = trainer.agent.init(jax.random.PRNGKey(0))
  batch = learner_throughput.random_batch(trainer, jax.random.PRNGKey(1))
  flops = learner_throughput.update_flops(trainer, state, batch)
  name = "scaling/arithmetic/paper"
  settings = {"env": config.env_name, "num_tasks": trainer.num_tasks,
              "sgd_batch": int(batch["task"].shape[0])}
  records = [common.record(f"{name}/params/{field}", sum(
      x.size for x in jax.tree.leaves(getattr(state, field))), "count", **settings)
             for field in state.__dataclass_fields__]
  records.append(common.record(f"{name}/learner_mflop_per_update", flops / 1e6, "MFLOP",
                               **settings))
  for n in device_counts:
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:n]), (parallel.DATA,))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(parallel.DATA))
    update = jax.jit(trainer.agent.update, in_shardings=(replicated, split, replicated),
                     out_shardings=replicated)
    text = update.lower(state, batch, jax.random.PRNGKey(0)).compile().as_text()
    at = dict(settings, num_devices=n)
    records += [
        common.record(f"{name}/devices{n}/per_device_sgd_batch",
                      settings["sgd_batch"] // n, "samples", **at),
        common.record(f"{name}/devices{n}/learner_mflop_per_device_per_update",
                      flops / 1e6 / n, "MFLOP", **at),
        common.record(f"{name}/devices{n}/allreduce_mb_per_update",
                      allreduce_bytes(text) / 1e6, "MB", **at)]
    for layout in parallel.LAYOUTS:
      for envs_per_task in (1, 4, 8):
        config.num_devices, config.shard_layout = n, layout
        config.envs_per_task = envs_per_task
        problems = parallel.problems(config, trainer.num_tasks)
        records.append(common.record(
            f"{name}/devices{n}/{layout}/envs_per_task{envs_per_task}/divides",
            float(not problems), "flag", reason="; ".join(problems), **at))
  return records


def run_child(flag: str, n: int, records: list[dict]) -> list[dict]:
  """The records of ``--{flag}=n`` run in a child with ``n`` forced host devices; on a
  failure, ``records`` (those before) are written and the job exits naming it."""
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
  proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", f"--{flag}={n}",
                         f"--repeats={_REPEATS.value}",
                         f"--settings={','.join(_SETTINGS.value)}",
                         f"--arithmetic={','.join(_ARITHMETIC.value)}"],
                        env=env, capture_output=True, text=True, check=False)
  if proc.returncode:
    common.write(records, _OUT.value)
    sys.exit(f"{flag}={n} failed (the records before it are in {_OUT.value}):\n"
             f"{proc.stderr[-3000:]}")
  return json.loads(proc.stdout)


def main(argv):
  del argv
  if _CHILD.value:
    json.dump(child(_CHILD.value), sys.stdout)
    return
  if _ARITHMETIC_CHILD.value:
    json.dump(arithmetic([int(d) for d in _ARITHMETIC.value]), sys.stdout)
    return
  os.makedirs(os.path.dirname(_OUT.value) or ".", exist_ok=True)
  records = []
  for n in (int(d) for d in _DEVICES.value if d):
    records += run_child("child", n, records)
  if _ARITHMETIC.value:
    records += run_child("arithmetic_child", max(int(d) for d in _ARITHMETIC.value), records)
  common.write(records, _OUT.value)
  print(common.markdown_table(records))


if __name__ == "__main__":
  app.run(main)
