"""The compression's jobs, the stages of ``experiments/compress.py``, each
``(config, workdir) -> summary`` and each writing its results into ``workdir``:

- ``build_dataset``: novelty search -> ``dataset.npz``, ``dataset_summary.json``;
- ``train_autoencoders``: one autoencoder per ``latent_dims`` -> ``autoencoder_z<d>/``,
  ``autoencoders.jsonl`` (final loss, reconstruction error, compression ratio |θ| / |z|);
- ``recovery``: latent PGPE on every task of the family per latent size, and PGPE in Θ,
  ``search_seeds`` seeds -> ``recovery.jsonl`` and ``recovery_summary.json`` (the
  table's numbers: mean and std over seeds).  Recovery = the best policy's return over
  the dataset's best policy's return, both re-evaluated on ``eval_episodes`` fresh
  episodes (the issue's reading: best over best; the dataset's best is the best of its
  ``recovery_dataset_top`` best single episodes, re-evaluated; undefined where it is not
  positive);
- ``adaptation``: latent PGPE vs PGPE in Θ vs EAR's CEM over LTEs on the held-out tasks of
  ``adapt.env_name``, same env-step budget per task, ``search_seeds`` seeds ->
  ``adapt.json`` and ``adapt_summary.json``.
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from earjax import envs
from earjax import files
from earjax.adaptation import cem
from earjax.adaptation import lte as lte_lib
from earjax.compression import autoencoder as ae_lib
from earjax.compression import search as search_lib
from earjax.compression import store
from earjax.compression.dataset import NoveltySearch, NoveltySearchConfig, PolicyDataset
from earjax.compression.policies import PolicySpace
from earjax.policy import load_run


def _configs(config: ml_collections.ConfigDict):
  """The dataset and PGPE settings, checked, with the jobs' own counts."""
  for name in ("search_seeds", "eval_episodes", "recovery_dataset_top"):
    if int(config[name]) < 1:
      raise ValueError(f"{name} must be a positive integer, got {config[name]!r}")
  return (NoveltySearchConfig(**config.dataset),
          search_lib.PGPEConfig(**config.pgpe))


def build_dataset(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Novelty search on ``config.env_name`` -> ``DIR/dataset.npz`` and its summary."""
  dataset_config, _ = _configs(config)
  env = envs.make(config.env_name)
  envs.require_per_env(env, "the policy dataset's rollouts")
  space = PolicySpace(env.observation_size, env.action_size, config.policy_hidden)
  searcher = NoveltySearch(env, space, dataset_config)
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  with tqdm.tqdm(total=dataset_config.size, unit="policy", desc=config.env_name) as bar:
    dataset = searcher.build(jax.random.PRNGKey(config.seed), progress=bar.update)
  seconds = time.time() - start
  dataset.save(store.dataset_path(workdir))
  summary = {
      "env_name": env.name, "policies": dataset.size, "num_params": space.num_params,
      "generations": dataset_config.generations, "candidates": dataset_config.candidates,
      "env_steps": (dataset.size + dataset_config.probe_policies) * env.episode_length,
      "seconds_with_compile": seconds,
      "best_return": dict(zip(dataset.task_names, dataset.returns.max(0).tolist())),
      "mean_return": dict(zip(dataset.task_names, dataset.returns.mean(0).tolist())),
      "novelty_first_last_generation": [float(dataset.novelty[dataset.generation == g].mean())
                                        for g in (0, dataset_config.generations - 1)]}
  files.write_json(os.path.join(workdir, "dataset_summary.json"), summary)
  return summary


def train_autoencoders(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """One autoencoder per ``config.latent_dims`` on ``DIR/dataset.npz``."""
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  space = dataset.space()
  action_variance = float(dataset.descriptors.var(0).mean())
  rows = []
  for latent_dim in config.latent_dims:
    settings = dict(config.autoencoder, latent_dim=int(latent_dim),
                    hidden=tuple(config.autoencoder.hidden))
    ae_config = ae_lib.AutoencoderConfig(**settings)
    start = time.time()
    losses = []
    with tqdm.tqdm(total=ae_config.epochs, unit="epoch", desc=f"z{latent_dim}") as bar:
      def on_epoch(epoch, loss):
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        bar.update(1)
      compressor, state = ae_lib.train(dataset, ae_config, jax.random.PRNGKey(config.seed),
                                       on_epoch)
    store.save_autoencoder(workdir, compressor, state.params, dataset)
    files.write_jsonl(os.path.join(store.autoencoder_dir(workdir, latent_dim), "metrics.jsonl"),
                 [{"epoch": i + 1, "loss": v} for i, v in enumerate(losses)])
    rows.append({"latent_dim": int(latent_dim), "num_params": space.num_params,
                 "compression_ratio": space.num_params / latent_dim,
                 "final_train_loss": losses[-1],
                 "reconstruction_error": ae_lib.reconstruction_error(compressor, state.params,
                                                                     dataset),
                 "action_variance": action_variance,
                 "seconds_with_compile": time.time() - start})
  files.write_jsonl(os.path.join(workdir, "autoencoders.jsonl"), rows)
  return rows


def _evaluate(env, space, thetas: jax.Array, task_params: jax.Array, episodes: int,
              key: jax.Array) -> np.ndarray:
  """Mean return of policy θ_i on task_params[i] over ``episodes`` fresh episodes."""
  n = thetas.shape[0]
  returns = search_lib.rollout_returns(
      env, space, jnp.repeat(thetas, episodes, axis=0), jnp.repeat(task_params, episodes,
                                                                   axis=0), key)
  return np.asarray(returns).reshape(n, episodes).mean(1)


def _searches(env, space, decode, center, scale, pgpe_config, task_params, keys):
  """PGPE from ``center`` for every (task, seed) pair at once: ``task_params`` [R, p],
  ``keys`` [R]; members decoded to θ by ``decode``.  Returns best members [R, d], their
  search scores [R] and the history ([R, G] each)."""
  def one(task_param, key):
    score = lambda population, k: search_lib.rollout_returns(env, space, decode(population),
                                                             task_param, k)
    return search_lib.pgpe_search(score, center, scale, pgpe_config, key)
  return jax.device_get(jax.jit(jax.vmap(one))(task_params, keys))


def _dataset_best(env, space, dataset, top: int, episodes: int, key) -> np.ndarray:
  """Per task, the best mean return over ``episodes`` fresh episodes among the ``top``
  policies of the dataset's single-episode returns (one lucky episode does not make a
  policy the best)."""
  top = min(top, dataset.size)
  rows = np.argsort(-dataset.returns, axis=0)[:top].T                 # [S, top]
  tasks = np.repeat(dataset.task_params, top, axis=0)
  means = _evaluate(env, space, jnp.asarray(dataset.params[rows.reshape(-1)]),
                    jnp.asarray(tasks), episodes, key)
  return means.reshape(len(dataset.task_names), top).max(1)


def _ratio(found: float, best: float):
  """Recovery, found / best; None (undefined) where the dataset's best is not positive."""
  return float(found / best) if best > 0 else None


def recovery(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """Latent PGPE per trained latent size and PGPE in Θ, on every task of the family."""
  _, pgpe_config = _configs(config)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  env = envs.make(dataset.env_name)
  space = dataset.space()
  tasks = jnp.asarray(dataset.task_params)
  seeds = config.search_seeds
  pairs = jnp.repeat(tasks, seeds, axis=0)            # task-major: row = task * seeds + seed
  key = jax.random.PRNGKey(config.seed)
  eval_key, key = jax.random.split(key)
  dataset_best = _dataset_best(env, space, dataset, config.recovery_dataset_top,
                               config.eval_episodes, eval_key)
  trained = store.latent_dims(workdir)
  spaces = [("theta", None)] + [("latent", int(d)) for d in config.latent_dims
                                if int(d) in trained]
  if len(spaces) == 1:
    raise FileNotFoundError(f"no autoencoder of latent sizes {list(config.latent_dims)} in "
                            f"{workdir} (run experiments.compress --stages=train)")
  steps = search_lib.env_steps_per_generation(pgpe_config, env)
  rows = []
  for kind, latent_dim in tqdm.tqdm(spaces, unit="search space", desc="recovery"):
    search_key = jax.random.fold_in(key, latent_dim or 0)
    if kind == "theta":
      params = jnp.asarray(dataset.params)
      center, scale, decode = params.mean(0), params.std(0), lambda x: x
    else:
      compressed = store.load(workdir, latent_dim)
      codes = jnp.asarray(compressed.codes)
      center, scale, decode = codes.mean(0), codes.std(0), compressed.decode
    start = time.time()
    best, best_score, history = _searches(env, space, decode, center, scale, pgpe_config,
                                          pairs, jax.random.split(search_key, len(pairs)))
    seconds = time.time() - start
    evaluated = _evaluate(env, space, decode(jnp.asarray(best)), pairs, config.eval_episodes,
                          jax.random.fold_in(eval_key, latent_dim or 0))
    for r in range(len(pairs)):
      t = r // seeds
      rows.append({
          "space": kind, "latent_dim": latent_dim, "task": dataset.task_names[t],
          "seed": r % seeds, "dim": int(center.size),
          "compression_ratio": space.num_params / center.size,
          "search_best": float(best_score[r]), "best_return": float(evaluated[r]),
          "dataset_best_return": float(dataset_best[t]),
          "recovery": _ratio(evaluated[r], dataset_best[t]),
          "env_steps": pgpe_config.generations * steps,
          "curve": {"env_steps": [(g + 1) * steps for g in range(pgpe_config.generations)],
                    "best": history["best"][r].tolist(),
                    "mean": history["mean"][r].tolist()},
          "seconds_with_compile_all_tasks": seconds})
  files.write_jsonl(os.path.join(workdir, "recovery.jsonl"), rows)
  files.write_json(os.path.join(workdir, "recovery_summary.json"), recovery_summary(rows))
  return rows


def adaptation(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Latent PGPE vs PGPE in Θ vs EAR's CEM on ``adapt.env_name``'s held-out tasks."""
  _, pgpe_config = _configs(config)
  a = config.adapt
  if not a.env_name:
    raise ValueError(f"config.adapt.env_name is empty: no held-out tasks for "
                     f"{config.env_name}")
  ear_run = None
  if a.ear_workdir:   # read first: a missing run fails before the searches, not after
    ear_run = load_run(a.ear_workdir)
    if ear_run.env.name != a.env_name:
      raise ValueError(f"adapt.ear_workdir trained {ear_run.env.name}, not {a.env_name}")
  # Every method steps the same env (the EAR run's, with its options, when there is one).
  env = ear_run.env if ear_run is not None else envs.make(a.env_name)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  space = dataset.space()
  if (space.observation_size, space.action_size) != (env.observation_size, env.action_size):
    raise ValueError(f"the dataset's policies ({dataset.env_name}) do not fit {a.env_name}")
  compressed = store.load(workdir, a.latent_dim)
  cem_episodes = a.cem_generations * cem.CEMConfig().population
  if ear_run is not None and cem_episodes != pgpe_config.population * pgpe_config.generations:
    raise ValueError(f"unequal budgets: CEM {cem_episodes} episodes per task, PGPE "
                     f"{pgpe_config.population * pgpe_config.generations}")
  targets = jnp.asarray(env.adapt_tasks)
  seeds = config.search_seeds
  pairs = jnp.repeat(targets, seeds, axis=0)
  key = jax.random.PRNGKey(config.seed)
  codes = jnp.asarray(compressed.codes)
  params = jnp.asarray(dataset.params)
  start_z = codes.mean(0)
  searches = {
      f"latent_pgpe_z{a.latent_dim}": (start_z, codes.std(0), compressed.decode),
      # Θ-PGPE starts from the same policy, g(mean code), scaled per weight like the data.
      "theta_pgpe": (compressed.decode(start_z), params.std(0), lambda x: x)}
  steps = search_lib.env_steps_per_generation(pgpe_config, env)
  result = {"env_name": env.name, "tasks": list(env.adapt_task_names),
            "task_params": env.adapt_tasks.tolist(), "seeds": seeds,
            "budget_env_steps_per_task": pgpe_config.generations * steps, "methods": {}}
  for m, (name, (center, scale, decode)) in enumerate(tqdm.tqdm(searches.items(),
                                                               unit="method", desc="adapt")):
    begin = time.time()
    best, _, history = _searches(env, space, decode, center, scale, pgpe_config, pairs,
                                 jax.random.split(jax.random.fold_in(key, m), len(pairs)))
    final = _evaluate(env, space, decode(jnp.asarray(best)), pairs, config.eval_episodes,
                      jax.random.fold_in(key, 100 + m))
    result["methods"][name] = _per_task(env, seeds, history["best"], final, steps,
                                        time.time() - begin)
  if ear_run is not None:
    result["methods"]["ear_cem"] = _ear_cem(ear_run, a.cem_generations, env, targets, seeds,
                                            key, config.eval_episodes)
  files.write_json(os.path.join(workdir, "adapt.json"), result)
  files.write_json(os.path.join(workdir, "adapt_summary.json"), adaptation_summary(result))
  return result


def _per_task(env, seeds, best_curves, final, steps, seconds) -> dict:
  """Per task: every seed's best-so-far curve and final evaluated return."""
  out = {"env_steps": [(g + 1) * steps for g in range(best_curves.shape[1])],
         "seconds_with_compile": seconds, "tasks": {}}
  for t, name in enumerate(env.adapt_task_names):
    rows = slice(t * seeds, (t + 1) * seeds)
    out["tasks"][name] = {"best_curve": np.asarray(best_curves[rows]).tolist(),
                          "final_return": np.asarray(final[rows]).tolist()}
  return out


def _ear_cem(run, generations, env, targets, seeds, key, eval_episodes) -> dict:
  """Algorithm 2 (CEM over LTEs, the release's settings) with the frozen EAR ``run``."""
  cem_config = cem.CEMConfig(generations=generations)

  def one(key):
    score = cem.rollout_score_fn(run.env, run.policy, targets)
    return cem.cem(score, key, len(targets), run.lte_dim, cem_config)

  begin = time.time()
  best, history = jax.device_get(jax.jit(jax.vmap(one))(
      jax.random.split(jax.random.fold_in(key, 7), seeds)))         # [seeds, T, d]
  # Re-evaluate each seed's chosen LTE on fresh episodes, task-major like the searches.
  ltes = jnp.asarray(np.swapaxes(best, 0, 1).reshape(-1, run.lte_dim))
  pairs = jnp.repeat(targets, seeds, axis=0)
  n = eval_episodes
  episode = lte_lib.make_rollout(run.env)(
      run.policy, jnp.repeat(ltes, n, axis=0), jnp.repeat(pairs, n, axis=0),
      jax.random.split(jax.random.fold_in(key, 8), len(pairs) * n), False)
  final = np.asarray(episode.ret).reshape(-1, n).mean(1)
  # history["best"]: [seeds, G, T] generation bests -> task-major best-so-far [T*seeds, G]
  curves = np.maximum.accumulate(np.moveaxis(history["best"], 2, 0), axis=2).reshape(
      -1, cem_config.generations)
  out = _per_task(env, seeds, curves, final,
                  cem.env_steps_per_generation(cem_config.population, env),
                  time.time() - begin)
  out["ear_workdir"], out["checkpoint_epoch"] = run.workdir, run.epoch
  return out


def space_label(row) -> str:
  return "Θ" if row["space"] == "theta" else f"z{row['latent_dim']}"


def recovery_summary(rows: list[dict]) -> dict:
  """Per task: the dataset's best return and, per search space (``Θ``, ``z<d>``), the
  recovery and the re-evaluated best return, mean and std over seeds."""
  out = {}
  for task in dict.fromkeys(r["task"] for r in rows):
    mine = [r for r in rows if r["task"] == task]
    entry = {"dataset_best_return": mine[0]["dataset_best_return"], "spaces": {}}
    for label in dict.fromkeys(space_label(r) for r in mine):
      runs = [r for r in mine if space_label(r) == label]
      rec = np.array([np.nan if r["recovery"] is None else r["recovery"] for r in runs])
      ret = np.array([r["best_return"] for r in runs])
      defined = not np.isnan(rec).any()
      entry["spaces"][label] = {"recovery_mean": float(rec.mean()) if defined else None,
                                "recovery_std": float(rec.std()) if defined else None,
                                "best_return_mean": float(ret.mean()),
                                "best_return_std": float(ret.std()),
                                "compression_ratio": runs[0]["compression_ratio"],
                                "seeds": len(runs)}
    out[task] = entry
  return out


def recovery_table(rows: list[dict]) -> str:
  """Markdown: per task, the dataset's best return and each space's recovery (mean ±
  std over seeds)."""
  summary = recovery_summary(rows)
  labels = list(next(iter(summary.values()))["spaces"])
  lines = ["| task | dataset best return | " + " | ".join(
               f"{l} recovery" for l in labels) + " |",
           "|---|---:|" + "---:|" * len(labels)]
  for task, entry in summary.items():
    cells = [f"{entry['spaces'][l]['recovery_mean']:.2f} ± "
             f"{entry['spaces'][l]['recovery_std']:.2f}"
             if entry["spaces"][l]["recovery_mean"] is not None else
             f"n/a (return {entry['spaces'][l]['best_return_mean']:.1f})" for l in labels]
    lines.append(f"| {task} | {entry['dataset_best_return']:.1f} | " + " | ".join(cells)
                 + " |")
  return "\n".join(lines)


def adaptation_summary(result: dict) -> dict:
  """Per method and task: the final return (fresh episodes) and the best return found,
  mean and std over seeds, at the common budget."""
  out = {}
  for method, res in result["methods"].items():
    out[method] = {}
    for task in result["tasks"]:
      final = np.array(res["tasks"][task]["final_return"])
      found = np.array(res["tasks"][task]["best_curve"])[:, -1]
      out[method][task] = {"final_return_mean": float(final.mean()),
                           "final_return_std": float(final.std()),
                           "search_best_mean": float(found.mean()),
                           "env_steps": res["env_steps"][-1]}
  return out


def adaptation_table(result: dict) -> str:
  """Markdown: per method and task, the final return (fresh episodes) mean ± std over
  seeds at the common budget."""
  summary = adaptation_summary(result)
  lines = [f"budget per task: {result['budget_env_steps_per_task']:,} env steps, "
           f"{result['seeds']} seeds", "",
           "| method | " + " | ".join(result["tasks"]) + " |",
           "|---|" + "---:|" * len(result["tasks"])]
  for method, per_task in summary.items():
    cells = [f"{per_task[t]['final_return_mean']:.1f} ± {per_task[t]['final_return_std']:.1f}"
             for t in result["tasks"]]
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
