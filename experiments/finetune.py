"""OHE-SAC fine-tuned on new tasks: the paper's adaptation baseline, on CEM's budget.

  python -m experiments.finetune --workdir=runs/hcv_ohe_cpu --tasks=1.5,2.5,3.5 \
      [--env_steps=180000 --envs_per_task=16 --eval_every=20]

For each new task (one after another, sharing one compiled epoch): score every source
one-hot on the new task (``source_episodes`` deterministic episodes each, counted in
the budget), then continue SAC from the run's best actor and critics with the best
source's slot, ``envs_per_task`` envs x the run's ``env_steps_per_epoch`` steps and
``grad_steps_per_epoch`` updates per epoch, for as many whole epochs as ``env_steps``
allow (never more; the CLI refuses a budget without one epoch).  Writes
``<out_dir>/<tasks>.json``: per task, the deterministic evaluation return and velocity
against env steps used.
"""
import os
import time

from absl import app
from absl import flags
import jax

from earjax import checkpoint
from earjax import files
from earjax.adaptation import cem
from earjax.adaptation import lte as lte_lib
from earjax.config import ConfigError
from earjax.run import Run
from earjax.training import finetune
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained OHE-SAC run.", required=True)
_TASKS = flags.DEFINE_string("tasks", "adapt", "'adapt' or a comma list of task names "
                             "or parameters (as experiments.adapt).")
_DEFAULTS = finetune.FINETUNE_DEFAULTS
_ENV_STEPS = flags.DEFINE_integer("env_steps", cem.DEFAULT_BUDGET, "Budget per task "
                                  "(CEM's default: generations x population x 200 steps).")
_ENVS_PER_TASK = flags.DEFINE_integer("envs_per_task", _DEFAULTS.envs_per_task,
                                      "Parallel envs while fine-tuning.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every,
                                   "Epochs between evaluations.")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", _DEFAULTS.eval_episodes,
                                      "Episodes per evaluation.")
_SOURCE_EPISODES = flags.DEFINE_integer("source_episodes", _DEFAULTS.source_episodes,
                                        "Episodes per source slot when choosing the slot.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output folder (default DIR/finetune).")


def main(argv):
  cli.start(argv)
  if min(_ENV_STEPS.value, _ENVS_PER_TASK.value, _EVAL_EVERY.value, _EVAL_EPISODES.value,
         _SOURCE_EPISODES.value) < 1:
    cli.fail(["env_steps, envs_per_task, eval_every and the episode counts must be positive"])
  try:
    source = Run.load(_WORKDIR.value)
    finetuner = finetune.make_finetuner(source, _ENVS_PER_TASK.value, _EVAL_EPISODES.value)
    trainer = finetuner.trainer
    config = trainer.config
    task_params, task_names = lte_lib.parse_tasks(trainer.env, _TASKS.value)
    actor, critic, log_alpha, _ = finetune.load_source(source)
  except (ValueError, ConfigError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  env, key = trainer.env, jax.random.PRNGKey(config.seed)
  result = {"workdir": _WORKDIR.value, "env": env.name, "tasks": {},
            "env_steps_per_epoch": trainer.env_steps_per_epoch,
            "grad_steps_per_epoch": config.grad_steps_per_epoch,
            "envs_per_task": _ENVS_PER_TASK.value}
  for t, (param, name) in enumerate(zip(task_params, task_names)):
    start = time.time()
    try:
      out = finetuner.adapt(actor, critic, log_alpha, param, jax.random.fold_in(key, t),
                            _ENV_STEPS.value, _EVAL_EVERY.value, _SOURCE_EPISODES.value)
    except ValueError as e:
      cli.fail([str(e)])
    out["wall_seconds"] = time.time() - start
    result["tasks"][name] = out
    rows = out["evaluations"]
    print(f"{name}: source {out['source_task']}, return {rows[0]['return']:.1f} -> "
          f"{rows[-1]['return']:.1f} after {rows[-1]['env_steps']} env steps "
          f"({out['wall_seconds']:.0f} s)")
  out_dir = _OUT_DIR.value or os.path.join(_WORKDIR.value, "finetune")
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "_".join(task_names) + ".json")
  files.write_json(path, result)
  print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
