"""A run: its config, env, tasks and agent, built once; and its checkpoints' items.

``Run.from_config(config)`` is the run a training config describes: the family's env
(``envs.make(config.env_name, config.env)``), the training tasks (``config.task_ids``
into the family's ``train_tasks``), the agent (``agents.get(config.agent)``) and its
networks.  ``Run.load(workdir)`` is the run a workdir holds: its ``config.json`` read
once, the same parts, and the items of its checkpoints (``restore_policy``,
``restore_best_items``).  Everything that reads a trained run (``earjax.policy``, the
adaptation tools, skills, the benchmarks) goes through here; ``earjax.training``
consumes a ``Run`` too, and nothing here imports it.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import ml_collections
import numpy as np

from earjax import agents
from earjax import checkpoint
from earjax import config as config_lib
from earjax import envs
from earjax.config import ConfigError

CHECKPOINTS = ("best", "latest")   # or a training checkpoint's epoch


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's ``config.json`` (renamed keys moved, keys it predates at their defaults)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise checkpoint.CheckpointError(f"{workdir!r} holds no training run (no config.json)")
  try:
    with open(path) as f:
      saved = json.load(f)
  except json.JSONDecodeError as e:
    raise ConfigError(f"{path} is not valid JSON; not touching this workdir") from e
  return config_lib.from_saved(saved)


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
  """The static parts of one run: ``config``, ``env``, ``task_ids`` (its training tasks,
  indices into ``env.train_tasks``) and, built on first use, ``agent`` and ``networks``;
  ``workdir`` where it was loaded from (None for a run not yet on disk)."""
  config: ml_collections.ConfigDict
  env: envs.TaskFamilyEnv
  task_ids: tuple[int, ...]
  workdir: str | None = None

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, workdir: str | None = None,
                  **env_overrides) -> "Run":
    """The run ``config`` describes; ``env_overrides`` replace those settings of its
    ``env`` section the family has (the LTE tools ask ``impl="jax"`` of any family: their
    batches differ from training's).  A family's refusal of a setting or a task id out of
    range is a ``ConfigError``."""
    try:
      options = envs.options(config.env_name)
      env = envs.make(config.env_name, config.env,
                      **{k: v for k, v in env_overrides.items() if k in options})
    except ValueError as e:
      raise ConfigError(str(e)) from e
    ids = list(config.task_ids) or list(range(env.num_tasks))
    problems = config_lib.check_task_ids(ids, env.num_tasks, config.env_name)
    if problems:
      raise ConfigError("\n".join(problems))
    return cls(config=config, env=env, task_ids=tuple(ids), workdir=workdir)

  @classmethod
  def load(cls, workdir: str, *, agent: str | tuple[str, ...] | None = None,
           what: str = "this tool", **env_overrides) -> "Run":
    """The run in ``workdir`` (its ``config.json`` read once); ``agent`` (a name or
    names) refuses, in one line naming ``what`` needs it, a run of another method before
    anything is built."""
    config = load_config(workdir)
    wanted = (agent,) if isinstance(agent, str) else agent
    if wanted and config.agent not in wanted:
      raise ValueError(f"{what} needs a run of agent {' or '.join(wanted)}; {workdir!r} "
                       f"trained {config.agent!r}")
    return cls.from_config(config, workdir, **env_overrides)

  @property
  def num_tasks(self) -> int:
    return len(self.task_ids)

  @property
  def task_params(self) -> np.ndarray:
    """[num_tasks, task_param_size], the run's task order."""
    return self.env.train_tasks[list(self.task_ids)]

  @property
  def task_names(self) -> tuple[str, ...]:
    return tuple(self.env.task_names[i] for i in self.task_ids)

  @property
  def spec(self) -> agents.AgentSpec:
    return agents.AgentSpec(observation_size=self.env.observation_size,
                            action_size=self.env.action_size, num_tasks=self.num_tasks)

  @functools.cached_property
  def agent(self) -> agents.Agent:
    """The config's agent (pure functions; no parameter is created)."""
    return agents.get(self.config.agent).make_agent(self.config, self.spec)

  @property
  def networks(self):
    return self.agent.networks

  def with_config(self, **changes) -> "Run":
    """This run's env and tasks under a config with top-level ``changes`` (keys that
    leave the env and the networks as they are: envs per task, evaluation episodes)."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.update(changes)
    return dataclasses.replace(self, config=config, workdir=self.workdir)

  # ---- the checkpoints of a loaded run ----------------------------------------------------
  def _checkpointer(self, best_items: tuple[str, ...] = ("policy",)) -> checkpoint.Checkpointer:
    if self.workdir is None:
      raise ValueError("this run was not loaded from a workdir: it has no checkpoints")
    return checkpoint.Checkpointer(self.workdir, self.config.checkpoints_to_keep, best_items)

  @property
  def num_seeds(self) -> int:
    """The seeds the run trained as one batch (``config.num_seeds``)."""
    return int(self.config.get("num_seeds", 1))

  def _on_this_device(self, tree):
    """Restore targets of ``tree``'s shapes (one seed's; the batch's with the seed axis
    in front) on this process's first device: a checkpoint written by any number of
    devices or processes is read onto it (orbax reshards)."""
    if self.num_seeds > 1:
      tree = jax.tree.map(lambda x: jax.ShapeDtypeStruct((self.num_seeds,) + x.shape,
                                                         x.dtype), tree)
    return checkpoint.abstract(tree, jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))

  def _one_seed(self, tree, seed_index: int):
    """Seed ``seed_index``'s part of a restored tree (the tree itself for one seed)."""
    if self.num_seeds == 1:
      return tree
    return jax.tree.map(lambda x: x[seed_index], tree)

  def check_seed_index(self, seed_index: int) -> None:
    """A one-line ValueError unless ``seed_index`` names a seed of the run."""
    if (isinstance(seed_index, bool) or not isinstance(seed_index, int)
        or not 0 <= seed_index < self.num_seeds):
      raise ValueError(f"seed_index must be in 0..{self.num_seeds - 1} (the run trained "
                       f"{self.num_seeds} seed(s)), got {seed_index!r}")

  def restore_policy(self, which: str | int = "best", seed_index: int = 0):
    """(policy parameters, epoch) of the ``which`` checkpoint: "best" (highest mean
    evaluation return), "latest" (the last training checkpoint's copy) or a training
    checkpoint's epoch; the ``policy`` item alone is read (no trainer, optimiser or
    replay), onto this process's first device; of a seed batch, seed ``seed_index``'s."""
    epoch = _checkpoint_epoch(which)
    self.check_seed_index(seed_index)
    target = {"policy": self._on_this_device(
        jax.eval_shape(self.agent.policy_params,
                       jax.eval_shape(self.agent.init, jax.random.PRNGKey(0))))}
    ckpt = self._checkpointer()
    try:
      if which == "best":
        kept = ", ".join(map(str, ckpt.epochs())) or "none"
        other = (f"; to read a training checkpoint's policy instead, pass "
                 f"--checkpoint=latest or --checkpoint=<epoch> (kept: {kept})")
        params, epoch = ckpt.restore_best(target, other)["policy"], int(ckpt.best_epoch())
      else:
        epoch = ckpt.latest_epoch() if epoch is None else epoch
        params = ckpt.restore_items(target, epoch, "--checkpoint")["policy"]
    finally:
      ckpt.close()
    return self._one_seed(params, seed_index), int(epoch)

  def restore_best_items(self, seed_index: int = 0) -> tuple[dict, int]:
    """(every item of ``agent.best_items``, epoch) of the best checkpoint, onto this
    process's first device; of a seed batch, seed ``seed_index``'s."""
    self.check_seed_index(seed_index)
    targets = self._on_this_device(agents.abstract_best_items(self.agent))
    ckpt = self._checkpointer(tuple(targets))
    try:
      items, epoch = ckpt.restore_best(targets), int(ckpt.best_epoch())
    finally:
      ckpt.close()
    return self._one_seed(items, seed_index), epoch


def _checkpoint_epoch(which) -> int | None:
  """None for "best" and "latest", the epoch for an epoch (an int, or digits); anything
  else is a one-line ValueError."""
  if which in CHECKPOINTS:
    return None
  if isinstance(which, str) and which.isdigit():
    which = int(which)
  if isinstance(which, int) and not isinstance(which, bool) and which >= 0:
    return which
  raise ValueError(f"a checkpoint is best, latest or an epoch, got {which!r}")
