"""The compression's jobs, the stages of ``experiments/compress.py``, each
``(config, workdir) -> summary`` and each writing its results into ``workdir``:

- ``build_dataset``: novelty search -> ``dataset.npz``, ``dataset_summary.json``;
- ``train_autoencoders``: one autoencoder per ``latent_dims`` -> ``autoencoder_z<d>/``,
  ``autoencoders.jsonl`` (final loss, reconstruction error, compression ratio |θ| / |z|);
- ``recovery``: latent PGPE on every task of the family per latent size, PGPE in Θ and
  random codes (the same number of episodes), ``search_seeds`` seeds -> ``recovery.jsonl``
  and ``recovery_summary.json`` (the table's numbers: mean, std and 95 % CI over seeds;
  with ``goal_return``, how many seeds reached it).  Recovery = the best policy's return
  over the dataset's best policy's return, both re-evaluated on ``eval_episodes`` fresh
  episodes (the issue's reading: best over best; the dataset's best is the best of its
  ``recovery_dataset_top`` best single episodes, re-evaluated; undefined where it is not
  positive).  Beside the searches, what the decoder holds: the dataset's best policy
  encoded, decoded and run (``decoded.jsonl``: decoded over original return), and on a
  1-D latent ``grid_codes`` evenly spaced codes across the dataset's codes, each run
  (``grid_z1.json``);
- ``adaptation``: latent PGPE vs PGPE in Θ vs EAR's CEM over LTEs on the held-out tasks of
  ``adapt.env_name``, same env-step budget per task, ``search_seeds`` seeds ->
  ``adapt.json`` and ``adapt_summary.json``.
"""
from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from earjax import envs
from earjax import files
from earjax import statistics
from earjax.adaptation import cem
from earjax.adaptation import lte as lte_lib
from earjax.compression import autoencoder as ae_lib
from earjax.compression import search as search_lib
from earjax.compression import store
from earjax.compression.dataset import NoveltySearch, NoveltySearchConfig, PolicyDataset
from earjax.compression.policies import PolicySpace
from earjax.policy import load_run


def _configs(config: ml_collections.ConfigDict):
  """The dataset settings and PGPE's in Z and in Θ (they differ in ``std_init`` only:
  ``pgpe.theta_std_init`` in Θ), checked, with the jobs' own counts."""
  for name in ("search_seeds", "eval_episodes", "recovery_dataset_top"):
    if int(config[name]) < 1:
      raise ValueError(f"{name} must be a positive integer, got {config[name]!r}")
  if int(config.grid_codes) < 0:
    raise ValueError(f"grid_codes must be an integer >= 0, got {config.grid_codes!r}")
  pgpe = dict(config.pgpe)
  theta_std_init = pgpe.pop("theta_std_init")
  latent = search_lib.PGPEConfig(**pgpe)
  return (NoveltySearchConfig(**config.dataset), latent,
          dataclasses.replace(latent, std_init=theta_std_init))


def build_dataset(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Novelty search on ``config.env_name`` -> ``DIR/dataset.npz`` and its summary."""
  dataset_config, _, _ = _configs(config)
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


def _dataset_best(env, space, dataset, top: int, episodes: int, key):
  """Per task, the best mean return over ``episodes`` fresh episodes among the ``top``
  policies of the dataset's single-episode returns (one lucky episode does not make a
  policy the best), and that policy's index in the dataset: ([S], [S])."""
  top = min(top, dataset.size)
  rows = np.argsort(-dataset.returns, axis=0)[:top].T                 # [S, top]
  tasks = np.repeat(dataset.task_params, top, axis=0)
  means = _evaluate(env, space, jnp.asarray(dataset.params[rows.reshape(-1)]),
                    jnp.asarray(tasks), episodes, key).reshape(len(dataset.task_names), top)
  best = means.argmax(1)
  return means.max(1), rows[np.arange(len(best)), best]


def _random_codes(env, space, decode, center, scale, population: int, generations: int,
                  task_params, keys):
  """The search baseline: ``population`` x ``generations`` codes drawn from N(center,
  scale^2), one episode each (PGPE's budget); per (task, seed) row of ``task_params``
  [R, p] / ``keys`` [R], the best code [R, d] and its episode's return [R]."""
  def one(task_param, key):
    draw_key, score_key = jax.random.split(key)
    codes = center + scale * jax.random.normal(draw_key, (population * generations,)
                                               + center.shape)
    scores = jnp.concatenate([
        search_lib.rollout_returns(env, space, decode(chunk), task_param, k)
        for chunk, k in zip(jnp.split(codes, generations),
                            jax.random.split(score_key, generations))])
    return codes[jnp.argmax(scores)], scores.max()
  return jax.device_get(jax.jit(jax.vmap(one))(task_params, keys))


def _grid(env, space, compressed, dataset, points: int, episodes: int, goal, key) -> dict:
  """``points`` codes evenly spaced from the smallest to the largest of the dataset's
  1-D codes, each decoded and run on every task (mean of ``episodes`` fresh episodes)."""
  codes = np.linspace(compressed.codes.min(), compressed.codes.max(), points)[:, None]
  tasks = np.asarray(dataset.task_params)
  thetas = compressed.decode(jnp.asarray(codes, jnp.float32))     # decoded once, run per task
  per_task = {}
  for t, name in enumerate(dataset.task_names):
    returns = _evaluate(env, space, thetas,
                        jnp.asarray(np.repeat(tasks[t:t + 1], points, 0)), episodes,
                        jax.random.fold_in(key, t))
    per_task[name] = {"returns": returns.tolist(), "best_code": float(codes[returns.argmax(), 0]),
                      "best_return": float(returns.max()),
                      "codes_reaching_goal": None if goal is None else int((returns >= goal).sum())}
  return {"latent_dim": 1, "codes": codes[:, 0].tolist(), "eval_episodes": episodes,
          "goal_return": goal, "tasks": per_task}


def _ratio(found: float, best: float):
  """Recovery, found / best; None (undefined) where the dataset's best is not positive."""
  return float(found / best) if best > 0 else None


def recovery(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """Latent PGPE per trained latent size, PGPE in Θ and random codes on every task of the
  family; the dataset's best policies decoded, and the 1-D latent's grid."""
  _, pgpe_config, theta_config = _configs(config)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  env = envs.make(dataset.env_name)
  space = dataset.space()
  tasks = jnp.asarray(dataset.task_params)
  seeds = config.search_seeds
  pairs = jnp.repeat(tasks, seeds, axis=0)            # task-major: row = task * seeds + seed
  key = jax.random.PRNGKey(config.seed)
  eval_key, key = jax.random.split(key)
  dataset_best, best_index = _dataset_best(env, space, dataset, config.recovery_dataset_top,
                                           config.eval_episodes, eval_key)
  trained = store.latent_dims(workdir)
  latent = [int(d) for d in config.latent_dims if int(d) in trained]
  if not latent:
    raise FileNotFoundError(f"no autoencoder of latent sizes {list(config.latent_dims)} in "
                            f"{workdir} (run experiments.compress --stages=train)")
  spaces = ([("theta", None)] + [("latent", d) for d in latent]
            + [("random", d) for d in latent])
  loaded = {d: store.load(workdir, d) for d in latent}   # PGPE and random codes share each
  steps = search_lib.env_steps_per_generation(pgpe_config, env)
  goal = config.goal_return
  rows, decoded_rows, grids = [], [], {}
  for kind, latent_dim in tqdm.tqdm(spaces, unit="search space", desc="recovery"):
    search_key = jax.random.fold_in(key, latent_dim or 0)
    if kind == "theta":
      params = jnp.asarray(dataset.params)
      center, scale, decode = params.mean(0), params.std(0), lambda x: x
    else:
      compressed = loaded[latent_dim]
      codes = jnp.asarray(compressed.codes)
      center, scale, decode = codes.mean(0), codes.std(0), compressed.decode
    start = time.time()
    if kind == "random":
      best, best_score = _random_codes(env, space, decode, center, scale,
                                       pgpe_config.population, pgpe_config.generations,
                                       pairs, jax.random.split(jax.random.fold_in(
                                           search_key, 1), len(pairs)))
      history = None
    else:
      best, best_score, history = _searches(
          env, space, decode, center, scale, theta_config if kind == "theta" else pgpe_config,
          pairs, jax.random.split(search_key, len(pairs)))
    seconds = time.time() - start
    evaluated = _evaluate(env, space, decode(jnp.asarray(best)), pairs, config.eval_episodes,
                          jax.random.fold_in(eval_key, 1000 * (kind == "random")
                                             + (latent_dim or 0)))
    for r in range(len(pairs)):
      t = r // seeds
      rows.append({
          "space": kind, "latent_dim": latent_dim, "task": dataset.task_names[t],
          "seed": r % seeds, "dim": int(center.size),
          "compression_ratio": space.num_params / center.size,
          "search_best": float(best_score[r]), "best_return": float(evaluated[r]),
          "dataset_best_return": float(dataset_best[t]),
          "recovery": _ratio(evaluated[r], dataset_best[t]),
          "reached_goal": None if goal is None else bool(evaluated[r] >= goal),
          "env_steps": pgpe_config.generations * steps,
          "curve": None if history is None else {
              "env_steps": [(g + 1) * steps for g in range(pgpe_config.generations)],
              "best": history["best"][r].tolist(), "mean": history["mean"][r].tolist()},
          "seconds_with_compile_all_tasks": seconds})
    if kind == "latent":
      decoded_rows += _decoder_holds(config, workdir, env, space, dataset, compressed,
                                     dataset_best, best_index, grids, eval_key)
  files.write_jsonl(os.path.join(workdir, "recovery.jsonl"), rows)
  files.write_jsonl(os.path.join(workdir, "decoded.jsonl"), decoded_rows)
  files.write_json(os.path.join(workdir, "recovery_summary.json"),
                   recovery_summary(rows, decoded_rows, grids))
  return rows


def _decoder_holds(config, workdir, env, space, dataset, compressed, dataset_best,
                   best_index, grids: dict, eval_key) -> list[dict]:
  """What one latent size's decoder holds: per task the dataset's best policy encoded,
  decoded and run (rows of ``decoded.jsonl``); for a 1-D latent the grid, written to
  ``grid_z1.json`` and put in ``grids``."""
  d = compressed.latent_dim
  decoded = _evaluate(env, space, compressed.decode(jnp.asarray(compressed.codes)[best_index]),
                      jnp.asarray(dataset.task_params), config.eval_episodes,
                      jax.random.fold_in(eval_key, 2000 + d))
  if d == 1 and config.grid_codes:
    grids[1] = _grid(env, space, compressed, dataset, int(config.grid_codes),
                     config.eval_episodes, config.goal_return,
                     jax.random.fold_in(eval_key, 3000))
    files.write_json(os.path.join(workdir, "grid_z1.json"), grids[1])
  return [{"latent_dim": d, "task": name, "dataset_index": int(best_index[t]),
           "dataset_best_return": float(dataset_best[t]),
           "decoded_return": float(decoded[t]),
           "decoded_recovery": _ratio(decoded[t], dataset_best[t])}
          for t, name in enumerate(dataset.task_names)]


def decoder_check(config: ml_collections.ConfigDict, workdir: str) -> list[dict]:
  """The recovery stage's decoder check alone, without the searches: ``decoded.jsonl``
  and, for a 1-D latent, ``grid_z1.json`` (the same keys, so the same figures)."""
  _configs(config)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  env = envs.make(dataset.env_name)
  space = dataset.space()
  eval_key = jax.random.split(jax.random.PRNGKey(config.seed))[0]
  dataset_best, best_index = _dataset_best(env, space, dataset, config.recovery_dataset_top,
                                           config.eval_episodes, eval_key)
  latent = [int(d) for d in config.latent_dims if int(d) in store.latent_dims(workdir)]
  if not latent:
    raise FileNotFoundError(f"no autoencoder of latent sizes {list(config.latent_dims)} in "
                            f"{workdir} (run experiments.compress --stages=train)")
  rows, grids = [], {}
  for d in latent:
    rows += _decoder_holds(config, workdir, env, space, dataset, store.load(workdir, d),
                           dataset_best, best_index, grids, eval_key)
  files.write_jsonl(os.path.join(workdir, "decoded.jsonl"), rows)
  return rows


def read_decoded(workdir: str) -> list[dict]:
  """The recovery stage's ``decoded.jsonl`` rows ([] for a run from before it wrote one)."""
  return files.read_jsonl(os.path.join(workdir, "decoded.jsonl"))


def adaptation(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Latent PGPE vs PGPE in Θ vs EAR's CEM on ``adapt.env_name``'s held-out tasks."""
  _, pgpe_config, theta_config = _configs(config)
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
      f"latent_pgpe_z{a.latent_dim}": (start_z, codes.std(0), compressed.decode, pgpe_config),
      # Θ-PGPE starts from the same policy, g(mean code), scaled per weight like the data.
      "theta_pgpe": (compressed.decode(start_z), params.std(0), lambda x: x, theta_config)}
  steps = search_lib.env_steps_per_generation(pgpe_config, env)
  result = {"env_name": env.name, "tasks": list(env.adapt_task_names),
            "task_params": env.adapt_tasks.tolist(), "seeds": seeds,
            "budget_env_steps_per_task": pgpe_config.generations * steps, "methods": {}}
  for m, (name, (center, scale, decode, search_config)) in enumerate(
      tqdm.tqdm(searches.items(), unit="method", desc="adapt")):
    begin = time.time()
    best, _, history = _searches(env, space, decode, center, scale, search_config, pairs,
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
  if row["space"] == "theta":
    return "Θ"
  return f"{'random ' if row['space'] == 'random' else ''}z{row['latent_dim']}"


def recovery_summary(rows: list[dict], decoded_rows: list[dict] = (),
                     grids: dict | None = None) -> dict:
  """Per task: the dataset's best return; per search space (``Θ``, ``z<d>``, ``random
  z<d>``) the recovery and the re-evaluated best return, mean, std and 95 % CI over seeds
  (rliable, fixed resamples) and the seeds that reached ``goal_return``; per latent size
  the dataset's best policy decoded (``decoded``); the 1-D grid's best (``grid``)."""
  out = {}
  for task in dict.fromkeys(r["task"] for r in rows):
    mine = [r for r in rows if r["task"] == task]
    entry = {"dataset_best_return": mine[0]["dataset_best_return"], "spaces": {}}
    for label in dict.fromkeys(space_label(r) for r in mine):
      runs = [r for r in mine if space_label(r) == label]
      rec = np.array([np.nan if r["recovery"] is None else r["recovery"] for r in runs])
      ret = np.array([r["best_return"] for r in runs])
      defined = not np.isnan(rec).any()
      ci = (statistics.interval_estimates({"recovery": rec}, seed=0)["recovery"]["mean_ci"]
            if defined and len(runs) > 1 else None)
      reached = [r.get("reached_goal") for r in runs]
      entry["spaces"][label] = {"recovery_mean": float(rec.mean()) if defined else None,
                                "recovery_std": float(rec.std()) if defined else None,
                                "recovery_ci": ci,
                                "best_return_mean": float(ret.mean()),
                                "best_return_std": float(ret.std()),
                                "seeds_reaching_goal": None if None in reached
                                else int(sum(reached)),
                                "compression_ratio": runs[0]["compression_ratio"],
                                "seeds": len(runs)}
    entry["decoded"] = {f"z{r['latent_dim']}": {k: r[k] for k in (
        "dataset_index", "decoded_return", "decoded_recovery")}
                        for r in decoded_rows if r["task"] == task}
    entry["grid"] = {f"z{d}": {"grid_codes": len(g["codes"]),
                               **{k: v for k, v in g["tasks"][task].items() if k != "returns"}}
                     for d, g in (grids or {}).items()}
    out[task] = entry
  return out


def recovery_table(rows: list[dict], decoded_rows: list[dict] = ()) -> str:
  """Markdown: per task, the dataset's best return, each space's recovery (mean ± std
  over seeds; with a goal, the seeds that reached it) and, per latent size, the dataset's
  best policy decoded (its return over the original's)."""
  summary = recovery_summary(rows, decoded_rows)
  first = next(iter(summary.values()))
  labels, decoded = list(first["spaces"]), list(first["decoded"])
  lines = ["| task | dataset best return | " + " | ".join(
               [f"{l} recovery" for l in labels] + [f"decoded best, {d}" for d in decoded])
           + " |", "|---|---:|" + "---:|" * (len(labels) + len(decoded))]

  def cell(space):
    goal = ("" if space["seeds_reaching_goal"] is None
            else f" ({space['seeds_reaching_goal']}/{space['seeds']} at goal)")
    if space["recovery_mean"] is None:
      return f"n/a (return {space['best_return_mean']:.1f})"
    return f"{space['recovery_mean']:.2f} ± {space['recovery_std']:.2f}{goal}"

  for task, entry in summary.items():
    cells = [cell(entry["spaces"][l]) for l in labels] + [
        "n/a" if entry["decoded"][d]["decoded_recovery"] is None
        else f"{entry['decoded'][d]['decoded_recovery']:.2f}" for d in decoded]
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
