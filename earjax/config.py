"""The training configuration: paper defaults, and validation before anything compiles.

``default_config()`` holds every key with the original release's value (EAR reference,
"Multi-task SAC"); ``experiments/configs/<family>.py`` adapt it per family and preset.
``validate`` returns one line per problem: unknown or missing keys, wrong types, values
out of range, unknown enums.
"""
from __future__ import annotations

import ml_collections

from earjax import envs
from earjax.networks import KINDS


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.env_name = "halfcheetah_vel"
  c.task_ids = ()           # indices into env.train_tasks; () = every training task
  c.backend = "mjx"         # physics: mjx, or spring for the HalfCheetah families
  c.solver_iterations = 4   # MJX solver budget (see WORKSPACE.md: physics settings)
  c.ls_iterations = 8
  c.seed = 0

  c.network = ml_collections.ConfigDict()
  c.network.kind = "ear"    # ear | ohe (OHE-SAC) | mhmt (MHMT-SAC)
  c.network.actor_hidden = (400, 400, 400, 400)   # EAR action decoder / OHE / MHMT trunk
  c.network.critic_hidden = (400, 400, 400, 400)
  c.network.state_encoder_hidden = (400, 400)
  c.network.task_encoder_hidden = (400,)
  c.network.lse_dim = 16
  c.network.lte_dim = 3
  c.network.lte_noise_std = 0.02     # sigma of Algorithm 1; 0 = the no-noise ablation
  c.network.normalize_lte = True     # False = the no-hypersphere ablation
  c.network.release_noise_bug = False  # True = the release: noisy LTE computed, unused

  c.envs_per_task = 1
  c.num_epochs = 4000
  c.env_steps_per_epoch = 200   # per env
  c.grad_steps_per_epoch = 200
  c.random_epochs = 10          # first epochs: uniform random actions, no gradient steps
  c.batch_size = 128            # per task
  c.replay_capacity = 100_000   # per task
  c.learning_rate = 3e-4        # policy, critics and temperature
  c.gamma = 0.99
  c.tau = 0.005
  c.reward_scale = 1.0
  c.max_grad_norm = 10.0
  c.per_task_alpha = False

  c.eval_every = 1              # epochs
  c.eval_episodes = 3           # deterministic episodes per task
  c.checkpoint_every = 10       # epochs; the last epoch is always saved
  c.checkpoints_to_keep = 2

  c.on_nonfinite = "stop"   # stop | rollback (to the last checkpoint, with a new RNG key)
  c.max_rollbacks = 3
  c.poison_epoch = 0        # test hook: an actor weight is set to NaN before this epoch; 0 = off
  return c


# Keys whose change makes a saved run incompatible (a different env or network shape).
SHAPE_KEYS = ("env_name", "backend", "task_ids", "network.kind", "network.actor_hidden",
              "network.critic_hidden", "network.state_encoder_hidden",
              "network.task_encoder_hidden", "network.lse_dim", "network.lte_dim",
              "envs_per_task", "replay_capacity", "per_task_alpha")

_POSITIVE_INTS = ("envs_per_task", "num_epochs", "env_steps_per_epoch",
                  "grad_steps_per_epoch", "batch_size", "replay_capacity", "eval_every",
                  "eval_episodes", "checkpoint_every", "checkpoints_to_keep",
                  "solver_iterations", "ls_iterations", "network.lse_dim",
                  "network.lte_dim")
_NON_NEGATIVE_INTS = ("random_epochs", "seed", "max_rollbacks", "poison_epoch")
_ENUMS = {"network.kind": KINDS, "env_name": envs.names(),
          "on_nonfinite": ("stop", "rollback")}
_POSITIVE_FLOATS = ("learning_rate", "reward_scale", "max_grad_norm")
_UNIT_INTERVAL = ("gamma", "tau")
_BOOLS = ("network.normalize_lte", "network.release_noise_bug", "per_task_alpha")
_WIDTHS = ("network.actor_hidden", "network.critic_hidden",
           "network.state_encoder_hidden", "network.task_encoder_hidden")


def flatten(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
  """{"network.kind": ..., ...} of a nested config."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out


def validate(config: ml_collections.ConfigDict) -> list[str]:
  """One line per problem of ``config``; empty when it can be trained."""
  given, known = flatten(config), flatten(default_config())
  problems = [f"unknown config key '{k}'" for k in sorted(set(given) - set(known))]
  problems += [f"missing config key '{k}'" for k in sorted(set(known) - set(given))]
  if problems:
    return problems

  def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)

  for key in _POSITIVE_INTS:
    if not is_int(given[key]) or given[key] < 1:
      problems.append(f"{key} must be a positive integer, got {given[key]!r}")
  for key in _NON_NEGATIVE_INTS:
    if not is_int(given[key]) or given[key] < 0:
      problems.append(f"{key} must be a non-negative integer, got {given[key]!r}")
  for key in _POSITIVE_FLOATS:
    value = given[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
      problems.append(f"{key} must be a positive number, got {value!r}")
  for key in _UNIT_INTERVAL:
    value = given[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
      problems.append(f"{key} must be in (0, 1], got {value!r}")
  for key in _BOOLS:
    if not isinstance(given[key], bool):
      problems.append(f"{key} must be true or false, got {given[key]!r}")
  for key in _WIDTHS:
    widths = given[key]
    if (not isinstance(widths, (tuple, list)) or not widths
        or not all(is_int(w) and w > 0 for w in widths)):
      problems.append(f"{key} must be a non-empty list of positive integers, got {widths!r}")
  noise = given["network.lte_noise_std"]
  if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
    problems.append(f"network.lte_noise_std must be a number >= 0, got {noise!r}")
  for key, choices in _ENUMS.items():
    if given[key] not in choices:
      problems.append(f"{key} must be one of {', '.join(choices)}, got {given[key]!r}")
  if given["env_name"] in envs.names() and given["backend"] not in envs.backends(
      given["env_name"]):
    problems.append(f"backend must be one of {', '.join(envs.backends(given['env_name']))} "
                    f"for {given['env_name']}, got {given['backend']!r}")
  task_ids = given["task_ids"]
  if not isinstance(task_ids, (tuple, list)) or not all(is_int(i) and i >= 0 for i in task_ids):
    problems.append(f"task_ids must be a list of task indices, got {task_ids!r}")
  elif len(set(task_ids)) != len(task_ids):
    problems.append(f"task_ids must not repeat a task, got {task_ids!r}")
  if not problems:
    per_task_chunk = config.envs_per_task * config.env_steps_per_epoch
    if per_task_chunk > config.replay_capacity:
      problems.append(f"replay_capacity ({config.replay_capacity}) must hold one epoch of "
                      f"transitions per task (envs_per_task * env_steps_per_epoch = "
                      f"{per_task_chunk})")
  return problems


def check_task_ids(task_ids, num_train_tasks: int, env_name: str) -> list[str]:
  """Problems of ``task_ids`` against the env's training tasks."""
  bad = [i for i in task_ids if i >= num_train_tasks]
  if bad:
    return [f"task_ids {bad} out of range: {env_name} has {num_train_tasks} training "
            f"tasks (0..{num_train_tasks - 1})"]
  return []
