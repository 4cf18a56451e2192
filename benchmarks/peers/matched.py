"""brax and earjax at the same physics, twice: the summary of ``side_by_side.sh``'s runs.

  .venv/bin/python -m benchmarks.peers.matched --dir=runs/peers \\
      --out=runs/peers/side_by_side_matched.json

``side_by_side.sh`` runs, for each repeat r and each solver budget s (``brax``: the
budget of brax's HalfCheetah asset, 4/50, on both sides; ``earjax``: HalfCheetah-Vel's
4/8 on both sides), interleaved (the budgets' order and the sides' order alternate from
one repeat to the next): brax's SAC, earjax's training epoch, brax's env alone
and earjax's env alone, into ``<dir>/r<r>/<s>/{brax_sac,earjax_train,brax_env,
earjax_env}.json``.  This reads them all and writes, per budget, each side's median
rate over the repeats, the ratio of the medians earjax / brax (training epoch and env
alone), every repeat's rates, and ``settings_match``: true only if in every pair the two
compiled models' options agree (``benchmarks.model_options``, read from the models that
ran) and the training settings agree (envs, batch, updates per env step, widths).
Standard library only.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys

from benchmarks import model_options
from benchmarks.peers import compare

# The solver budgets, each run on both sides, and earjax's training setting for each
# (benchmarks.run's --train name, whose record is train/<name>/env_steps_per_s).
BUDGETS = {"brax": "brax_matched_brax_solver", "earjax": "brax_matched"}
EARJAX_ENV_PREFIX = "env/halfcheetah_vel/"


def _load(path: str):
  with open(path) as f:
    return json.load(f)


def earjax_env_record(records: list[dict]) -> dict:
  """The env-steps/s record of ``benchmarks.env_throughput``'s file."""
  found = [r for r in records if r["name"].startswith(EARJAX_ENV_PREFIX)
           and r["name"].endswith("/env_steps_per_s")]
  if len(found) != 1 or found[0].get("value") is None:
    raise ValueError(f"expected one measured env-steps/s record, found {found}")
  return found[0]


def pair(run_dir: str, budget: str) -> dict:
  """The four records of one repeat and budget: rates and where their settings differ."""
  brax_sac = compare.brax_record(_load(os.path.join(run_dir, "brax_sac.json")))
  earjax_train, _ = compare.earjax_records(
      _load(os.path.join(run_dir, "earjax_train.json")),
      f"train/{BUDGETS[budget]}/env_steps_per_s")
  brax_env = _load(os.path.join(run_dir, "brax_env.json"))
  earjax_env = earjax_env_record(_load(os.path.join(run_dir, "earjax_env.json")))
  train_mismatches = compare.setting_mismatches(brax_sac, earjax_train)
  env_mismatches = model_options.mismatches(
      brax_env["settings"].get("model_options"), earjax_env["settings"].get("model_options"))
  if brax_env["settings"]["batch"] != earjax_env["settings"]["batch"]:
    env_mismatches.append(f"batch: brax {brax_env['settings']['batch']}, earjax "
                          f"{earjax_env['settings']['batch']}")
  return {"dir": run_dir,
          "train": {"brax": brax_sac["value"], "earjax": earjax_train["value"]},
          "env": {"brax": brax_env["value"], "earjax": earjax_env["value"]},
          "model_options": earjax_env["settings"].get("model_options"),
          "background_cpu_percent": {
              "brax_sac": brax_sac["settings"].get("background_cpu_percent"),
              "brax_env": brax_env["settings"].get("background_cpu_percent")},
          "mismatches": train_mismatches + env_mismatches}


def summarise(directory: str) -> dict:
  out = {"directory": directory, "budgets": {}}
  for budget in BUDGETS:
    runs = [pair(d, budget)
            for d in sorted(glob.glob(os.path.join(directory, "r[0-9]*", budget)))]
    if not runs:
      continue
    entry = {"repeats": len(runs), "model_options": runs[0]["model_options"],
             "settings_match": all(not r["mismatches"] for r in runs),
             "mismatches": sorted({m for r in runs for m in r["mismatches"]}),
             "runs": runs}
    for kind in ("train", "env"):
      medians = {side: statistics.median(r[kind][side] for r in runs)
                 for side in ("brax", "earjax")}
      entry[kind] = {**{f"{side}_median": v for side, v in medians.items()},
                     "ratio_earjax_over_brax": medians["earjax"] / medians["brax"]}
    out["budgets"][budget] = entry
  if not out["budgets"]:
    raise ValueError(f"no runs under {directory} (expected r<k>/<budget>/ folders)")
  return out


def main(argv: list[str]) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--dir", default="runs/peers")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  result = summarise(args.dir)
  for budget, e in result["budgets"].items():
    o = e["model_options"] or {}
    print(f"solver {o.get('iterations')}/{o.get('ls_iterations')} on both sides "
          f"({budget}'s budget), {e['repeats']} repeats, settings match: "
          f"{e['settings_match']}")
    for kind, what in (("train", "training epoch"), ("env", "env alone")):
      k = e[kind]
      print(f"  {what:<15} brax {k['brax_median']:>9.1f}  earjax {k['earjax_median']:>9.1f}"
            f"  env-steps/s   ratio {k['ratio_earjax_over_brax']:.2f}x")
    for m in e["mismatches"]:
      print(f"  warning: settings differ: {m}")
  compare.write(result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
