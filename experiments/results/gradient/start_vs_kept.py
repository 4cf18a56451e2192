"""Does ``grad_rollout`` improve on where it starts? Over training seeds and tasks (issue 32).

  .venv/bin/python experiments/results/gradient/start_vs_kept.py --workdir=runs/hcv_5seeds \
      --results=experiments/results/gradient/hcv_cpu_seed{seed}_h20_clip1_v2.json \
      --seeds=0,1,2,3,4 --out=experiments/results/gradient/start_vs_kept_h20_v2.json

For every training seed's ``experiments.adapt --methods=grad_rollout`` results JSON and
every task in it, two comparisons of the LTE the ascent kept against the one it started
from (the nearest training task's, its step 1):
- on the gradient's own objective (MJX with one solver iteration, the ascent's episodes):
  the best step's mean return against step 1's, read from the JSON;
- under the run's physics (the evaluation's): both LTEs on the same ``--episodes`` fresh
  deterministic episodes (the same keys for both), return and |v - target|.
A (task, seed) pair improves when the kept LTE's return is higher.  Writes every pair
and, per task and over all, the number of pairs improved and the mean improvement with
its 95 % CI over the training seeds (``earjax.statistics``, rliable; over all tasks, each
seed's mean over its tasks).
"""
import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from earjax import statistics
from earjax.adaptation import gradient
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--results", required=True, help="path with {seed} for the seed index")
  p.add_argument("--seeds", default="0,1,2,3,4")
  p.add_argument("--checkpoint", default="latest")
  p.add_argument("--episodes", type=int, default=10)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", required=True)
  return p.parse_args(argv)


def evaluate(run, ltes: np.ndarray, task_params: np.ndarray, episodes: int, key) -> dict:
  """Mean return and |v - target| [K] of each LTE on its task, deterministic episodes;
  every LTE gets the same keys."""
  num_tasks = len(ltes)
  keys = jnp.tile(jax.random.split(key, episodes), (num_tasks, 1))
  rep = lambda x: jnp.repeat(jnp.asarray(x, jnp.float32), episodes, axis=0)
  episode = jax.device_get(lte_lib.make_rollout(run.env)(run.policy, rep(ltes),
                                                         rep(task_params), keys))
  targets = np.array([run.env.velocity_target(p) for p in task_params])
  ret = np.asarray(episode.ret).reshape(num_tasks, episodes)
  vel = np.asarray(episode.velocity).reshape(num_tasks, episodes)
  return {"return": ret.mean(1), "velocity_error": np.abs(vel - targets[:, None]).mean(1)}


def main(argv):
  args = parse(argv)
  pairs = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    with open(args.results.format(seed=seed)) as f:
      result = json.load(f)
    run = load_run(args.workdir, args.checkpoint, seed)
    method = result["methods"]["grad_rollout"]
    task_params = np.asarray(result["task_params"], np.float32)
    start = gradient.nearest_ltes(run.task_params, np.asarray(run.ltes), task_params)
    kept = np.array([method["tasks"][name]["final"]["lte"] for name in result["tasks"]])
    key = jax.random.PRNGKey(args.seed)
    before = evaluate(run, start, task_params, args.episodes, key)
    after = evaluate(run, kept, task_params, args.episodes, key)
    for t, name in enumerate(result["tasks"]):
      rows = method["tasks"][name]["generations"]
      objective = [r["best_return"] for r in rows]
      finite = [x for x in objective if x is not None and np.isfinite(x)]
      pairs.append({
          "seed": seed, "task": name,
          "objective_start": objective[0], "objective_best": max(finite) if finite else None,
          "steps_finite": sum(bool(r.get("grad_finite")) for r in rows),
          "steps": len(rows),
          "lte_moved": max(r["lte_distance"] for r in rows),
          "return_start": float(before["return"][t]), "return_kept": float(after["return"][t]),
          "velocity_error_start": float(before["velocity_error"][t]),
          "velocity_error_kept": float(after["velocity_error"][t])})
      p = pairs[-1]
      print(f"seed {seed} {name}: objective {p['objective_start']:.1f} -> "
            f"{p['objective_best']:.1f}; evaluated return {p['return_start']:.1f} -> "
            f"{p['return_kept']:.1f}, |v - target| {p['velocity_error_start']:.3f} -> "
            f"{p['velocity_error_kept']:.3f}", flush=True)

  def summary(rows):
    """Counts over the pairs; the gains' mean and CI over training seeds (each seed's
    mean over its pairs among ``rows``)."""
    seeds = sorted({r["seed"] for r in rows})
    per_seed = lambda f: np.array([np.mean([f(r) for r in rows if r["seed"] == s])
                                   for s in seeds])
    gain = {"return_gain": per_seed(lambda r: r["return_kept"] - r["return_start"]),
            "velocity_error_drop": per_seed(
                lambda r: r["velocity_error_start"] - r["velocity_error_kept"])}
    ci = statistics.interval_estimates(gain, seed=0)
    return {"pairs": len(rows),
            "improved_on_objective": sum(r["objective_best"] is not None and
                                         r["objective_best"] > r["objective_start"] for r in rows),
            "improved_evaluated": sum(r["return_kept"] > r["return_start"] for r in rows),
            "every_step_finite": sum(r["steps_finite"] == r["steps"] for r in rows),
            **{k: {"mean": v["mean"], "mean_ci": v["mean_ci"]} for k, v in ci.items()}}

  tasks = list(dict.fromkeys(p["task"] for p in pairs))   # in the results' order
  out = {"workdir": args.workdir, "results": args.results, "checkpoint": args.checkpoint,
         "episodes": args.episodes, "pairs": pairs,
         "by_task": {t: summary([p for p in pairs if p["task"] == t]) for t in tasks},
         "all": summary(pairs)}
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
  print(json.dumps(out["all"], indent=1))
  print("wrote", args.out)


if __name__ == "__main__":
  main(sys.argv[1:])
