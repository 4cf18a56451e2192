"""The training configuration: release defaults, and validation before anything compiles.

``default_config()`` holds every key with the original release's value (EAR reference,
"Multi-task SAC"; piao-0429/EAR ``config/train/*.json`` and ``EARSAC``), plus the
sections the registered agents declare (``earjax.agents``: ``sac``).
``experiments/configs/<family>.py`` adapt it per family and preset.  ``validate`` returns
one line per problem: unknown or missing keys, wrong types, values out of range,
unknown enums.
"""
from __future__ import annotations


import ml_collections

from earjax import agents
from earjax import envs
from earjax import parallel

WIDTH = 400   # every hidden layer of the release's networks


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.agent = "ear_sac"       # earjax.agents.names(): ear_sac | ohe_sac | mhmt_sac | tsac | pearl
  c.env_name = "halfcheetah_vel"
  c.task_ids = ()           # indices into env.train_tasks; () = every training task
  c.backend = "default"     # physics: the family's default (mjx), or e.g. spring
  c.solver_iterations = 4   # MJX solver budget (MuJoCo families; WORKSPACE.md)
  c.ls_iterations = 8
  c.unroll_substeps = True  # MJX substeps unrolled: slower compile, faster steps (envs/base.py)
  c.impl = "jax"            # MJX's implementation: jax | warp (GPU kernels; the warp extra)
  c.seed = 0
  # Data parallelism (earjax.parallel): the devices the run is laid over (0 = every
  # device of the job) and which axis they split: tasks | storage.
  c.num_devices = 0
  c.shard_layout = "tasks"
  # Multi-host jobs (earjax.parallel.initialize, before anything touches a device): one
  # process per host, all given the coordinator's host:port; 1 process = no runtime.
  c.num_processes = 1
  c.process_id = 0
  c.coordinator_address = ""
  c.coordinator_timeout_s = 60   # seconds to wait for every process to join

  c.network = ml_collections.ConfigDict()
  c.network.actor_hidden = (WIDTH,) * 4    # EAR action decoder / OHE MLP / MHMT trunk
  c.network.critic_hidden = (WIDTH,) * 4
  c.network.state_encoder_hidden = (WIDTH,) * 2
  c.network.task_encoder_hidden = (WIDTH,)
  c.network.lse_dim = 16
  c.network.lte_dim = 3
  c.network.lte_noise_std = 0.02     # sigma of Algorithm 1; 0 = the no-noise ablation
  c.network.normalize_lte = True     # False = the no-hypersphere ablation
  c.network.release_noise_bug = False  # True = the release: noisy LTE computed, unused

  c.envs_per_task = 1
  c.num_epochs = 4020           # the release's 20 pretrain epochs + 4000
  c.env_steps_per_epoch = 200   # per env
  c.grad_steps_per_epoch = 200
  c.random_epochs = 20          # first epochs: uniform random actions, no gradient steps
  # True: an epoch's updates sample the replay as it was before the epoch's collection,
  # so collection and updates are independent inside the epoch and XLA may run them
  # side by side (issue 14; benchmarks/README.md says what it gives on a 2-core CPU).
  c.overlap_collection = False
  c.min_replay_size = 10_000    # no gradient step before the replay holds this many
                                # transitions, all tasks together (the release's min_pool)
  c.batch_size_per_task = 128   # a task-balanced batch holds this many of every task
  c.replay_capacity = 100_000   # per task
  c.learning_rate = 3e-4        # policy, critics and temperature
  c.gamma = 0.99
  c.tau = 0.005
  c.reward_scale = 1.0
  c.max_grad_norm = 10.0

  c.eval_every = 1              # epochs
  c.eval_episodes = 3           # deterministic episodes per task
  # An evaluation episode met its goal if the env's per-step ``success`` held this many
  # consecutive steps (earjax's choice; ``acting.episode_success``; 1 = Meta-World's).
  c.success_window = 10
  c.checkpoint_every = 10       # epochs; the last epoch is always saved
  c.checkpoints_to_keep = 2

  c.on_nonfinite = "stop"   # stop | rollback (to the last checkpoint, with a new RNG key)
  c.max_rollbacks = 3
  c.poison_epoch = 0        # test hook: a policy weight is set to NaN before this epoch; 0 = off
  # The watchdog (earjax.training.job): an epoch may take watchdog_factor x the median of
  # the earlier epochs of its kind (>= watchdog_min_s); the first of a launch, which
  # compiles, watchdog_first_epoch_s.  After SIGTERM/SIGINT an epoch has stop_grace_s.
  c.watchdog_factor = 20.0
  c.watchdog_min_s = 120.0
  c.watchdog_first_epoch_s = 1800.0
  c.stop_grace_s = 120.0
  c.stall_epoch = 0         # test hook: this epoch's results never arrive; 0 = off

  for section, (defaults, _) in agents.CONFIG_SECTIONS.items():
    c[section] = defaults()
  return c


# Keys whose change makes a saved run incompatible (a different env or network shape);
# the agents' sections declare theirs (``agents.SHAPE_KEYS``).
SHAPE_KEYS = ("agent", "env_name", "backend", "impl", "task_ids", "network.actor_hidden",
              "network.critic_hidden", "network.state_encoder_hidden",
              "network.task_encoder_hidden", "network.lse_dim", "network.lte_dim",
              "envs_per_task", "replay_capacity") + agents.SHAPE_KEYS

# Keys renamed since a run may have been saved: old name -> (new name, value map).
RENAMED = {"network.kind": ("agent", lambda kind: f"{kind}_sac"),
           "batch_size": ("batch_size_per_task", lambda v: v),
           "per_task_alpha": ("sac.per_task_alpha", lambda v: v)}

_POSITIVE_INTS = ("envs_per_task", "num_epochs", "env_steps_per_epoch",
                  "grad_steps_per_epoch", "batch_size_per_task", "replay_capacity",
                  "eval_every", "eval_episodes", "success_window", "checkpoint_every",
                  "checkpoints_to_keep", "solver_iterations", "ls_iterations",
                  "network.lse_dim", "network.lte_dim", "num_processes",
                  "coordinator_timeout_s")
_NON_NEGATIVE_INTS = ("random_epochs", "min_replay_size", "seed", "max_rollbacks",
                      "poison_epoch", "stall_epoch", "num_devices", "process_id")
_POSITIVE_FLOATS = ("learning_rate", "reward_scale", "max_grad_norm", "watchdog_factor",
                    "watchdog_min_s", "watchdog_first_epoch_s", "stop_grace_s")
_UNIT_INTERVAL = ("gamma", "tau")
_BOOLS = ("network.normalize_lte", "network.release_noise_bug", "unroll_substeps",
          "overlap_collection")
_WIDTHS = ("network.actor_hidden", "network.critic_hidden",
           "network.state_encoder_hidden", "network.task_encoder_hidden")


def _enums() -> dict[str, tuple[str, ...]]:
  return {"agent": agents.names(), "env_name": envs.names(),
          "on_nonfinite": ("stop", "rollback"), "shard_layout": parallel.LAYOUTS,
          "impl": ("jax", "warp")}


def flatten(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
  """{"network.lte_dim": ..., ...} of a nested config."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out


def set_key(config: ml_collections.ConfigDict, key: str, value) -> None:
  """``config["a.b.c"] = value`` for a dotted key, creating sections as needed."""
  *parents, leaf = key.split(".")
  node = config
  for parent in parents:
    if parent not in node:
      node[parent] = ml_collections.ConfigDict()
    node = node[parent]
  node[leaf] = value


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(config: ml_collections.ConfigDict) -> list[str]:
  """One line per problem of ``config``; empty when it can be trained."""
  given, known = flatten(config), flatten(default_config())
  problems = [f"unknown config key '{k}'" for k in sorted(set(given) - set(known))]
  problems += [f"missing config key '{k}'" for k in sorted(set(known) - set(given))]
  if problems:
    return problems

  for key in _POSITIVE_INTS:
    if not _is_int(given[key]) or given[key] < 1:
      problems.append(f"{key} must be a positive integer, got {given[key]!r}")
  for key in _NON_NEGATIVE_INTS:
    if not _is_int(given[key]) or given[key] < 0:
      problems.append(f"{key} must be a non-negative integer, got {given[key]!r}")
  for key in _POSITIVE_FLOATS:
    if not _is_number(given[key]) or not given[key] > 0:
      problems.append(f"{key} must be a positive number, got {given[key]!r}")
  for key in _UNIT_INTERVAL:
    if not _is_number(given[key]) or not 0 < given[key] <= 1:
      problems.append(f"{key} must be in (0, 1], got {given[key]!r}")
  for key in _BOOLS:
    if not isinstance(given[key], bool):
      problems.append(f"{key} must be true or false, got {given[key]!r}")
  for key in _WIDTHS:
    widths = given[key]
    if (not isinstance(widths, (tuple, list)) or not widths
        or not all(_is_int(w) and w > 0 for w in widths)):
      problems.append(f"{key} must be a non-empty list of positive integers, got {widths!r}")
  noise = given["network.lte_noise_std"]
  if not _is_number(noise) or noise < 0:
    problems.append(f"network.lte_noise_std must be a number >= 0, got {noise!r}")
  for key, choices in _enums().items():
    if given[key] not in choices:
      problems.append(f"{key} must be one of {', '.join(choices)}, got {given[key]!r}")
  for section, (_, check) in agents.CONFIG_SECTIONS.items():
    problems += check(config[section])
  if given["env_name"] in envs.names() and given["backend"] != "default":
    offered = envs.backends(given["env_name"])
    if given["backend"] not in offered:
      problems.append(f"backend must be one of default, {', '.join(offered)} for "
                      f"{given['env_name']}, got {given['backend']!r}")
  # The backend and the Warp install are the env's to check (``trainer.make_env``).
  if (given["impl"] == "warp" and given["env_name"] in envs.names()
      and "impl" not in envs.options(given["env_name"])):
    problems.append(f"impl=warp is MJX's: {given['env_name']} has no MJX physics")
  task_ids = given["task_ids"]
  if not isinstance(task_ids, (tuple, list)) or not all(_is_int(i) and i >= 0 for i in task_ids):
    problems.append(f"task_ids must be a list of task indices, got {task_ids!r}")
  elif len(set(task_ids)) != len(task_ids):
    problems.append(f"task_ids must not repeat a task, got {task_ids!r}")
  problems += parallel.process_problems(config)
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


def env_options(config: ml_collections.ConfigDict, **overrides) -> dict:
  """The ``envs.make`` overrides of ``config`` that its family accepts (solver and substep
  settings apply to MJX families only; ``backend="default"`` leaves the family's own);
  ``overrides`` replace the config's values."""
  wanted = {"solver_iterations": config.solver_iterations,
            "ls_iterations": config.ls_iterations, "unroll_substeps": config.unroll_substeps,
            "impl": config.impl}
  if config.backend != "default":
    wanted["backend"] = config.backend
  wanted.update(overrides)
  return {k: v for k, v in wanted.items() if k in envs.options(config.env_name)}


def resolved_backend(config: ml_collections.ConfigDict) -> str:
  """The physics backend ``config`` runs (``default`` resolved to the family's own)."""
  if config.backend == "default" and config.env_name in envs.names():
    return envs.backends(config.env_name)[0]
  return config.backend


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A config saved by any earjax version (``config.json``): renamed keys moved, keys it
  predates filled with their defaults (it ran with them)."""
  flat = flatten(ml_collections.ConfigDict(saved))
  for old, (new, convert) in RENAMED.items():
    if old in flat:
      flat.setdefault(new, convert(flat.pop(old)))
  config = default_config()
  for key, value in flat.items():
    set_key(config, key, value)
  return config
