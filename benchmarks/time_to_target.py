"""Time to target: wall clock and env steps until a run's mean |v - target| <= 0.2 m/s.

  python -m benchmarks.time_to_target --config=experiments/configs/halfcheetah_vel.py:cpu \\
      --seeds=0,1,2,3,4 --workdir=runs/time_to_target/cpu \\
      --out=benchmarks/results/time_to_target_cpu.json [--config.batch_size_per_task=...]

Each seed is a separate run (``<workdir>/seed_<k>``, one after another: the figure a user
feels is one run's clock), trained ``--chunk_epochs`` epochs at a time (extending a run is
bitwise the straight run, so the chunks change nothing but when the check is made) until
an evaluation row of its ``metrics.jsonl`` has ``eval/velocity_error_mean`` at or below
``--target`` or ``--max_epochs`` is reached.  A seed's figures are read from its first
such row: ``wall_time`` (seconds of training, compilation and evaluations included,
summed over the chunks' launches) and ``env_steps``; the evaluation interval
(``eval_every``) is their resolution.  The persistent compilation cache is on, as for a
user's second run: the first seed's compile is in its clock, the others load it.  A
stopped command resumes where it stopped.
The record: per seed, then the median and the spread (min, max, the interquartile range)
over the seeds that reached the target, and how many did.
"""
import os
import statistics

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

from benchmarks import common
from earjax import files
from earjax.config import validate
from earjax.training import train_and_evaluate
from experiments import cli

METRIC = "eval/velocity_error_mean"
FLAGS = flags.FLAGS


def define_flags():
  """The command-line flags, defined only when run as a program (the tests import this
  module beside other mains, and absl flags are global)."""
  config_flags.DEFINE_config_file("config", None, "The training config.", lock_config=True)
  flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Training seeds.")
  flags.DEFINE_float("target", 0.2, "Mean |v - target| to reach, m/s.")
  flags.DEFINE_integer("max_epochs", 600, "Give a seed up after this many.")
  flags.DEFINE_integer("chunk_epochs", 40, "Epochs between two checks.")
  flags.DEFINE_string("workdir", None, "Where the seeds' runs go.")
  flags.DEFINE_string("out", None, "The JSON record.")
  flags.mark_flags_as_required(["config", "workdir"])


def first_crossing(rows: list[dict], target: float) -> dict | None:
  """The first evaluation row whose ``METRIC`` is at or below ``target``, or None."""
  for row in rows:
    if row.get(METRIC) is not None and row[METRIC] <= target:
      return row
  return None


def read_rows(workdir: str) -> list[dict]:
  return files.read_jsonl(os.path.join(workdir, "metrics.jsonl"))


def run_seed(config, seed: int, workdir: str, target: float, max_epochs: int,
             chunk: int) -> dict:
  """Trains seed ``seed`` in chunks until it reaches ``target`` or ``max_epochs``."""
  rows = read_rows(workdir)
  epoch = rows[-1]["epoch"] if rows else 0
  while first_crossing(rows, target) is None and epoch < max_epochs:
    epoch = min(max_epochs, epoch + chunk)
    config.seed, config.num_epochs = seed, epoch
    train_and_evaluate(config, workdir)
    rows = read_rows(workdir)
  hit = first_crossing(rows, target)
  return {"seed": seed, "workdir": workdir, "reached": hit is not None,
          "epoch": hit and hit["epoch"], "env_steps": hit and hit["env_steps"],
          "wall_time_s": hit and hit["wall_time"],
          "epochs_trained": rows[-1]["epoch"] if rows else 0,
          "last_error": rows[-1].get(METRIC) if rows else None}


def spread(values: list[float]) -> dict | None:
  if not values:
    return None
  q1, q3 = np.percentile(values, [25, 75])
  return {"median": statistics.median(values), "min": min(values), "max": max(values),
          "q1": float(q1), "q3": float(q3)}


def main(argv):
  cli.start(argv)
  config = cli.load_config(FLAGS["config"])
  problems = validate(config)
  if problems:
    cli.fail(problems)
  if config.num_seeds != 1:
    cli.fail(["time to target runs each seed alone: leave config.num_seeds at 1"])
  load = common.background_load()
  seeds = []
  for seed in map(int, FLAGS.seeds):
    seeds.append(run_seed(config, seed, os.path.join(FLAGS.workdir, f"seed_{seed}"),
                          FLAGS.target, FLAGS.max_epochs, FLAGS.chunk_epochs))
    print(f"seed {seed}: " + (f"{seeds[-1]['wall_time_s']:.0f} s, epoch {seeds[-1]['epoch']}"
                              if seeds[-1]["reached"] else "not reached"), flush=True)
  reached = [s for s in seeds if s["reached"]]
  result = common.record(
      f"time_to_target/{config.env_name}/wall_time_s",
      spread([s["wall_time_s"] for s in reached])["median"] if reached else None, "s",
      target=FLAGS.target, metric=METRIC, max_epochs=FLAGS.max_epochs,
      eval_every=config.eval_every, config=config.to_dict(),
      background_cpu_percent=load["cpu_percent"])
  result.update(seeds=seeds, reached=len(reached), of=len(seeds),
                wall_time_s=spread([s["wall_time_s"] for s in reached]),
                env_steps=spread([s["env_steps"] for s in reached]))
  print(f"{len(reached)} of {len(seeds)} seeds reached {FLAGS.target} m/s; median "
        + (f"{result['wall_time_s']['median']:.0f} s" if reached else "n/a"))
  common.write([result], FLAGS.out)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
