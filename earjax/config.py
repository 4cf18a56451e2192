"""The training configuration: release defaults, and validation before anything compiles.

``default_config(env_name)`` holds every key with the original release's value (EAR
reference, "Multi-task SAC"; piao-0429/EAR ``config/train/*.json`` and ``EARSAC``), the
family's own settings as the ``env`` section (``envs.default_config``: physics, episode
length; declared in the family's module and nowhere else), and the sections the
registered agents declare (``earjax.agents``: ``network``, ``sac``, ``ear_sac``, ``tsac``,
``pearl``, ``maml``); a run keeps those its agent reads (``for_agent``).
``experiments/configs/<family>.py`` adapt it per family and preset.  ``validate`` returns
one line per problem: unknown or missing keys, wrong types, values out of range,
unknown enums.
"""
from __future__ import annotations

import importlib.util

import ml_collections

from earjax import acting
from earjax import agents
from earjax import envs
from earjax import parallel


# ``logger``'s names (earjax.training.loggers) and W&B's modes.
LOGGERS = ("jsonl", "tensorboard", "wandb")
WANDB_MODES = ("", "online", "offline", "disabled")


class ConfigError(ValueError):
  """A config or workdir this job cannot run with; the message has one line per problem."""


def default_config(env_name: str = "halfcheetah_vel") -> ml_collections.ConfigDict:
  """Every key with its release default, ``env`` = ``env_name``'s ``default_config()``
  and every agent's sections (so each is a ``--config.<section>.<key>`` flag; a run
  keeps only the sections its agent reads, ``for_agent``)."""
  envs.check_name(env_name)
  c = ml_collections.ConfigDict()
  c.agent = "ear_sac"       # earjax.agents.names(): ear_sac ohe_sac mhmt_sac tsac pearl maml
  c.env_name = env_name
  c.env = envs.default_config(env_name)   # the family's settings (physics, episode length)
  c.task_ids = ()           # indices into env.train_tasks; () = every training task
  c.seed = 0
  # Seeds as a batch axis: num_seeds independent runs (seed, seed + 1, ...) in one
  # vmapped, donated epoch; seed k equals the run of seed + k alone (issue 31).
  c.num_seeds = 1
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
  # A process that stops answering this long is lost: the others stop with one line
  # (JAX's heartbeat timeout; earjax.training.supervisor).
  c.peer_timeout_s = 60

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

  # Where each evaluation row goes (earjax.training.loggers), a comma list of LOGGERS:
  # jsonl (metrics.jsonl, which resume reads back: always on), tensorboard, wandb
  # (Weights & Biases, the ``wandb`` extra; its run resumes with the run's).
  c.logger = "tensorboard,jsonl"
  # "" = W&B's own setting (its WANDB_* environment variable), else earjax's fallback:
  c.wandb = ml_collections.ConfigDict()
  c.wandb.project = ""     # WANDB_PROJECT, else "earjax"
  c.wandb.entity = ""      # WANDB_ENTITY, else the account's default entity
  c.wandb.name = ""        # WANDB_NAME, else the workdir's name
  c.wandb.group = ""       # WANDB_RUN_GROUP, else none
  c.wandb.mode = ""        # WANDB_MODE, else online; offline: no network (`wandb sync`)

  c.eval_every = 1              # epochs
  c.eval_episodes = 3           # deterministic episodes per task
  # An evaluation episode met its goal if the env's per-step ``success`` held on at least
  # success_hold_fraction of its second half (success_rule=held, earjax's choice), or on
  # any one step (any: Meta-World's rule); acting.SuccessRule says why.
  c.success_rule = "held"
  c.success_hold_fraction = 0.8
  c.checkpoint_every = 10       # epochs; the last epoch is always saved
  c.checkpoints_to_keep = 2
  c.resume_epoch = 0            # resume from this kept checkpoint; 0 = the latest

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
SHAPE_KEYS = ("agent", "env_name", "env.backend", "env.impl", "task_ids", "envs_per_task",
              "replay_capacity", "num_seeds") + agents.SHAPE_KEYS

# Keys renamed since a run may have been saved: old name -> (new name, value map).
RENAMED = {"network.kind": ("agent", lambda kind: f"{kind}_sac"),
           "batch_size": ("batch_size_per_task", lambda v: v),
           "per_task_alpha": ("sac.per_task_alpha", lambda v: v),
           **{f"network.{key}": (f"ear_sac.{key}", lambda v: v) for key in (
               "state_encoder_hidden", "task_encoder_hidden", "lse_dim", "lte_dim",
               "lte_noise_std", "normalize_lte", "release_noise_bug")}}
# Top-level physics keys of runs saved before the ``env`` section (2026-12-07): they
# move into it where the family has them; ``backend="default"`` was the family's own.
MOVED_TO_ENV = ("solver_iterations", "ls_iterations", "unroll_substeps", "impl", "backend")

_POSITIVE_INTS = ("envs_per_task", "num_epochs", "env_steps_per_epoch",
                  "grad_steps_per_epoch", "batch_size_per_task", "replay_capacity",
                  "eval_every", "eval_episodes", "checkpoint_every",
                  "checkpoints_to_keep", "num_processes", "coordinator_timeout_s",
                  "peer_timeout_s", "num_seeds")
_NON_NEGATIVE_INTS = ("random_epochs", "min_replay_size", "seed", "max_rollbacks",
                      "poison_epoch", "stall_epoch", "num_devices", "process_id",
                      "resume_epoch")
_POSITIVE_FLOATS = ("learning_rate", "reward_scale", "max_grad_norm", "watchdog_factor",
                    "watchdog_min_s", "watchdog_first_epoch_s", "stop_grace_s")
_UNIT_INTERVAL = ("gamma", "tau", "success_hold_fraction")
_BOOLS = ("overlap_collection",)


def _enums() -> dict[str, tuple[str, ...]]:
  return {"agent": agents.names(), "env_name": envs.names(),
          "on_nonfinite": ("stop", "rollback"), "shard_layout": parallel.LAYOUTS,
          "success_rule": acting.SUCCESS_RULES, "wandb.mode": WANDB_MODES}


def logger_names(text: str) -> tuple[str, ...]:
  """``logger``'s comma list as names, in LOGGERS' order."""
  given = {name.strip() for name in str(text).split(",") if name.strip()}
  return tuple(name for name in LOGGERS if name in given)


def logger_problems(text) -> list[str]:
  """One line per problem of a ``logger`` value."""
  if not isinstance(text, str):
    return [f"logger must be a comma list of {', '.join(LOGGERS)}, got {text!r}"]
  unknown = sorted({n.strip() for n in text.split(",") if n.strip()} - set(LOGGERS))
  if unknown:
    return [f"logger names {', '.join(unknown)}: known loggers are {', '.join(LOGGERS)}"]
  names = logger_names(text)
  if "jsonl" not in names:
    return [f"logger must include jsonl (metrics.jsonl is what a resume reads back), got "
            f"{text!r}"]
  if "wandb" in names and importlib.util.find_spec("wandb") is None:
    return ["logger names wandb, but the wandb package is not installed: pip install "
            "'earjax[wandb]'"]
  return []


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
  if config.get("env_name") not in envs.names():
    return [f"env_name must be one of {', '.join(envs.names())}, got "
            f"{config.get('env_name')!r}"]
  given, known = flatten(config), flatten(default_config(config.env_name))
  problems = [f"unknown config key '{k}'" + (
      f" ({config.env_name} has no such setting; its settings: "
      f"{', '.join(envs.options(config.env_name))})" if k.startswith("env.") else "")
              for k in sorted(set(given) - set(known))]
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
  for key, choices in _enums().items():
    if given[key] not in choices:
      problems.append(f"{key} must be one of {', '.join(choices)}, got {given[key]!r}")
  problems += env_problems(config)
  problems += logger_problems(given["logger"])
  if given["agent"] in agents.names():
    # A preset sets every agent's sections (one preset serves all agents); those the
    # agent does not read are left out of the run (``for_agent``), not checked.
    for section in agents.sections(given["agent"]):
      problems += agents.CONFIG_SECTIONS[section][1](config[section])
  task_ids = given["task_ids"]
  if not isinstance(task_ids, (tuple, list)) or not all(_is_int(i) and i >= 0 for i in task_ids):
    problems.append(f"task_ids must be a list of task indices, got {task_ids!r}")
  elif len(set(task_ids)) != len(task_ids):
    problems.append(f"task_ids must not repeat a task, got {task_ids!r}")
  problems += parallel.process_problems(config)
  if (_is_int(given["num_seeds"]) and given["num_seeds"] > 1
      and config.env_name not in envs.jax_names()):
    problems.append(f"num_seeds > 1 needs a JAX-stepped family; {config.env_name} steps "
                    f"on the host (run each seed as a job of its own, --config.seed)")
  if (_is_int(given["num_seeds"]) and given["num_seeds"] > 1
      and _is_int(given["num_processes"]) and given["num_processes"] > 1):
    problems.append("num_seeds > 1 runs on one host (its devices split the seeds); a "
                    "multi-host job trains one seed")
  if not problems:
    per_task_chunk = config.envs_per_task * config.env_steps_per_epoch
    if per_task_chunk > config.replay_capacity:
      problems.append(f"replay_capacity ({config.replay_capacity}) must hold one epoch of "
                      f"transitions per task (envs_per_task * env_steps_per_epoch = "
                      f"{per_task_chunk})")
  return problems


def env_problems(config: ml_collections.ConfigDict) -> list[str]:
  """The ``env`` section's values the family's constructor would refuse, found without
  building it (no model is loaded): a value of another type than its default's, a
  backend the family does not offer, Warp outside MJX's own backend, a task interval
  that draws nothing."""
  try:
    env = envs.base.configured(config.env_name, envs.default_config(config.env_name),
                               config.env)
  except ValueError as e:
    return [str(e)]
  problems = [f"env.{key} must be a positive integer, got {env[key]!r}"
              for key in ("episode_length", "solver_iterations", "ls_iterations")
              if key in env and env[key] < 1]
  try:
    envs.base.sampled_tasks(env)
  except ValueError as e:
    problems.append(f"env.{e}")
  if "backend" in env and env.backend not in envs.backends(config.env_name):
    problems.append(f"env.backend must be one of {', '.join(envs.backends(config.env_name))}"
                    f" for {config.env_name}, got {env.backend!r}")
  if "impl" in env and env.impl not in ("jax", "warp"):
    problems.append(f"env.impl must be one of jax, warp, got {env.impl!r}")
  elif env.get("impl") == "warp" and "backend" in env and env.backend != "mjx":
    problems.append(f"env.impl=warp is MJX's; backend {env.backend!r} has no Warp "
                    f"implementation")
  return problems


def for_agent(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` with only the agent's sections (``agents.sections``): what a run saves
  and what its compiled programs depend on."""
  read = agents.sections(config.agent)
  return ml_collections.ConfigDict({k: v for k, v in config.to_dict().items()
                                    if k not in agents.CONFIG_SECTIONS or k in read})


def check_task_ids(task_ids, num_train_tasks: int, env_name: str) -> list[str]:
  """Problems of ``task_ids`` against the env's training tasks."""
  bad = [i for i in task_ids if i >= num_train_tasks]
  if bad:
    return [f"task_ids {bad} out of range: {env_name} has {num_train_tasks} training "
            f"tasks (0..{num_train_tasks - 1})"]
  return []


def backend(config: ml_collections.ConfigDict) -> str:
  """The physics backend ``config`` runs (a family without the setting has one)."""
  return config.env.get("backend", envs.backends(config.env_name)[0])


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A config saved by any earjax version (``config.json``): renamed keys moved (the
  physics into the ``env`` section), keys it predates filled with their defaults (it ran
  with them).  A family earjax no longer has is a ``ConfigError``."""
  flat = flatten(ml_collections.ConfigDict(saved))
  for old, (new, convert) in RENAMED.items():
    if old in flat:
      flat.setdefault(new, convert(flat.pop(old)))
  env_name = flat.get("env_name", "halfcheetah_vel")
  if env_name not in envs.names():
    raise ConfigError(f"the saved run's env {env_name!r} is not an earjax family; valid "
                      f"names: {', '.join(envs.names())}")
  options = envs.options(env_name)
  # Runs saved before the success rule counted consecutive steps: Meta-World's one step
  # is its "any" rule; the 10-step window became the held rule (the default).
  if flat.pop("success_window", None) == 1:
    flat.setdefault("success_rule", "any")
  for key in MOVED_TO_ENV:
    if key in flat:
      value = flat.pop(key)
      if key == "backend" and value == "default":
        continue
      if key in options:
        flat.setdefault(f"env.{key}", value)
  config = default_config(env_name)
  for key, value in flat.items():
    set_key(config, key, value)
  return config
