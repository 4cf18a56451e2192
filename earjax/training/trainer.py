"""The generic, jitted training epoch of any agent (EAR-SAC's Algorithm 1 and the rest).

``Trainer`` holds what is static (a ``Run``: env, agent, tasks) and four compiled
functions: ``init(key, task_params)``; ``start(learner, key, task_params)``;
``epoch(state) -> (state, metrics)``, one ``jax.jit`` with the state donated, the epoch
of the agent's kind (``training.epochs``: off-policy collect -> replay -> updates, or
on-policy rollouts -> one update), with no host round-trip inside; and
``evaluate(policy_params, key)``, deterministic episodes of every task
(``earjax.evaluation``).  Nothing here is specific to a method or a family.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import acting
from earjax import checkpoint
from earjax import config as config_lib
from earjax import envs
from earjax import evaluation
from earjax import parallel
from earjax import program_cache
from earjax import replay
from earjax.config import ConfigError
from earjax.run import Run
from earjax.training import epochs


@struct.dataclass
class TrainingState:
  """Everything that evolves during training; a checkpoint saves all of it."""
  learner: Any            # the agent's LearnerState
  replay: replay.ReplayState
  env_state: envs.State
  rng: jax.Array
  epoch: jax.Array        # epochs completed
  env_steps: jax.Array    # env steps taken, all envs together
  grad_steps: jax.Array
  # The agent's context buffer (``agents.ContextData``: one epoch of every env of a task),
  # or None.
  context: Optional[replay.ReplayState] = None


class Trainer:
  """The static parts of a run and its compiled functions.

  One replay partition and one group of ``config.envs_per_task`` envs per entry of
  ``task_index``; env group k acts as the agent's task ``task_index[k]`` on the task
  parameters given to ``init``/``start``/``evaluate``, by default the run's
  ``task_params`` (named ``task_names``).  The fine-tuning baseline gives none: it
  passes each new task's parameter.
  """

  def __init__(self, run: Run, task_index: Sequence[int] | None = None,
               task_params: np.ndarray | None = None):
    """``task_index`` defaults to the run's tasks in order, on their parameters
    (``run.task_params``, named ``run.task_names``)."""
    self.run = run
    self.config = config = run.config
    self.agent = agent = run.agent
    own_tasks = task_index is None
    self.task_index = jnp.asarray(list(range(run.num_tasks)) if own_tasks else
                                  list(task_index), jnp.int32)
    if own_tasks and task_params is None:
      task_params = run.task_params
    self.num_tasks = len(self.task_index)
    self.num_envs = self.num_tasks * config.envs_per_task
    episodes = agent.data.episodes_per_task if agent.on_policy else 0
    meta_batch = (agent.data.tasks_per_update if agent.on_policy else 0) or len(
        task_index if task_index is not None else range(run.num_tasks))
    # The env sized for the largest batch stepped together: the training envs, the
    # evaluation episodes, an on-policy agent's episodes (MJX Warp's contact buffer),
    # every seed's at once.
    self.env = env = run.env.with_worlds(int(config.num_seeds) * max(
        self.num_tasks * max(config.envs_per_task, config.eval_episodes),
        meta_batch * episodes))
    self.task_params = None if task_params is None else jnp.asarray(task_params, jnp.float32)
    self.task_names = run.task_names if own_tasks else None
    self.batch_env = envs.training_batch(env)
    # A host family evaluates in a batch of its own (one env per evaluation episode).
    self.eval_batch = env.batch() if envs.on_host(env) else None
    # Envs are task-major: env i runs task i // envs_per_task.
    self.env_task_index = jnp.repeat(self.task_index, config.envs_per_task)
    self.success_rule = acting.SuccessRule(config.success_rule,
                                           float(config.success_hold_fraction))
    self.epoch_traces = 0
    self.update_order = ()
    self._epoch_of_kind = epochs.on_policy if agent.on_policy else epochs.off_policy
    # Seeds as a batch axis: ``num_seeds`` independent runs, every leaf of the state with
    # a leading seed axis, one vmapped epoch; the devices split the seeds.
    self.num_seeds = int(config.num_seeds)
    problems = parallel.problems(config, self.num_tasks)
    if problems:
      raise ConfigError("\n".join(problems))
    # The state laid over the devices (None: one device, nothing annotated), and the
    # layout inside one seed's epoch (the same, but None when the devices split seeds).
    self.layout = parallel.Layout.for_run(config)
    self.inner_layout = self.layout if self.num_seeds == 1 else None
    # Programs that call back to host envs cannot be exported, nor are sharded ones
    # cached: jax.jit alone.
    fingerprint = (None if envs.on_host(env) or self.layout is not None
                   else self.fingerprint())
    self.init = program_cache.CachedProgram(self._init, "init", fingerprint)
    self.start = program_cache.CachedProgram(self._start, "start", fingerprint)
    self.epoch = program_cache.CachedProgram(self._epoch, "epoch", fingerprint,
                                             donate_argnums=(0,))
    self.evaluate = program_cache.CachedProgram(self._evaluate, "evaluate", fingerprint)

  @property
  def env_steps_per_epoch(self) -> int:
    """Env steps of one epoch, all envs together (an on-policy agent's: its episodes)."""
    if self.agent.on_policy:
      data = self.agent.data
      return ((data.tasks_per_update or self.num_tasks) * data.episodes_per_task
              * self.env.episode_length)
    return self.num_envs * self.config.env_steps_per_epoch

  def fingerprint(self) -> str:
    """What the compiled functions close over, as the program cache's key: the config
    (but ``HOST_ONLY_KEYS``), the agent's name, the tasks and their parameters.  The env
    and the agent's networks are those the config names (both constructors build them
    from it)."""
    return json.dumps({
        "config": traced_config_key(self.config),
        "agent": self.agent.name, "task_index": self.task_index.tolist(),
        "task_params": None if self.task_params is None else
                       np.asarray(self.task_params).tolist()}, sort_keys=True, default=str)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "Trainer":
    """The Trainer of the run ``config`` describes (``Run.from_config``)."""
    return cls(Run.from_config(config))

  def seed_keys(self, seed: int) -> jax.Array:
    """The key ``init`` takes for a run of ``seed``: ``PRNGKey(seed)``, or with
    ``num_seeds`` > 1 the stack of ``PRNGKey(seed + k)``, so that seed k of the batch
    is the run of ``seed + k`` alone."""
    if self.num_seeds == 1:
      return jax.random.PRNGKey(seed)
    return jnp.stack([jax.random.PRNGKey(seed + k) for k in range(self.num_seeds)])

  def fold_in(self, key: jax.Array, data: int) -> jax.Array:
    """``jax.random.fold_in`` of a run's key (each seed's with ``num_seeds`` > 1)."""
    if self.num_seeds == 1:
      return jax.random.fold_in(key, data)
    return jax.vmap(jax.random.fold_in, (0, None))(key, data)

  def _init(self, key: jax.Array, task_params: jax.Array) -> TrainingState:
    """A fresh run on ``task_params`` [num_tasks, p]: new parameters, empty replay,
    reset envs (jitted, so that no two leaves share a buffer and the state can be
    donated); ``key`` is ``seed_keys``' (one per seed)."""
    def one(key):
      learner_key, key = jax.random.split(key)
      return self._fresh(self.agent.init(learner_key), key, task_params)
    return self.laid_out(one(key) if self.num_seeds == 1 else jax.vmap(one)(key))

  def _start(self, learner_state, key: jax.Array, task_params: jax.Array) -> TrainingState:
    """A run from a given learner state (one seed): empty replay, reset envs, counters
    at 0 (the fine-tuning baseline's; a seed batch starts from ``init``)."""
    if self.num_seeds != 1:
      raise ValueError("start continues one seed's learner; this trainer runs a batch of "
                       f"{self.num_seeds} seeds")
    return self.laid_out(self._fresh(learner_state, key, task_params))

  def _fresh(self, learner_state, key: jax.Array, task_params: jax.Array) -> TrainingState:
    env_key, rng = jax.random.split(key)
    c = self.config
    # An on-policy agent replays nothing: it keeps a one-slot replay (every agent's
    # state has the same structure).
    capacity = 1 if self.agent.on_policy else c.replay_capacity
    extra_fields = () if self.agent.on_policy else self.agent.data.extra_fields
    has_context = not self.agent.on_policy and self.agent.data.context is not None
    return TrainingState(
        learner=learner_state,
        replay=replay.init(self.num_tasks, capacity, self.env.observation_size,
                           self.env.action_size, extra_fields),
        env_state=self._reset_envs(env_key, task_params),
        rng=rng, epoch=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        grad_steps=jnp.zeros((), jnp.int32),
        context=replay.init(self.num_tasks, c.envs_per_task * c.env_steps_per_epoch,
                            self.env.observation_size, self.env.action_size)
        if has_context else None)

  def laid_out(self, state: TrainingState) -> TrainingState:
    """``state`` constrained to the run's layout over its devices (``earjax.parallel``)."""
    return state if self.layout is None else self.layout.constrain_state(state)

  def abstract_state(self, key: jax.Array) -> TrainingState:
    """ShapeDtypeStructs of the run's state, with the layout's shardings: the target a
    checkpoint is restored onto."""
    shapes = self.init.eval_shape(key, self.task_params)
    # One device is named too: a checkpoint saved on several is read onto it.
    return checkpoint.abstract(
        shapes, jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        if self.layout is None else self.layout.state_shardings(shapes))

  def _reset_envs(self, key: jax.Array, task_params: jax.Array) -> envs.State:
    """Fresh episodes of every env, env group k on ``task_params[k]``."""
    return self.batch_env.reset(jax.random.split(key, self.num_envs),
                                jnp.repeat(task_params, self.config.envs_per_task, axis=0))

  def _epoch(self, state: TrainingState):
    """One epoch of the agent's kind (``epochs.off_policy`` or ``epochs.on_policy``);
    with ``num_seeds`` > 1 vmapped over the seeds, whose counters move together, so
    whether the updates are due is read off seed 0 (one ``lax.cond`` for the batch)."""
    self.epoch_traces += 1
    kind = self._epoch_of_kind
    if self.num_seeds == 1:
      new, metrics = kind(self, state)
    else:
      first = jax.tree.map(lambda x: x[0], state)
      due = None if self.agent.on_policy else epochs.updates_due(self, first)
      new, metrics = jax.vmap(lambda s: kind(self, s, due))(state)
    return self.laid_out(new), metrics

  def act_on_task(self, policy_params):
    """The deterministic policy as ``acting.ActFn`` of a task index (one env)."""
    return lambda task_index, obs, key, stochastic: self.agent.act(
        policy_params, obs[None], task_index[None], key, deterministic=True)[0]

  def restored(self, state: TrainingState) -> TrainingState:
    """``state`` as read from a checkpoint, ready to continue: a host family's envs live
    outside the checkpoint, so their episodes restart (fresh resets from the state's
    RNG); a JAX family's env state is in the checkpoint and is kept."""
    if not envs.on_host(self.env):
      return state
    rng, env_key = jax.random.split(state.rng)
    # Jitted, so that no two leaves share a buffer and the state can be donated.
    return state.replace(rng=rng, env_state=jax.jit(self._reset_envs)(env_key,
                                                                      self.task_params))

  def _evaluate(self, policy_params, key, task_params=None, task_index=None):
    """Per task (default: the run's) mean deterministic return, length, success rate and
    the family's readings (``evaluation.evaluate``); with ``num_seeds`` > 1 each seed's
    policy on its own key (``policy_params`` and ``key`` with the seed axis), [N, K]."""
    if self.num_seeds > 1 and task_params is None and task_index is None:
      return jax.vmap(self._evaluate_one)(policy_params, key)
    return self._evaluate_one(policy_params, key, task_params, task_index)

  def _evaluate_one(self, policy_params, key, task_params=None, task_index=None):
    """``_evaluate`` of one seed's policy."""
    task_index = self.task_index if task_index is None else task_index
    task_params = self.task_params if task_params is None else task_params
    c = self.config
    if self.eval_batch is not None:
      act = lambda obs, task_index, key: self.agent.act(policy_params, obs, task_index, key,
                                                        deterministic=True)
      return evaluation.evaluate_batch(self.eval_batch, act, task_index, task_params, key,
                                       c.eval_episodes, self.success_rule)
    return evaluation.evaluate(self.env, self.act_on_task(policy_params), task_index,
                               task_params, key, c.eval_episodes, self.success_rule)

  def eval_metrics(self, policy_params, epoch: int, seed: int) -> list[dict[str, float]]:
    """The run's tasks evaluated (``evaluation.metrics``), one dict per seed, keyed by
    (seed, epoch), so it never touches the training RNG: seed k of a batch on the key
    of the run of ``seed + k``."""
    key = self.fold_in(self.seed_keys(seed + 1), epoch)
    result = jax.device_get(self.evaluate(policy_params, key))
    per_seed = [result] if self.num_seeds == 1 else [
        jax.tree.map(lambda x, k=k: x[k], result) for k in range(self.num_seeds)]
    return [evaluation.metrics(self.env, np.asarray(self.task_params), self.task_names, r)
            for r in per_seed]


# Keys only the job loop reads: configs that differ in nothing else share a Trainer.
HOST_ONLY_KEYS = ("num_epochs", "eval_every", "checkpoint_every", "checkpoints_to_keep",
                  "on_nonfinite", "max_rollbacks", "poison_epoch", "watchdog_factor",
                  "watchdog_min_s", "watchdog_first_epoch_s", "stop_grace_s", "stall_epoch",
                  "num_processes", "process_id", "coordinator_address",
                  "coordinator_timeout_s", "peer_timeout_s", "resume_epoch", "logger",
                  "wandb.project", "wandb.entity", "wandb.name", "wandb.group",
                  "wandb.mode")
_TRAINERS: dict[str, Trainer] = {}


def traced_config_key(config: ml_collections.ConfigDict) -> str:
  """``config`` (the agent's sections alone) but ``HOST_ONLY_KEYS``, as JSON: what the
  compiled functions depend on."""
  return json.dumps({k: v for k, v in config_lib.flatten(config_lib.for_agent(config)).items()
                     if k not in HOST_ONLY_KEYS}, sort_keys=True, default=str)


def trainer_for(config: ml_collections.ConfigDict) -> Trainer:
  """The process's Trainer for ``config`` (same compiled functions for every config that
  differs only in ``HOST_ONLY_KEYS``), so repeated jobs in one process (an extension, a
  sweep, the tests) trace and compile once."""
  key = traced_config_key(config)
  if key not in _TRAINERS:
    if len(_TRAINERS) >= 4:
      _TRAINERS.pop(next(iter(_TRAINERS)))
    _TRAINERS[key] = Trainer.from_config(config)
  return _TRAINERS[key]
