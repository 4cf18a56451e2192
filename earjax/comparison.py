"""The paper's adaptation comparison (Sec. 4.4): every method adapts to the same new
tasks within the same env-step budget, over the same seeds, and reports one kind of
record, so ``experiments.compare_adaptation`` can tabulate and plot them together.

A method's record: ``workdir``, ``checkpoint_epoch``, ``training_seconds`` (the run's
wall time to that checkpoint), ``curve`` (what its points are) and, per task,
``env_steps`` [P] (adaptation env steps spent at each point), ``return`` and
``velocity`` [seeds, P], and ``final_return`` / ``final_velocity`` [seeds] (the adapted
policy on fresh deterministic episodes, at most ``budget`` steps spent).

- ``ear_cem``, ``ear_table_es``: Algorithm 2's CEM and earjax's ES over the frozen EAR
  policy's LTE (``adaptation.cem``), ``budget / (90 x episode length)`` generations; the
  curve is the search's best score so far (one deterministic episode per candidate), and
  the final episodes run that best-so-far LTE (for CEM, rather than Algorithm 2's last
  top elite, which a noisy last generation can leave below an earlier one).  Table-ES
  draws its first generation (Eq. 1 between the run's LTEs) per seed.
- ``ohe_finetune``: SAC continued from the OHE-SAC run (``training.finetune``); the
  curve is its deterministic evaluations.
- ``pearl``: posterior sampling, then the posterior mean (``adaptation.pearl``), up to
  ``pearl_episodes`` context episodes; the curve is the posterior mean's evaluations.
- ``maml``: inner policy-gradient steps (``adaptation.maml``) of the run's
  ``episodes_per_task`` episodes, as many as the budget allows up to ``maml_steps``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from earjax import parallel
from earjax import statistics
from earjax.envs import base as envs_base
from earjax.adaptation import cem
from earjax.training import finetune
from earjax.training.loggers import read_rows
from earjax.adaptation import lte as lte_lib
from earjax.adaptation import maml
from earjax.adaptation import pearl
from earjax.policy import load_run
from earjax.run import Run

METHODS = ("ear_cem", "ear_table_es", "ohe_finetune", "pearl", "maml")
# Which trained run each method reads: --runs=<kind>=<workdir>.
RUN_OF = {"ear_cem": "ear", "ear_table_es": "ear", "ohe_finetune": "ohe",
          "pearl": "pearl", "maml": "maml"}
# The caps' defaults (``experiments.compare_adaptation``'s flags read them): PEARL's most
# context episodes and MAML's most inner steps.
PEARL_EPISODES = 10
MAML_STEPS = 5
# ``tracking``'s bar: achieved vs target velocity slope after adaptation (issue 36).
TRACKING_SLOPE = 0.7


def training_seconds(workdir: str, epoch: int) -> float:
  """The run's wall time (``metrics.jsonl``) at its first logged row at or past ``epoch``
  (the row of ``epoch`` itself where the run logged it, as the jobs do at every
  evaluation and at the end)."""
  rows = read_rows(workdir)
  done = [r for r in rows if r["epoch"] >= epoch] or rows[-1:]
  return float(done[0]["wall_time"])


def inside_tasks(train_params: np.ndarray) -> np.ndarray:
  """Midpoints of neighbouring training targets [K, 1]: new tasks inside the trained
  range.  One-parameter families only (a ValueError otherwise)."""
  if np.asarray(train_params).shape[-1] != 1:
    raise ValueError("--tasks=inside needs a one-parameter family (midpoints of its "
                     "training targets); name the tasks instead")
  values = np.sort(np.unique(np.asarray(train_params)[:, 0]))
  return ((values[1:] + values[:-1]) / 2)[:, None].astype(np.float32)


def _per_task(env, task_params, names, env_steps, returns, velocities, final_returns,
              final_velocities) -> dict:
  """Arrays with a leading (task, seed) axis, task-major, into per-task lists."""
  seeds = len(returns) // len(names)
  out = {}
  for t, name in enumerate(names):
    rows = slice(t * seeds, (t + 1) * seeds)
    out[name] = {"task_param": np.asarray(task_params[t]).tolist(),
                 "velocity_target": env.velocity_target(task_params[t]),
                 "env_steps": np.asarray(env_steps).tolist(),
                 "return": np.asarray(returns[rows]).tolist(),
                 "velocity": np.asarray(velocities[rows]).tolist(),
                 "final_return": np.asarray(final_returns[rows]).tolist(),
                 "final_velocity": np.asarray(final_velocities[rows]).tolist()}
  return out


def _ear(method: str, workdir: str, task_params, names, seeds: int, key, budget: int,
         eval_episodes: int, seed_index: int) -> dict:
  run = load_run(workdir, seed_index=seed_index)
  population = cem.CEMConfig().population
  generations = budget // cem.env_steps_per_generation(population, run.env)
  if generations < 1:
    raise ValueError(f"a budget of {budget} env steps is less than one generation")
  targets = jnp.asarray(task_params, jnp.float32)
  keys = jax.random.split(key, seeds)
  # Table-ES's first generation, per seed (CEM ignores it).
  firsts = jnp.stack([cem.pair_interpolations(np.asarray(run.ltes), population,
                                              jax.random.fold_in(k, 99)) for k in keys])

  layout = parallel.search_layout()   # the candidates over every device, if several

  def one(policy, key, first):
    score = cem.rollout_score_fn(run.env, policy, targets, layout=layout)
    if method == "ear_cem":
      _, history = cem.cem(score, key, len(targets), run.lte_dim,
                           cem.CEMConfig(generations=generations))
      best = cem.best_so_far(history)
    else:
      best, history = cem.table_es(score, key, first, len(targets),
                                   cem.ESConfig(generations=generations))
    return best, history["best"], history["best_aux"]["velocity"]

  # [S, T, d], [S, G, T] x 2
  best, scores, velocity = jax.device_get(jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))(
      parallel.replicate(run.policy, layout), keys, firsts))
  # Best so far, task-major rows (task, seed), and the velocity of that candidate.
  scores, velocity = (np.moveaxis(x, 2, 0).reshape(-1, generations) for x in (scores, velocity))
  at = np.maximum.accumulate(
      np.where(scores == np.maximum.accumulate(scores, 1),
               np.arange(generations)[None], 0), 1)
  curve = np.take_along_axis(scores, at, 1)
  curve_velocity = np.take_along_axis(velocity, at, 1)
  ltes = np.swapaxes(best, 0, 1).reshape(-1, run.lte_dim)
  rows = np.repeat(np.asarray(task_params, np.float32), seeds, axis=0)
  episode = lte_lib.make_rollout(run.env)(
      run.policy, jnp.repeat(ltes, eval_episodes, 0), jnp.repeat(rows, eval_episodes, 0),
      jax.random.split(jax.random.fold_in(key, 7), len(rows) * eval_episodes))
  final = lambda x: np.asarray(x).reshape(-1, eval_episodes).mean(1)
  steps = (np.arange(generations) + 1) * cem.env_steps_per_generation(population, run.env)
  return {"workdir": workdir, "checkpoint_epoch": run.epoch,
          "training_seconds": training_seconds(workdir, run.epoch),
          "curve": "the search's best score so far (one deterministic episode)",
          "tasks": _per_task(run.env, task_params, names, steps, curve, curve_velocity,
                             final(episode.ret), final(episode.velocity))}


def _finetune(workdir: str, task_params, names, seeds: int, key, budget: int,
              eval_episodes: int, seed_index: int, envs_per_task: int, eval_every: int,
              source_episodes: int) -> dict:
  source = Run.load(workdir)
  finetuner = finetune.make_finetuner(source, envs_per_task, eval_episodes)
  actor, critic, log_alpha, epoch = finetune.load_source(source, seed_index)
  runs = [finetuner.adapt(actor, critic, log_alpha, np.asarray(p, np.float32),
                          jax.random.fold_in(jax.random.fold_in(key, t), s), budget,
                          eval_every, source_episodes)
          for t, p in enumerate(task_params) for s in range(seeds)]
  field = lambda name: np.array([[r[name] for r in out["evaluations"]] for out in runs])
  returns, velocities = field("return"), field("velocity")
  steps = [r["env_steps"] for r in runs[0]["evaluations"]]
  return {"workdir": workdir, "checkpoint_epoch": epoch,
          "training_seconds": training_seconds(workdir, epoch),
          "curve": "deterministic evaluations of the fine-tuned policy",
          "tasks": _per_task(finetuner.trainer.env, task_params, names, steps, returns,
                             velocities, returns[:, -1], velocities[:, -1])}


def _pearl(workdir: str, task_params, names, seeds: int, key, budget: int,
           eval_episodes: int, seed_index: int, max_episodes: int) -> dict:
  run = pearl.load(workdir, seed_index)
  episodes = min(max_episodes, budget // run.env.episode_length)
  if episodes < 1:
    raise ValueError(f"a budget of {budget} env steps is less than one context episode "
                     f"({run.env.episode_length})")
  rows = np.repeat(np.asarray(task_params, np.float32), seeds, axis=0)
  out = pearl.adapt(run, rows, key, episodes, eval_episodes)
  return {"workdir": workdir, "checkpoint_epoch": run.epoch,
          "training_seconds": training_seconds(workdir, run.epoch),
          "curve": "the posterior mean's deterministic evaluations after each context "
                   "episode (posterior sampling)",
          "tasks": _per_task(run.env, task_params, names, out["env_steps"],
                             out["eval_return"], out["eval_velocity"],
                             out["eval_return"][:, -1], out["eval_velocity"][:, -1])}


def _maml(workdir: str, task_params, names, seeds: int, key, budget: int,
          eval_episodes: int, seed_index: int, max_steps: int) -> dict:
  run = maml.load(workdir, seed_index=seed_index)
  per_step = int(run.config.maml.episodes_per_task)
  steps = min(max_steps, budget // (per_step * run.env.episode_length))
  if steps < 1:
    raise ValueError(f"a budget of {budget} env steps is less than one inner step "
                     f"({per_step} episodes of {run.env.episode_length})")
  rows = np.repeat(np.asarray(task_params, np.float32), seeds, axis=0)
  out = maml.adapt(run, rows, key, steps, per_step, eval_episodes)
  return {"workdir": workdir, "checkpoint_epoch": run.epoch,
          "training_seconds": training_seconds(workdir, run.epoch),
          "curve": f"deterministic evaluations after each inner step ({per_step} episodes)",
          "tasks": _per_task(run.env, task_params, names, out["env_steps"],
                             out["eval_return"], out["eval_velocity"],
                             out["eval_return"][:, -1], out["eval_velocity"][:, -1])}


def run_method(method: str, workdir: str, task_params: np.ndarray, names, *, seeds: int,
               key: jax.Array, budget: int, eval_episodes: int,
               finetune_envs: int = finetune.FINETUNE_DEFAULTS.envs_per_task,
               finetune_eval_every: int = finetune.FINETUNE_DEFAULTS.eval_every,
               source_episodes: int = finetune.FINETUNE_DEFAULTS.source_episodes,
               pearl_episodes: int = PEARL_EPISODES, maml_steps: int = MAML_STEPS,
               seed_index: int = 0) -> dict:
  """One method's record on ``task_params`` [K, p] (named ``names``), adapting training
  seed ``seed_index`` of the run (``seeds``: adaptation seeds)."""
  common = (workdir, task_params, names, seeds, key, budget, eval_episodes, seed_index)
  if method in ("ear_cem", "ear_table_es"):
    record = _ear(method, *common)
  elif method == "ohe_finetune":
    record = _finetune(*common, finetune_envs, finetune_eval_every, source_episodes)
  elif method == "pearl":
    record = _pearl(*common, pearl_episodes)
  elif method == "maml":
    record = _maml(*common, maml_steps)
  else:
    raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
  return record | {"seed_index": seed_index}


def same_tasks(env_configs: dict) -> object:
  """The runs' common ``env`` section ({kind: section}; the held-out tasks are its), or
  a ValueError naming the first run whose task distribution or reward differs
  (``envs.base.SAMPLED_TASKS``' keys, ``ctrl_cost``): the comparison needs every method
  trained on the same tasks."""
  keys = (*envs_base.SAMPLED_TASKS, "ctrl_cost")
  (first, config), *rest = env_configs.items()
  for kind, other in rest:
    diff = [k for k in keys if k in config and tuple(np.ravel(config[k])) != tuple(
        np.ravel(other.get(k, config[k])))]
    if diff:
      raise ValueError(f"--runs {kind} trained other tasks than {first}: env."
                       f"{diff[0]} {other[diff[0]]!r} vs {config[diff[0]]!r}")
  return config


def merge_training_seeds(records: list[dict]) -> dict:
  """One record of a method from its records on several training seeds of a run (the
  same tasks): every per-seed array's rows stacked, training seed after training seed,
  with ``training_seed`` [rows] naming each row's; ``seed_index``, ``checkpoint_epoch``
  and ``training_seconds`` become lists (one per training seed)."""
  first = records[0]
  out = {k: v for k, v in first.items() if k not in ("tasks", "seed_index",
                                                     "checkpoint_epoch", "training_seconds")}
  out.update({k: [r[k] for r in records] for k in ("seed_index", "checkpoint_epoch",
                                                   "training_seconds")})
  out["tasks"] = {}
  for name, task in first["tasks"].items():
    merged = dict(task)
    for field in ("return", "velocity", "final_return", "final_velocity"):
      merged[field] = sum((list(r["tasks"][name][field]) for r in records), [])
    merged["training_seed"] = sum(([r["seed_index"]] * len(r["tasks"][name]["final_return"])
                                   for r in records), [])
    out["tasks"][name] = merged
  return out


def by_training_seed(record: dict) -> list[dict]:
  """The per-training-seed records of a ``merge_training_seeds`` record (a record of one
  training seed: itself)."""
  if "training_seed" not in next(iter(record["tasks"].values())):
    return [record]
  seeds = sorted(set(next(iter(record["tasks"].values()))["training_seed"]))
  out = []
  for seed in seeds:
    tasks = {}
    for name, task in record["tasks"].items():
      rows = [i for i, s in enumerate(task["training_seed"]) if s == seed]
      tasks[name] = dict(task, **{f: [task[f][i] for i in rows] for f in (
          "return", "velocity", "final_return", "final_velocity", "training_seed")})
    out.append(dict(record, tasks=tasks, seed_index=seed))
  return out


def tracking(record: dict) -> dict:
  """Whether a method's adaptation follows the target velocity (issue 36's check of a
  baseline): over the record's tasks with a velocity target, ``targets``, ``before``
  (the unadapted policy: the curve's first point) and ``after`` (``final_velocity``),
  means over the adaptation seeds; ``slope_before`` / ``slope_after``, the least-squares
  slope of achieved vs target velocity (1: it follows, 0: it ignores the target);
  ``improved`` per task: the adapted |v - target| is below the unadapted one, or already
  within the success band (``envs.base.velocity_success``'s, 10 % of the target and at
  least 0.1 m/s: nothing left to gain); ``holds``: slope_after >= 0.7 and every task
  improved."""
  tasks = {n: t for n, t in record["tasks"].items() if t["velocity_target"] is not None}
  if len(tasks) < 2:
    raise ValueError("tracking needs at least two tasks with velocity targets")
  targets = np.array([t["velocity_target"] for t in tasks.values()])
  before = np.array([np.mean(np.asarray(t["velocity"])[:, 0]) for t in tasks.values()])
  after = np.array([np.mean(t["final_velocity"]) for t in tasks.values()])
  band = envs_base.SUCCESS_VELOCITY_FRACTION * np.maximum(1.0, np.abs(targets))
  error_before, error_after = np.abs(before - targets), np.abs(after - targets)
  improved = (error_after < error_before) | (error_after <= band)
  slope = lambda v: float(np.polyfit(targets, v, 1)[0])
  out = {"tasks": list(tasks), "targets": targets.tolist(), "before": before.tolist(),
         "after": after.tolist(), "slope_before": slope(before), "slope_after": slope(after),
         "improved": improved.tolist()}
  return out | {"holds": bool(out["slope_after"] >= TRACKING_SLOPE and improved.all())}


def summary(result: dict) -> dict:
  """Per method and task: final return and |velocity - target| (mean and std over every
  row: training x adaptation seeds), env steps spent, the method's training time; with
  two or more training seeds, per task the figures' 95 % CIs over the training seeds
  (each seed's mean over its adaptation seeds; ``earjax.statistics``) as ``n``,
  ``final_return_ci``, ``velocity_error_ci``; with two or more velocity targets,
  ``tracking`` (pooled) and ``tracking_by_training_seed``."""
  out = {}
  for method, rec in result["methods"].items():
    seconds = rec["training_seconds"]
    out[method] = {"training_seconds": float(np.mean(seconds)), "tasks": {}}
    per_seed = by_training_seed(rec)
    for name, task in rec["tasks"].items():
      ret = np.array(task["final_return"])
      entry = {"final_return_mean": float(ret.mean()), "final_return_std": float(ret.std()),
               "env_steps": task["env_steps"][-1]}
      target = task["velocity_target"]
      if target is not None:
        err = np.abs(np.array(task["final_velocity"]) - target)
        entry.update(velocity_error_mean=float(err.mean()),
                     velocity_error_std=float(err.std()))
      if len(per_seed) >= 2:
        scores = {"return": [np.mean(r["tasks"][name]["final_return"]) for r in per_seed]}
        if target is not None:
          scores["error"] = [np.mean(np.abs(np.array(r["tasks"][name]["final_velocity"])
                                            - target)) for r in per_seed]
        est = statistics.interval_estimates({k: np.array(v) for k, v in scores.items()})
        entry.update(n=len(per_seed), final_return_ci=est["return"]["mean_ci"])
        if target is not None:
          entry["velocity_error_ci"] = est["error"]["mean_ci"]
      out[method]["tasks"][name] = entry
    if sum(t["velocity_target"] is not None for t in rec["tasks"].values()) >= 2:
      out[method]["tracking"] = tracking(rec)
      out[method]["tracking_by_training_seed"] = [tracking(r) for r in per_seed]
  return out
