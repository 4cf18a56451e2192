"""The benchmark suite: env, learner, end-to-end training, CEM, compile time, memory.

  python -m benchmarks.run [--quick] [--sections=env,learner,...] --out=FILE.json

Every section returns records (``common.record``: name, value, unit, settings, jax/device
info, git commit); the suite prints them as a table and writes them as one JSON list.
``--merge`` replaces same-named records of an existing ``--out`` file and keeps the rest,
so a long run can be split into several shorter ones.  ``--quick`` is a smoke run (one
family (Point-Vel: nothing of MJX compiles), tiny batch and networks, one repeat; no
CEM, no cold-compile children): its numbers are not measurements.
"""
from __future__ import annotations

import dataclasses
import json
import os

from absl import app
from absl import flags

from benchmarks import cem_throughput
from benchmarks import common
from benchmarks import compile_time
from benchmarks import env_throughput
from benchmarks import learner_throughput
from benchmarks import settings as settings_lib
from benchmarks import train_throughput
from earjax import envs
from earjax.compilation_cache import enable_compilation_cache
from earjax.config import default_config

_QUICK = flags.DEFINE_bool("quick", False, "Smoke run: seconds, not measurements.")
_SECTIONS = flags.DEFINE_list("sections", None,
                              "Sections to run (default: all); peak always runs.")
_ENVS = flags.DEFINE_list("envs", list(envs.jax_names()), "Families of the env section.")
_BATCHES = flags.DEFINE_list("batches", ["64", "256", "1024", "4096"],
                             "Env batch sizes of the env section.")
_ENV_STEPS = flags.DEFINE_integer("env_steps_per_call", 12_800,
                                  "Env steps (all envs) per timed env call.")
_ENV_TIMEOUT = flags.DEFINE_integer("env_timeout_s", 300,
                                    "Give up on one family and batch after this long.")
_TRAIN = flags.DEFINE_list("train", ["brax_matched", "brax_matched_ear",
                                     "brax_matched_spring", "cpu", "cpu_ohe", "cpu_tsac",
                                     "paper"],
                           "Settings of the train section.")
_COMPILE = flags.DEFINE_list("compile", ["brax_matched"], "Settings of the compile section.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls; medians are reported.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")
_MERGE = flags.DEFINE_bool("merge", False, "Merge into an existing --out file.")
_TABLE = flags.DEFINE_string("table", None,
                             "Only print this JSON file's records as a Markdown table.")


@dataclasses.dataclass
class Options:
  quick: bool
  envs: list[str]
  batches: list[int]
  env_steps_per_call: int
  env_timeout_s: int
  train: list[str]
  compile: list[str]
  repeats: int
  peak_gflops: float = 0.0
  background_cpu_percent: float = 0.0


TRAIN_SETTINGS = {
    "brax_matched": settings_lib.brax_matched,
    "brax_matched_ear": lambda: settings_lib.brax_matched(agent="ear_sac"),
    "brax_matched_spring": lambda: settings_lib.brax_matched(backend="spring"),
    # brax's setting at brax's asset's solver budget (4/50): the side-by-side's other half
    "brax_matched_brax_solver": lambda: settings_lib.brax_matched(
        solver=settings_lib.BRAX_ASSET_SOLVER),
    "cpu": lambda: settings_lib.preset("cpu"),
    "cpu_ohe": lambda: settings_lib.preset("cpu", agent="ohe_sac"),
    "cpu_tsac": lambda: settings_lib.preset("cpu", agent="tsac"),
    "paper": lambda: settings_lib.preset("paper"),
    # Meta-World MT10 on the host (envpool): MTSAC at the MT10 presets (not run by default)
    "mt10_cpu": lambda: settings_lib.mt10("cpu"),
    "mt10_cpu_tsac": lambda: settings_lib.mt10("cpu", agent="tsac"),
    "mt10_paper": lambda: settings_lib.mt10("paper"),
}
# At most this many timed epochs: a paper epoch (200 updates of 23 GFLOP each) takes
# about 40 s on the 2-core CPU.
TRAIN_MAX_REPEATS = {"paper": 1, "mt10_paper": 1}


def peak_section(opts: Options) -> list[dict]:
  """The dense f32 matmul peak every GFLOP/s figure is set against, and what else was
  running on the machine just before."""
  load = common.background_load(0.5 if opts.quick else 2.0)
  opts.background_cpu_percent = load["cpu_percent"]
  opts.peak_gflops = common.matmul_peak_gflops(repeats=3 if opts.quick else 10)
  return [common.record("machine/background_cpu_percent", load["cpu_percent"], "%",
                        busy=load["busy"]),
          common.record("peak/matmul_f32_2048/gflops", opts.peak_gflops, "GFLOP/s",
                        size=2048)]


def env_section(opts: Options) -> list[dict]:
  """Every family at every batch (a family's larger batches are skipped after a
  failure); each call runs about ``env_steps_per_call`` env steps."""
  records = []
  for name in opts.envs:
    for batch in opts.batches:
      steps = max(4, opts.env_steps_per_call // batch)
      found = env_throughput.child(name, batch, steps, opts.repeats, opts.env_timeout_s)
      records += found
      common.print_table(found)
      if found[0]["value"] is None:
        break
  return records


def learner_section(opts: Options) -> list[dict]:
  """The EAR update at the paper's widths and batch; the brax-matched SAC update.  The
  peak is measured again right before each (a job starting elsewhere on a shared machine
  halves it); the higher of the two is the reference."""
  if opts.quick:
    return learner_throughput.measure("paper", settings_lib.tiny(), 2, 1, opts.peak_gflops)
  records = []
  for name, config, steps in (("paper", default_config(), 10),
                              ("brax_matched", settings_lib.brax_matched(), 50)):
    peak = max(opts.peak_gflops, common.matmul_peak_gflops())
    records += learner_throughput.measure(name, config, steps, opts.repeats, peak)
  return records


def train_section(opts: Options) -> list[dict]:
  """Env-steps/s of the training epoch at each setting of ``--train``."""
  if opts.quick:
    return train_throughput.measure("brax_matched", settings_lib.tiny(), 1)
  records = []
  for name in opts.train:
    repeats = min(opts.repeats, TRAIN_MAX_REPEATS.get(name, opts.repeats))
    records += train_throughput.measure(name, TRAIN_SETTINGS[name](), repeats)
    common.print_table(records[-4:])
  return records


def compile_section(opts: Options) -> list[dict]:
  """Cold and warm compile of the epoch in fresh processes, and the CLI's cold and warm
  one-epoch run (skipped by ``--quick``)."""
  if opts.quick:
    return []
  return ([r for setting in opts.compile for r in compile_time.measure(setting)]
          + compile_time.measure_cli())


def cem_section(opts: Options) -> list[dict]:
  """One CEM generation batched vs looped vs raw env (skipped by ``--quick``)."""
  if opts.quick:
    return []
  env, policy, lte_dim = cem_throughput.fresh_policy("halfcheetah_vel")
  return cem_throughput.measure(env, policy, lte_dim, 1, opts.repeats,
                                "ear paper widths (400), random init")


def memory_section(opts: Options) -> list[dict]:
  """Peak resident memory of this process and of the children it ran."""
  del opts
  return [common.record("memory/suite/peak_rss_mb", common.peak_rss_mb(), "MiB"),
          common.record("memory/children/peak_rss_mb", common.peak_rss_mb(children=True),
                        "MiB")]


SECTIONS = {"peak": peak_section, "env": env_section, "learner": learner_section,
            "train": train_section, "cem": cem_section, "compile": compile_section,
            "memory": memory_section}


def merged(old: list[dict], new: list[dict]) -> list[dict]:
  """``old`` with records of the same name replaced by ``new``, new ones appended."""
  fresh = {r["name"] for r in new}
  return [r for r in old if r["name"] not in fresh] + new


def main(argv):
  del argv
  if _TABLE.value:
    with open(_TABLE.value) as f:
      print(common.markdown_table(json.load(f)))
    return
  enable_compilation_cache()
  quick = _QUICK.value
  opts = Options(
      quick=quick, envs=["point_vel"] if quick else _ENVS.value,
      batches=[8] if quick else [int(b) for b in _BATCHES.value],
      env_steps_per_call=32 if quick else _ENV_STEPS.value,
      env_timeout_s=_ENV_TIMEOUT.value, train=_TRAIN.value, compile=_COMPILE.value,
      repeats=1 if quick else _REPEATS.value)
  sections = _SECTIONS.value or list(SECTIONS)
  unknown = sorted(set(sections) - set(SECTIONS))
  if unknown:
    raise app.UsageError(f"unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
  sections = ["peak"] + sections  # the peak and the background load go with every run
  records = []
  for name in SECTIONS:
    if name in sections:
      records += SECTIONS[name](opts)
  for r in records:
    r["settings"].setdefault("quick", quick)
    r["settings"].setdefault("background_cpu_percent", opts.background_cpu_percent)
  common.print_table(records)
  if _OUT.value and _MERGE.value and os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      records = merged(json.load(f), records)
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
