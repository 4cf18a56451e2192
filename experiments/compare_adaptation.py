"""The adaptation comparison of the paper (Sec. 4.4): EAR's CEM and table-ES, OHE-SAC
fine-tuning, PEARL and MAML on the same new tasks, budget and seeds.

  python -m experiments.compare_adaptation --family=halfcheetah_vel \
      --runs=ear=runs/cmp/halfcheetah_vel_ear_sac,ohe=runs/cmp/halfcheetah_vel_ohe_sac,pearl=runs/cmp/halfcheetah_vel_pearl,maml=runs/cmp/halfcheetah_vel_maml

``--runs`` names the trained runs (``ear``: an ``ear_sac`` run, for ``ear_cem`` and
``ear_table_es``; ``ohe``: ``ohe_sac``; ``pearl``; ``maml``); every method whose run is
given takes part (``--methods`` picks fewer).  ``--tasks``: ``adapt`` (the family's
held-out tasks), ``inside`` (midpoints of the EAR run's training targets, new tasks
inside the trained range), or task names / parameters, comma-separated; every run must
have trained on the same tasks (its ``env`` section's task distribution and reward,
``comparison.same_tasks``), and the held-out tasks are theirs.  A batched run's training
seeds are each adapted (``--training_seeds``: the first N; default all) with ``--seeds``
adaptation seeds each, and the summary gives 95 % CIs over the training seeds.  Writes into
``--out_dir`` (default ``runs/compare/<family>``): ``results.json`` (every method's
curves per task and seed, ``earjax.comparison``), ``summary.json`` (the table's
numbers) and ``curves.png`` (return, and |velocity - target| where tasks have targets,
vs adaptation env steps, mean +- std over seeds); prints the Markdown table.
"""
import os
import time

from absl import app
from absl import flags
import jax
import matplotlib
import numpy as np

from earjax import checkpoint
from earjax import envs
from earjax import files
from earjax.adaptation import cem
from earjax import comparison as compare
from earjax.training import finetune
from earjax.adaptation import lte as lte_lib
from earjax.config import ConfigError
from earjax.run import load_config
from experiments import cli

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

_FAMILY = flags.DEFINE_string("family", None, "The task family, e.g. halfcheetah_vel.",
                              required=True)
_RUNS = flags.DEFINE_list("runs", None, "kind=workdir pairs; kinds: ear, ohe, pearl, maml.",
                          required=True)
_METHODS = flags.DEFINE_list("methods", None, "Methods to run (default: every one whose "
                             f"run is given); valid: {', '.join(compare.METHODS)}.")
_TASKS = flags.DEFINE_string("tasks", "adapt,inside", "adapt, inside, or task names or "
                             "parameters, comma-separated.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Adaptation seeds per method, task and "
                              "training seed.")
_TRAINING_SEEDS = flags.DEFINE_integer("training_seeds", 0, "Training seeds of each "
                                       "(batched) run to adapt, the first ones; 0: all.")
_BUDGET = flags.DEFINE_integer("budget", cem.DEFAULT_BUDGET, "Adaptation env steps per "
                               "task (CEM's default generations x population x 200 steps).")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 5, "Fresh episodes per evaluation.")
_PEARL_EPISODES = flags.DEFINE_integer("pearl_episodes", compare.PEARL_EPISODES,
                                       "Most context episodes.")
_MAML_STEPS = flags.DEFINE_integer("maml_steps", compare.MAML_STEPS, "Most inner steps.")
_FINETUNE_ENVS = flags.DEFINE_integer("finetune_envs",
                                      finetune.FINETUNE_DEFAULTS.envs_per_task,
                                      "Envs while fine-tuning.")
_FINETUNE_EVAL_EVERY = flags.DEFINE_integer("finetune_eval_every",
                                            finetune.FINETUNE_DEFAULTS.eval_every,
                                            "Fine-tuning epochs between evaluations.")
_SEED = flags.DEFINE_integer("seed", 0, "Base seed.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output folder.")

LABELS = {"ear_cem": "EAR CEM", "ear_table_es": "EAR table-ES",
          "ohe_finetune": "OHE-SAC fine-tune", "pearl": "PEARL", "maml": "MAML"}


def parse_runs(items) -> dict[str, str]:
  runs = {}
  for item in items:
    kind, _, workdir = item.partition("=")
    if kind not in set(compare.RUN_OF.values()) or not workdir:
      raise ValueError(f"bad --runs entry {item!r}: give kind=workdir, kinds "
                       f"{', '.join(sorted(set(compare.RUN_OF.values())))}")
    if not os.path.isdir(workdir):
      raise ValueError(f"no run at {workdir} (--runs {kind})")
    runs[kind] = workdir
  return runs


def parse_task_spec(env, spec: str, runs: dict[str, str]):
  """(task params [K, p], names) of ``--tasks``, duplicates dropped, in order."""
  params = []
  for item in (s.strip() for s in spec.split(",")):
    if item == "inside":
      source = runs.get("ear") or next(iter(runs.values()))
      config = load_config(source)
      ids = list(config.task_ids) or list(range(env.num_tasks))
      params += list(compare.inside_tasks(env.train_tasks[ids]))
    else:
      params += list(lte_lib.parse_tasks(env, item)[0])
  unique = []
  for p in params:
    if not any(np.allclose(p, q) for q in unique):
      unique.append(np.asarray(p, np.float32))
  params = np.stack(unique)
  return params, tuple(env.task_name(p) for p in params)


def plot(result: dict, path: str) -> None:
  tasks = result["tasks"]
  with_targets = any(t["velocity_target"] is not None
                     for rec in result["methods"].values() for t in rec["tasks"].values())
  rows = 2 if with_targets else 1
  fig, axes = plt.subplots(rows, len(tasks), figsize=(3.8 * len(tasks), 3.2 * rows),
                           squeeze=False)
  for m, (method, rec) in enumerate(result["methods"].items()):
    for t, name in enumerate(tasks):
      task = rec["tasks"][name]
      steps = np.array(task["env_steps"]) / 1e3
      curves = [np.array(task["return"])]
      if with_targets:
        curves.append(np.abs(np.array(task["velocity"]) - task["velocity_target"]))
      for r, curve in enumerate(curves):
        ax = axes[r, t]
        mean, std = curve.mean(0), curve.std(0)
        ax.plot(steps, mean, "o-", ms=2, color=f"C{m}", label=LABELS[method])
        ax.fill_between(steps, mean - std, mean + std, color=f"C{m}", alpha=0.2)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("thousand adaptation env steps")
        ax.set_ylabel("return" if r == 0 else "|velocity - target| (m/s)")
  axes[0, 0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def table(result: dict, summary: dict) -> str:
  tasks = result["tasks"]
  lines = [f"budget {result['budget']:,} env steps per task, {result['seeds']} adaptation "
           "seeds per training seed; final return (fresh deterministic episodes): mean "
           "[95 % CI over training seeds, n] where a run trained several, else mean ± std",
           "", "| method | training time (s) | " + " | ".join(tasks) + " |",
           "|---|---:|" + "---:|" * len(tasks)]

  def cell(entry):
    if "final_return_ci" in entry:
      lo, hi = entry["final_return_ci"]
      return f"{entry['final_return_mean']:.1f} [{lo:.1f}, {hi:.1f}, n={entry['n']}]"
    return f"{entry['final_return_mean']:.1f} ± {entry['final_return_std']:.1f}"

  for method, entry in summary.items():
    cells = [cell(entry["tasks"][t]) for t in tasks]
    lines.append(f"| {LABELS[method]} | {entry['training_seconds']:.0f} | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  cli.start(argv)
  if min(_SEEDS.value, _BUDGET.value, _EVAL_EPISODES.value, _PEARL_EPISODES.value,
         _MAML_STEPS.value, _FINETUNE_ENVS.value, _FINETUNE_EVAL_EVERY.value) < 1:
    cli.fail(["seeds, budget and every count must be positive"])
  try:
    envs.check_name(_FAMILY.value)
    runs = parse_runs(_RUNS.value)
    env_configs = {}
    for kind, workdir in runs.items():
      trained = load_config(workdir)
      if trained.env_name != _FAMILY.value:
        raise ValueError(f"--runs {kind}={workdir} trained {trained.env_name}, not "
                         f"{_FAMILY.value}")
      env_configs[kind] = trained.env
    env_config = compare.same_tasks(env_configs)
    # After the cheap checks: an MJX model takes seconds.
    env = envs.make(_FAMILY.value, env_config)
    methods = _METHODS.value or [m for m in compare.METHODS if compare.RUN_OF[m] in runs]
    unknown = [m for m in methods if m not in compare.METHODS]
    if unknown:
      raise ValueError(f"unknown method(s) {', '.join(unknown)}; valid: "
                       f"{', '.join(compare.METHODS)}")
    missing = [m for m in methods if compare.RUN_OF[m] not in runs]
    if missing:
      raise ValueError(f"no run for {', '.join(missing)} (--runs "
                       f"{compare.RUN_OF[missing[0]]}=<workdir>)")
    task_params, names = parse_task_spec(env, _TASKS.value, runs)
  except (ValueError, ConfigError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  out_dir = _OUT_DIR.value or os.path.join("runs", "compare", _FAMILY.value)
  os.makedirs(out_dir, exist_ok=True)
  result = {"family": _FAMILY.value, "tasks": list(names), "budget": _BUDGET.value,
            "seeds": _SEEDS.value, "eval_episodes": _EVAL_EPISODES.value,
            "runs": runs, "methods": {}}
  key = jax.random.PRNGKey(_SEED.value)
  for method in methods:
    start = time.time()
    workdir = runs[compare.RUN_OF[method]]
    trained = int(load_config(workdir).get("num_seeds", 1))
    if _TRAINING_SEEDS.value > trained:
      cli.fail([f"--training_seeds={_TRAINING_SEEDS.value}: {workdir} trained {trained}"])
    records = []
    for seed_index in range(_TRAINING_SEEDS.value or trained):
      try:   # a method's key depends on its name and the training seed only
        records.append(compare.run_method(
            method, workdir, task_params, names, seeds=_SEEDS.value,
            key=jax.random.fold_in(jax.random.fold_in(key, compare.METHODS.index(method)),
                                   seed_index),
            budget=_BUDGET.value, eval_episodes=_EVAL_EPISODES.value,
            finetune_envs=_FINETUNE_ENVS.value,
            finetune_eval_every=_FINETUNE_EVAL_EVERY.value,
            pearl_episodes=_PEARL_EPISODES.value, maml_steps=_MAML_STEPS.value,
            seed_index=seed_index))
      except (ValueError, ConfigError, checkpoint.CheckpointError) as e:
        cli.fail([f"{method}: {e}"])
    record = records[0] if len(records) == 1 else compare.merge_training_seeds(records)
    record["adaptation_seconds"] = time.time() - start
    result["methods"][method] = record
    print(f"{LABELS[method]}: {record['adaptation_seconds']:.0f} s")
    files.write_json(os.path.join(out_dir, "results.json"), result)   # kept as it grows
  summary = compare.summary(result)
  files.write_json(os.path.join(out_dir, "summary.json"), summary)
  plot(result, os.path.join(out_dir, "curves.png"))
  print(table(result, summary))
  print(f"wrote results.json, summary.json and curves.png in {out_dir}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
