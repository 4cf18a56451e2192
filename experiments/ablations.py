"""The paper's ablations of the LTE (issue 15), each variant over several seeds on one
budget, measured three ways, resumable.

  python -m experiments.ablations --config=experiments/configs/halfcheetah_vel.py:cpu \
      --root=runs/ablations/hcv [--variants=base,no_normalize,... --seeds=0,1,2]
      [--config.num_epochs=300 --interpolate=vel1,vel4 --adapt_tasks=1.5,2.5,3.5]

Variants (each a change of the ``--config`` base, which applies Algorithm 1's noise):
``base``; ``no_normalize`` (LTE not on the sphere, ``ear_sac.normalize_lte=False``);
``no_noise`` (``ear_sac.lte_noise_std=0``); ``release_bug`` (the decoder gets the clean LTE,
as in the release, which computed the noise and dropped it:
``ear_sac.release_noise_bug=True``; from the same seed it trains bit for bit as
``no_noise``, tests/test_ablations.py); ``lte_dim2``,
``lte_dim8`` (``ear_sac.lte_dim``; the base has 3).  Per variant and seed, in
``<root>/<variant>/seed<k>``: the training run (``experiments.train``'s job), then
``experiments.interpolate`` between the ``--interpolate`` ends and ``experiments.adapt``
(CEM) on ``--adapt_tasks``, each a child process running the documented command.  A
finished stage made with the same settings (the run's epoch, the flags) is skipped, so
the same command continues an interrupted sweep; an extended run is measured again.
A run of ``no_normalize`` is interpolated by the straight mix (its LTEs are off the
sphere); CEM searches the unit sphere for every variant, as Algorithm 2 does.
Writes, after every measured run (so a stopped sweep shows what it has measured),
``<root>/summary.json``: per variant and seed the final evaluation's mean |v - target|,
the interpolation's monotonicity and R^2 (deterministic actions) and CEM's mean
|v - target| on the adapt tasks, and two readings of the interpolation's geometry: the
angle between the two ends' LTEs and R^2 against the line in arc position
(``lte.arc_fraction``: Eq. 1's beta crosses a wide arc's middle fast, which bends
velocity vs beta where velocity vs arc position may be straight); per variant their
mean and standard deviation;
``complete`` once every run is in; and ``<root>/interpolation.png``: velocity vs beta of
every run, a panel per variant.
"""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags
import ml_collections
import numpy as np
from ml_collections import config_flags

from earjax import checkpoint
from earjax import config as config_lib
from earjax import files
from earjax.adaptation import cem
from earjax.adaptation import lte as lte_lib
from earjax.training import ConfigError, NonFiniteError, train_and_evaluate
from earjax.training.loggers import read_rows
from experiments import cli

VARIANTS = {
    "base": {},
    "no_normalize": {"ear_sac.normalize_lte": False},
    "no_noise": {"ear_sac.lte_noise_std": 0.0},
    "release_bug": {"ear_sac.release_noise_bug": True},
    "lte_dim2": {"ear_sac.lte_dim": 2},
    "lte_dim8": {"ear_sac.lte_dim": 8},
}
MEASURES = ("velocity_error", "monotone", "r2_vs_line", "cem_velocity_error", "r2_vs_arc",
            "end_angle_deg")
VELOCITY_FAMILIES = ("halfcheetah_vel", "hopper_vel", "walker_vel", "point_vel")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The base config, e.g. experiments/configs/halfcheetah_vel.py:cpu.")
_ROOT = flags.DEFINE_string("root", None, "Folder of the sweep (created or continued).")
_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), "Variants: "
                              + ", ".join(VARIANTS) + ".")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.")
_INTERPOLATE = flags.DEFINE_list("interpolate", None, "A,B: the ends of the Eq. 1 sweep "
                                 "(default: the first and last training task).")
_BETAS = flags.DEFINE_string("betas", "0,0.125,0.25,0.375,0.5,0.625,0.75,0.875,1",
                             "Betas of the interpolation.")
_ADAPT_TASKS = flags.DEFINE_string("adapt_tasks", "adapt", "Tasks of the CEM search "
                                   "(experiments.adapt --tasks).")
_GENERATIONS = flags.DEFINE_integer("generations", cem.CEM_DEFAULTS.generations,
                                    "CEM generations (experiments.adapt --generations).")
flags.mark_flags_as_required(["config", "root"])


def variant_config(base: ml_collections.ConfigDict, variant: str,
                   seed: int) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(base.to_dict())
  for key, value in VARIANTS[variant].items():
    config_lib.set_key(config, key, value)
  config.seed = seed
  return config


def child(args: list[str], what: str) -> None:
  """Runs ``python -m <args>``; a failure stops the sweep with its last stderr line."""
  proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                        check=False)
  if proc.returncode != 0:
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    cli.fail([f"{what} failed: {last}"], code=1)


def final_evaluation(workdir: str) -> dict:
  return [r for r in read_rows(workdir) if "eval/velocity_error_mean" in r][-1]


def stage(path: str, made_by: dict, args: list[str], what: str) -> None:
  """Runs the child ``args`` unless ``path`` exists and was made by the same settings
  (``made_by``: the run's epoch and the flags; a sweep extended or measured otherwise
  measures again)."""
  stamp = path + ".made_by.json"
  if os.path.exists(path) and os.path.exists(stamp):
    with open(stamp) as f:
      if json.load(f) == made_by:
        return
  child(args, what)
  files.write_json(stamp, made_by)


def interpolation_file(workdir: str, ends: tuple[str, str]) -> str:
  return os.path.join(workdir, "ablation_interpolate",
                      f"{cli.slug(ends[0])}_{cli.slug(ends[1])}.json")


def measure(config, workdir: str, last: dict, ends: tuple[str, str]) -> dict:
  """The measures of one trained run (``last``: its final evaluation): the three of the
  issue and the two geometry readings of its interpolation, running the stages it
  lacks."""
  epoch = last["epoch"]
  interpolated = interpolation_file(workdir, ends)
  stage(interpolated, {"epoch": epoch, "ends": list(ends), "betas": _BETAS.value},
        ["experiments.interpolate", f"--workdir={workdir}", f"--task_a={ends[0]}",
         f"--task_b={ends[1]}", f"--betas={_BETAS.value}",
         f"--out_dir={os.path.dirname(interpolated)}"], f"interpolate {workdir}")
  adapted = os.path.join(workdir, "ablation_adapt", "results.json")
  stage(adapted, {"epoch": epoch, "tasks": _ADAPT_TASKS.value,
                  "generations": _GENERATIONS.value},
        ["experiments.adapt", f"--workdir={workdir}", f"--tasks={_ADAPT_TASKS.value}",
         "--methods=cem", f"--generations={_GENERATIONS.value}", "--nosave_skills",
         f"--out_dir={os.path.dirname(adapted)}"], f"adapt {workdir}")
  with open(interpolated) as f:
    sweep = json.load(f)
  line = sweep["linearity"]["deterministic"]
  betas = [r["beta"] for r in sweep["betas"]]
  arc = lte_lib.linearity(lte_lib.arc_fraction(sweep["lte_a"], sweep["lte_b"], betas),
                          [r["deterministic"]["velocity"]["mean"] for r in sweep["betas"]])
  with open(adapted) as f:
    tasks = json.load(f)["methods"]["cem"]["tasks"]
  return {"epoch": last["epoch"], "velocity_error": last["eval/velocity_error_mean"],
          "monotone": line["monotone"], "r2_vs_line": line["r2_vs_line"],
          "cem_velocity_error": float(np.mean(
              [t["final"]["deterministic"]["velocity_error"] for t in tasks.values()])),
          "r2_vs_arc": arc["r2_vs_line"],
          "end_angle_deg": float(np.degrees(lte_lib.angle(sweep["lte_a"], sweep["lte_b"]))),
          "num_epochs": config.num_epochs}


def plot(root: str, runs: dict, ends: tuple[str, str], path: str) -> None:
  """Velocity vs beta of the Eq. 1 interpolation of every run in ``runs`` (deterministic
  actions), a panel per variant, a line per seed, the two end targets dotted."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  columns = min(3, len(runs))
  rows = -(-len(runs) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False,
                           sharex=True, sharey=True)
  for ax, (variant, seeds) in zip(axes.flat, runs.items()):
    for seed in seeds:
      with open(interpolation_file(os.path.join(root, variant, seed), ends)) as f:
        result = json.load(f)
      velocity = [r["deterministic"]["velocity"]["mean"] for r in result["betas"]]
      ax.plot([r["beta"] for r in result["betas"]], velocity, "o-", ms=3, label=seed)
    for source in ("a", "b"):
      if result[f"target_{source}"] is not None:
        ax.axhline(result[f"target_{source}"], color="gray", ls=":", lw=1)
    ax.set_title(variant, fontsize=9)
    ax.grid(alpha=0.3)
  for ax in axes.flat[len(runs):]:
    ax.set_visible(False)
  for ax in axes[-1]:
    ax.set_xlabel(f"beta (1 = {ends[0]}, 0 = {ends[1]})")
  for ax in axes[:, 0]:
    ax.set_ylabel("mean forward velocity (m/s)")
  axes.flat[0].legend(fontsize=7)
  fig.suptitle(f"Eq. 1 interpolation per LTE ablation, {result['env']} ({root})", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_summary(base: ml_collections.ConfigDict, runs: dict, ends: tuple[str, str],
                  complete: bool) -> None:
  """``<root>/summary.json`` and ``interpolation.png`` of the runs measured so far
  (``complete``: all of the sweep's)."""
  measured = {variant: seeds for variant, seeds in runs.items() if seeds}
  files.write_json(os.path.join(_ROOT.value, "summary.json"),
                   {"config": base.to_dict(), "variants": VARIANTS, "complete": complete,
                    "runs": measured, "summary": summarise(measured)})
  plot(_ROOT.value, measured, ends, os.path.join(_ROOT.value, "interpolation.png"))


def summarise(runs: dict) -> dict:
  """Per variant, each measure's mean and std over its seeds (monotone: the fraction)."""
  out = {}
  for variant, seeds in runs.items():
    out[variant] = {}
    for name in MEASURES:
      values = [float(r[name]) for r in seeds.values() if r[name] is not None]
      out[variant][name] = {"mean": float(np.mean(values)) if values else None,
                            "std": float(np.std(values)) if values else None,
                            "seeds": len(values)}
  return out


def main(argv):
  cli.start(argv)
  unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
  if unknown:
    cli.fail([f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(VARIANTS)}"])
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError:
    cli.fail([f"seeds must be integers, got {','.join(_SEEDS.value)}"])
  if _INTERPOLATE.value is not None and len(_INTERPOLATE.value) != 2:
    cli.fail([f"--interpolate takes two ends A,B, got {','.join(_INTERPOLATE.value)}"])
  base = cli.load_config(_CONFIG)
  if base.env_name not in VELOCITY_FAMILIES:
    cli.fail([f"the ablations measure velocity tracking; {base.env_name} is not one of "
              f"{', '.join(VELOCITY_FAMILIES)}"])
  runs = {}
  for variant in _VARIANTS.value:
    runs[variant] = {}
    for seed in seeds:
      config = variant_config(base, variant, seed)
      workdir = os.path.join(_ROOT.value, variant, f"seed{seed}")
      try:
        result = train_and_evaluate(config, workdir)
      except (ConfigError, checkpoint.CheckpointError) as e:
        cli.fail(str(e).splitlines())
      except NonFiniteError as e:
        cli.fail([str(e)], code=1)
      if result.get("epoch", 0) < config.num_epochs:
        print(f"{workdir}: stopped at epoch {result.get('epoch', 0)}; the same command "
              f"continues the sweep")
        return
      last = final_evaluation(workdir)
      tasks = [k.split("/", 2)[2] for k in last if k.startswith("eval/return/")]
      ends = tuple(_INTERPOLATE.value or (tasks[0], tasks[-1]))
      runs[variant][f"seed{seed}"] = measure(config, workdir, last, ends)
      row = runs[variant][f"seed{seed}"]
      print(f"{variant:>13} seed {seed}: |v - target| {row['velocity_error']:.3f}, "
            f"monotone {row['monotone']}, R^2 {row['r2_vs_line']}, "
            f"CEM |v - target| {row['cem_velocity_error']:.3f}")
      write_summary(base, runs, ends,
                    complete=(variant, seed) == (_VARIANTS.value[-1], seeds[-1]))
  print(f"wrote {os.path.join(_ROOT.value, 'summary.json')} and "
        f"{os.path.join(_ROOT.value, 'interpolation.png')}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
