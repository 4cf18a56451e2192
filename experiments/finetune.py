"""OHE-SAC fine-tuned on new tasks: the paper's adaptation baseline, on CEM's budget.

  python -m experiments.finetune --workdir=runs/hcv_ohe_cpu --tasks=1.5,2.5,3.5 \
      [--env_steps=180000 --envs_per_task=16 --eval_every=20]

For each new task (one after another, sharing one compiled epoch): score every source
one-hot on the new task (``source_episodes`` deterministic episodes each, counted in
the budget), then continue SAC from the run's best actor and critics with the best
source's slot, ``envs_per_task`` envs x the run's ``env_steps_per_epoch`` steps and
``grad_steps_per_epoch`` updates per epoch, until ``env_steps`` env steps.  Writes
``<out_dir>/<tasks>.json``: per task, the deterministic evaluation return and velocity
against env steps used.
"""
import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from earjax import checkpoint
from earjax import files
from earjax.adaptation import finetune
from earjax.adaptation import lte as lte_lib
from earjax.training import ConfigError, load_config
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained OHE-SAC run.", required=True)
_TASKS = flags.DEFINE_string("tasks", "adapt", "'adapt' or a comma list of task names "
                             "or parameters (as experiments.adapt).")
_ENV_STEPS = flags.DEFINE_integer("env_steps", 180_000, "Budget per task (CEM's default: "
                                  "10 generations x 90 candidates x 200 steps).")
_ENVS_PER_TASK = flags.DEFINE_integer("envs_per_task", 16, "Parallel envs while fine-tuning.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 20, "Epochs between evaluations.")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 5, "Episodes per evaluation.")
_SOURCE_EPISODES = flags.DEFINE_integer("source_episodes", 2, "Episodes per source slot "
                                        "when choosing the slot.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output folder (default DIR/finetune).")


def main(argv):
  cli.start(argv)
  if min(_ENV_STEPS.value, _ENVS_PER_TASK.value, _EVAL_EVERY.value, _EVAL_EPISODES.value,
         _SOURCE_EPISODES.value) < 1:
    cli.fail(["env_steps, envs_per_task, eval_every and the episode counts must be positive"])
  try:
    finetuner = finetune.make_finetuner(load_config(_WORKDIR.value), _ENVS_PER_TASK.value,
                                        _EVAL_EPISODES.value)
    trainer = finetuner.trainer
    config = trainer.config
    task_params, task_names = lte_lib.parse_tasks(trainer.env, _TASKS.value)
    actor, critic, log_alpha = finetune.load_source(_WORKDIR.value, finetuner)
  except (ValueError, ConfigError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  env, key = trainer.env, jax.random.PRNGKey(config.seed)
  per_epoch = trainer.num_envs * config.env_steps_per_epoch
  epochs = -(-_ENV_STEPS.value // per_epoch)
  result = {"workdir": _WORKDIR.value, "env": env.name, "tasks": {},
            "env_steps_per_epoch": per_epoch,
            "grad_steps_per_epoch": config.grad_steps_per_epoch,
            "envs_per_task": _ENVS_PER_TASK.value}
  for t, (param, name) in enumerate(zip(task_params, task_names)):
    task_key = jax.random.fold_in(key, t)
    start = time.time()
    scores = np.asarray(finetuner.score_sources(actor, param, task_key,
                                                _SOURCE_EPISODES.value))
    slot = int(np.argmax(scores))
    used = finetuner.num_source_tasks * _SOURCE_EPISODES.value * env.episode_length
    state = finetuner.start(
        finetune.move_slot_to_front(actor, slot, finetuner.num_source_tasks),
        finetune.move_slot_to_front(critic, slot, finetuner.num_source_tasks),
        log_alpha, param, task_key)
    target = env.velocity_target(param)
    rows = []

    def record(epoch, state):
      out = jax.device_get(finetuner.evaluate(state.learner.actor_params, param,
                                              jax.random.fold_in(task_key, epoch)))
      row = {"epoch": epoch, "env_steps": used + int(state.env_steps),
             "return": float(out["return"][0]), "velocity": float(out["velocity"][0])}
      if target is not None:
        row["velocity_error"] = abs(row["velocity"] - target)
      rows.append(row)

    record(0, state)
    for epoch in range(1, epochs + 1):
      state, _ = trainer.epoch(state)
      if epoch % _EVAL_EVERY.value == 0 or epoch == epochs:
        record(epoch, state)
    source_names = finetuner.source_names
    result["tasks"][name] = {"task_param": param.tolist(), "source_slot": slot,
                             "source_task": source_names[slot],
                             "source_returns": scores.tolist(), "evaluations": rows,
                             "wall_seconds": time.time() - start}
    print(f"{name}: source {source_names[slot]}, return {rows[0]['return']:.1f} -> "
          f"{rows[-1]['return']:.1f} after {rows[-1]['env_steps']} env steps "
          f"({time.time() - start:.0f} s)")
  out_dir = _OUT_DIR.value or os.path.join(_WORKDIR.value, "finetune")
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "_".join(task_names) + ".json")
  files.write_json(path, result)
  print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
