"""Adapts a frozen EAR policy to new tasks by searching the LTE only (Algorithm 2).

  python -m experiments.adapt --workdir=runs/hcv_cpu [--tasks=adapt|1.5,2.5,3.5] \
      [--methods=cem,table_es --finetune=runs/hcv_ohe_cpu/finetune/<tasks>.json]

Each method runs all its generations for all tasks in one jit (every candidate of every
task rolls out in one vmapped batch per generation).  Writes ``<out_dir>/results.json``
(per method, task and generation: best and mean elite return, env steps used so far,
the best candidate's velocity; then the chosen LTE evaluated on fresh episodes with
deterministic and stochastic actions) and ``<out_dir>/curves.png`` (return vs env
steps; the OHE-SAC fine-tuning baseline of ``experiments.finetune`` on the same plot).
Each chosen LTE is kept in the run's skill library (``earjax.skills``) as
``<method>_<task>``, e.g. ``cem_vel1.5``, for ``experiments.render --lte`` and
``experiments.interpolate``.
"""
import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from earjax import checkpoint
from earjax import files
from earjax import parallel
from earjax import skills
from earjax.adaptation import cem
from earjax.adaptation import gradient
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run, restore_critic
from earjax.run import Run
from experiments import cli
from experiments.plotting import task_panels

METHODS = ("cem", "table_es", "grad_rollout", "grad_critic")

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_CHECKPOINT, _SEED_INDEX = cli.define_checkpoint_flags()
_TASKS = flags.DEFINE_string("tasks", "adapt", "'adapt' (the family's held-out tasks) or "
                             "a comma list of task names or parameters.")
_METHODS = flags.DEFINE_list("methods", ["cem", "table_es"], "Searches to run: "
                             + ", ".join(METHODS) + ".")
_GENERATIONS = flags.DEFINE_integer("generations", cem.CEM_DEFAULTS.generations,
                                    "Generations of every method (gradient steps of "
                                    "grad_*).")
_GRADIENT_LR = flags.DEFINE_float("gradient_lr", gradient.GradientConfig.learning_rate,
                                  "Adam's step size of grad_rollout and grad_critic.")
_GRADIENT_CLIP = flags.DEFINE_float("gradient_clip", gradient.GradientConfig.max_grad_norm,
                                    "Each task's gradient is clipped to this L2 norm before "
                                    "Adam (grad_rollout and grad_critic).")
_GRADIENT_HORIZON = flags.DEFINE_integer("gradient_horizon",
                                         gradient.GradientConfig.horizon,
                                         "grad_rollout's truncation window in env steps "
                                         "(0: back-propagate through the whole episode).")
_STOCHASTIC = flags.DEFINE_bool("stochastic", False, "Score candidates with sampled "
                                "actions (the release) instead of tanh(mean).")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 10, "Fresh episodes that evaluate "
                                      "each chosen LTE, per action mode.")
_SEED = flags.DEFINE_integer("seed", 0, "Search seed.")
_FINETUNE = flags.DEFINE_string("finetune", None, "results JSON of experiments.finetune "
                                "to draw on the same plot.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output folder (default DIR/adapt).")
_REPLOT = flags.DEFINE_bool("replot", False, "Only redraw curves.png from the folder's "
                            "results.json (e.g. once --finetune exists); no search.")
_SAVE_SKILLS = flags.DEFINE_bool("save_skills", True, "Keep each method's LTE for each "
                                 "task in the run's skill library as <method>_<task>.")


def search(method: str, run, task_params: np.ndarray, key: jax.Array):
  """(best LTE per task, history, wall seconds including compilation) of one method."""
  num_tasks = len(task_params)
  layout = parallel.search_layout()   # the candidates over every device, if several
  if method == "cem":
    config = cem.CEMConfig(generations=_GENERATIONS.value)

    def go(policy, key):
      score = cem.rollout_score_fn(run.env, policy, task_params, _STOCHASTIC.value, layout)
      return cem.cem(score, key, num_tasks, run.lte_dim, config)
  elif method == "table_es":
    config = cem.ESConfig(generations=_GENERATIONS.value)
    grid_key, key = jax.random.split(key)
    first = cem.pair_interpolations(np.asarray(run.ltes), config.population, grid_key)

    def go(policy, key):
      score = cem.rollout_score_fn(run.env, policy, task_params, _STOCHASTIC.value, layout)
      return cem.table_es(score, key, first, num_tasks, config)
  else:
    return gradient_search(method, run, task_params, key)
  start = time.time()
  best, history = jax.device_get(jax.jit(go)(parallel.replicate(run.policy, layout), key))
  population = config.population
  return best, history, time.time() - start, population


def gradient_search(method: str, run, task_params: np.ndarray, key: jax.Array):
  """``search`` for grad_rollout and grad_critic (``earjax.adaptation.gradient``), with
  CEM's population as episodes per step and its generations as steps."""
  config = gradient.GradientConfig(episodes=cem.CEMConfig().population,
                                   steps=_GENERATIONS.value, learning_rate=_GRADIENT_LR.value,
                                   max_grad_norm=_GRADIENT_CLIP.value,
                                   horizon=_GRADIENT_HORIZON.value,
                                   normalize=bool(run.config.ear_sac.normalize_lte))
  init = gradient.nearest_ltes(run.task_params, np.asarray(run.ltes), task_params)
  if method == "grad_rollout":
    # MJX's solver is reverse-differentiable with one iteration (module docstring).
    env = Run.from_config(run.config, impl="jax", solver_iterations=1).env
    gradient.require_differentiable(env)

    def go(policy, critic_params, key):
      del critic_params
      objective = gradient.rollout_objective(env, policy, task_params, config.horizon)
      return gradient.ascend(objective, init, key, config)
    critic_params = None
  else:
    critic_apply, critic_params = restore_critic(run)
    labels = gradient.task_labels(run.task_params, task_params)

    def go(policy, critic_params, key):
      critic = lambda obs, action, label: critic_apply(critic_params, obs, action, label)
      objective = gradient.critic_objective(run.env, policy, critic, task_params, labels)
      return gradient.ascend(objective, init, key, config)
  start = time.time()
  best, history = jax.device_get(jax.jit(go)(run.policy, critic_params, key))
  return best, history, time.time() - start, config.episodes


def gradient_diagnostics(history, g: int, t: int) -> dict:
  """A gradient method's step ``g`` on task ``t``: whether its gradient was finite, its
  L2 norm (None where it or its norm is not finite), how many of the step's episodes it
  averages (``episodes_used``: the others' return or derivative was not finite), the
  LTE it rolled out (``lte``, so a step's gradient can be traced again from the record)
  and how far that is from the first step's (``lte_distance``); nothing for the
  searches."""
  if "grad_norm" not in history:
    return {}
  norm = float(history["grad_norm"][g, t])
  lte = np.asarray(history["lte"][:, t])
  return {"grad_finite": bool(history["grad_finite"][g, t]),
          "grad_norm": norm if np.isfinite(norm) else None,
          "episodes_used": int(history["episodes_used"][g, t]),
          "lte": lte[g].tolist(),
          "lte_distance": float(np.linalg.norm(lte[g] - lte[0]))}


def evaluate(run, ltes: np.ndarray, task_params: np.ndarray, key: jax.Array) -> list[dict]:
  """Each LTE on its task: ``eval_episodes`` fresh episodes per action mode, one batch."""
  n, num_tasks = _EVAL_EPISODES.value, len(ltes)
  batch = lambda x: jnp.tile(jnp.repeat(jnp.asarray(x), n, axis=0), (2,) + (1,) * (x.ndim - 1))
  stochastic = jnp.repeat(jnp.array([False, True]), num_tasks * n)
  keys = jax.random.split(key, 2 * num_tasks * n)
  episode = jax.device_get(lte_lib.make_rollout(run.env)(
      run.policy, batch(ltes), batch(task_params), keys, stochastic))
  out = []
  for t in range(num_tasks):
    row = {"lte": np.asarray(ltes[t]).tolist()}
    target = run.env.velocity_target(task_params[t])
    for m, mode in enumerate(("deterministic", "stochastic")):
      index = slice((m * num_tasks + t) * n, (m * num_tasks + t + 1) * n)
      ret, vel = episode.ret[index], episode.velocity[index]
      row[mode] = {"return": float(ret.mean()), "return_std": float(ret.std()),
                   "velocity": float(vel.mean())}
      if target is not None:
        row[mode]["velocity_error"] = float(np.abs(vel - target).mean())
    out.append(row)
  return out


def plot(result: dict, finetune: dict | None, path: str) -> None:
  styles = {"cem": "C0", "table_es": "C1", "ohe_finetune": "C2", "grad_rollout": "C3",
            "grad_critic": "C4"}

  def draw(ax, task):
    for method, res in result["methods"].items():
      rows = res["tasks"][task]["generations"]
      steps = [r["env_steps"] / 1e3 for r in rows]
      ax.plot(steps, [r["best_return"] for r in rows], "o-", color=styles[method],
              label=f"EAR {method} best")
      ax.plot(steps, [r["elite_mean_return"] for r in rows], ":", color=styles[method],
              label=f"EAR {method} elite mean")
    if finetune and task in finetune["tasks"]:
      rows = finetune["tasks"][task]["evaluations"]
      ax.plot([r["env_steps"] / 1e3 for r in rows], [r["return"] for r in rows], "s-",
              color=styles["ohe_finetune"], label="OHE-SAC fine-tune (eval)")

  task_panels(result["tasks"], draw, path, xlabel="thousand env steps on the new task",
              ylabel="episode return (200 steps)", panel_size=(4.2, 3.6))


def main(argv):
  cli.start(argv)
  unknown = sorted(set(_METHODS.value) - set(METHODS))
  if unknown:
    cli.fail([f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS)}"])
  if _GENERATIONS.value < 1 or _EVAL_EPISODES.value < 1:
    cli.fail(["generations and eval_episodes must be positive"])
  if not _GRADIENT_CLIP.value > 0 or _GRADIENT_HORIZON.value < 0:
    cli.fail(["gradient_clip must be > 0 and gradient_horizon >= 0 (0: the whole episode)"])
  if _STOCHASTIC.value and any(m.startswith("grad_") for m in _METHODS.value):
    cli.fail(["the gradient methods follow deterministic episodes; drop --stochastic or "
              "the grad_* methods"])
  if _REPLOT.value:
    out_dir = _OUT_DIR.value or os.path.join(_WORKDIR.value, "adapt")
    try:
      with open(os.path.join(out_dir, "results.json")) as f:
        result = json.load(f)
      finetune = None
      if _FINETUNE.value:
        with open(_FINETUNE.value) as f:
          finetune = json.load(f)
    except OSError as e:
      cli.fail([str(e)])
    plot(result, finetune, os.path.join(out_dir, "curves.png"))
    print(f"wrote {out_dir}/curves.png")
    return
  try:
    run = load_run(_WORKDIR.value, _CHECKPOINT.value, _SEED_INDEX.value)
    task_params, task_names = lte_lib.parse_tasks(run.env, _TASKS.value)
    finetune = None
    if _FINETUNE.value:
      with open(_FINETUNE.value) as f:
        finetune = json.load(f)
  except (ValueError, OSError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  key = jax.random.PRNGKey(_SEED.value)
  result = {"workdir": run.workdir, "env": run.env.name, "checkpoint_epoch": run.epoch,
            "tasks": list(task_names), "task_params": task_params.tolist(),
            "scoring": "stochastic" if _STOCHASTIC.value else "deterministic",
            "train_ltes": np.asarray(run.ltes).tolist(), "methods": {}}
  for method in _METHODS.value:
    search_key, eval_key = jax.random.split(jax.random.fold_in(key, METHODS.index(method)))
    best, history, seconds, population = search(method, run, task_params, search_key)
    steps = cem.env_steps_per_generation(population, run.env)
    finals = evaluate(run, best, task_params, eval_key)
    per_task = {}
    for t, name in enumerate(task_names):
      generations = [{"generation": g + 1, "env_steps": (g + 1) * steps,
                      "best_return": float(history["best"][g, t]),
                      "elite_mean_return": float(history["elite_mean"][g, t]),
                      "best_velocity": float(history["best_aux"]["velocity"][g, t]),
                      **gradient_diagnostics(history, g, t)}
                     for g in range(_GENERATIONS.value)]
      per_task[name] = {"generations": generations, "final": finals[t]}
    result["methods"][method] = {"population": population,
                                 "generations": _GENERATIONS.value,
                                 "env_steps_per_task": _GENERATIONS.value * steps,
                                 "wall_seconds_with_compile": seconds, "tasks": per_task}
    for name in task_names:
      d = per_task[name]["final"]["deterministic"]
      print(f"{method:>9} {name:>10}: best return {per_task[name]['generations'][-1]['best_return']:8.1f}"
            f"  eval return {d['return']:8.1f}  velocity {d['velocity']:6.2f}"
            + (f"  |v - target| {d['velocity_error']:.3f}" if "velocity_error" in d else ""))
    print(f"{method}: {seconds:.0f} s with compilation")
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "adapt")
  os.makedirs(out_dir, exist_ok=True)
  files.write_json(os.path.join(out_dir, "results.json"), result)
  plot(result, finetune, os.path.join(out_dir, "curves.png"))
  if _SAVE_SKILLS.value:   # after the results: a damaged library loses nothing
    try:
      for method, res in result["methods"].items():
        for name, task in res["tasks"].items():
          skills.save_for_run(run, cli.slug(f"{method}_{name}"), task["final"]["lte"],
                              source=f"experiments.adapt {method}, {name}")
    except ValueError as e:
      cli.fail([f"results written, skills not saved: {e}"])
  print(f"wrote {out_dir}/results.json and {out_dir}/curves.png")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
