"""The generic, jitted training epoch of an off-policy agent (EAR-SAC's Algorithm 1).

``Trainer`` holds what is static (env, agent, tasks) and three compiled functions:
``init(key, task_params)``; ``epoch(state) -> (state, metrics)``, one ``jax.jit`` with
the state donated, in which every task's envs step together for ``env_steps_per_epoch``
steps (``acting.collect``), the transitions enter the per-task replay, and
``grad_steps_per_epoch`` calls of ``agent.update`` on task-balanced batches run in a
``lax.scan``; and ``evaluate(policy_params, key)``, deterministic episodes of every task.
No host round-trip happens inside an epoch.  Nothing here is specific to a method: the
agent (``earjax.agents``) brings its networks, losses and update.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from flax import struct
import jax
from jax.extend import core as jax_core
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import acting
from earjax import agents
from earjax import checkpoint
from earjax import config as config_lib
from earjax import envs
from earjax import parallel
from earjax import program_cache
from earjax import replay


class ConfigError(ValueError):
  """A config or workdir this job cannot run with; the message has one line per problem."""


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


def make_env(config: ml_collections.ConfigDict, **overrides) -> envs.TaskFamilyEnv:
  """``config``'s env; ``overrides`` replace the config's env options where the family
  takes them (the LTE tools ask ``impl="jax"``: their batches differ from training's)."""
  try:
    return envs.make(config.env_name, **config_lib.env_options(config, **overrides))
  except ValueError as e:
    raise ConfigError(str(e)) from e


def task_ids(config: ml_collections.ConfigDict, env: envs.TaskFamilyEnv) -> list[int]:
  """The run's training tasks, as indices into ``env.train_tasks``."""
  ids = list(config.task_ids) or list(range(env.num_tasks))
  problems = config_lib.check_task_ids(ids, env.num_tasks, config.env_name)
  if problems:
    raise ConfigError("\n".join(problems))
  return ids


def agent_spec(env: envs.TaskFamilyEnv, num_tasks: int) -> agents.AgentSpec:
  return agents.AgentSpec(observation_size=env.observation_size,
                          action_size=env.action_size, num_tasks=num_tasks)


class Trainer:
  """The static parts of a run and its compiled functions.

  One replay partition and one group of ``config.envs_per_task`` envs per entry of
  ``task_index``; env group k acts as the agent's task ``task_index[k]`` on the task
  parameters given to ``init``/``start``/``evaluate``, by default the run's
  ``task_params`` (named ``task_names``).  The fine-tuning baseline gives none: it
  passes each new task's parameter.
  """

  def __init__(self, config: ml_collections.ConfigDict, env: envs.TaskFamilyEnv,
               agent: agents.Agent, task_index: Sequence[int],
               task_params: np.ndarray | None = None,
               task_names: Sequence[str] | None = None):
    self.config = config
    self.agent = agent
    self.task_index = jnp.asarray(list(task_index), jnp.int32)
    self.num_tasks = len(self.task_index)
    self.num_envs = self.num_tasks * config.envs_per_task
    # The env sized for the largest batch stepped together: the training envs, the
    # evaluation episodes, an on-policy agent's episodes (MJX Warp's contact buffer).
    self.env = env = env.with_worlds(self.num_tasks * max(
        config.envs_per_task, config.eval_episodes, agent.meta_episodes_per_task))
    self.task_params = None if task_params is None else jnp.asarray(task_params, jnp.float32)
    self.task_names = None if task_names is None else list(task_names)
    self.velocity_targets = (None if task_params is None else
                             [env.velocity_target(p) for p in np.asarray(task_params)])
    self.direction_targets = (None if task_params is None else
                              [env.direction_target(p) for p in np.asarray(task_params)])
    self.batch_env = envs.training_batch(env)
    # A host family evaluates in a batch of its own (one env per evaluation episode).
    self.eval_batch = env.batch() if envs.on_host(env) else None
    # Envs are task-major: env i runs task i // envs_per_task.
    self.env_task_index = jnp.repeat(self.task_index, config.envs_per_task)
    self.epoch_traces = 0
    problems = parallel.problems(config, self.num_tasks)
    if problems:
      raise ConfigError("\n".join(problems))
    # The state laid over the devices (None: one device, nothing annotated).
    self.layout = parallel.Layout.for_run(config)
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
    if self.agent.meta_update is not None:
      return self.num_tasks * self.agent.meta_episodes_per_task * self.env.episode_length
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
    """The run ``config`` describes: its env, its tasks and its agent."""
    env = make_env(config)
    ids = task_ids(config, env)
    agent = agents.get(config.agent).make_agent(config, agent_spec(env, len(ids)))
    return cls(config, env, agent, task_index=range(len(ids)),
               task_params=env.train_tasks[ids], task_names=[env.task_names[i] for i in ids])

  def _init(self, key: jax.Array, task_params: jax.Array) -> TrainingState:
    """A fresh run on ``task_params`` [num_tasks, p]: new parameters, empty replay,
    reset envs (jitted, so that no two leaves share a buffer and the state can be
    donated)."""
    learner_key, key = jax.random.split(key)
    return self._start(self.agent.init(learner_key), key, task_params)

  def _start(self, learner_state, key: jax.Array, task_params: jax.Array) -> TrainingState:
    """A run from a given learner state: empty replay, reset envs, counters at 0."""
    env_key, rng = jax.random.split(key)
    c = self.config
    # An on-policy agent replays nothing: it keeps a one-slot replay (every agent's
    # state has the same structure).
    capacity = c.replay_capacity if self.agent.meta_update is None else 1
    return self._laid_out(TrainingState(
        learner=learner_state,
        replay=replay.init(self.num_tasks, capacity, self.env.observation_size,
                           self.env.action_size, self.agent.replay_metrics),
        env_state=self._reset_envs(env_key, task_params),
        rng=rng, epoch=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        grad_steps=jnp.zeros((), jnp.int32)))

  def _laid_out(self, state: TrainingState) -> TrainingState:
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
    """Algorithm 1, one epoch: collect with every task's envs, then the updates.

    Updates run once the random-action epochs are over and the replay holds
    ``min_replay_size`` transitions (all tasks together).  An on-policy agent's epoch
    is ``_meta_epoch``."""
    self.epoch_traces += 1
    if self.agent.meta_update is not None:
      return self._meta_epoch(state)
    c = self.config
    rng, collect_key, update_key = jax.random.split(state.rng, 3)
    random_phase = state.epoch < c.random_epochs
    policy_params = self.agent.policy_params(state.learner)
    act = lambda obs, task_index, key: self.agent.act(policy_params, obs, task_index, key,
                                                      deterministic=False)
    env_state, transitions = acting.collect(
        self.batch_env, act, state.env_state, self.env_task_index, self.num_tasks,
        collect_key, c.env_steps_per_epoch, random_phase, self.agent.replay_metrics)
    replay_state = replay.insert(state.replay, transitions)
    # ``overlap_collection``: the updates read the replay of before this epoch's
    # transitions, so nothing they compute waits for the collection.
    sampled = state.replay if c.overlap_collection else replay_state
    train = ~random_phase & (sampled.size * self.num_tasks >= max(c.min_replay_size, 1))

    def one(learner_state, replay_state, key):
      sample_key, step_key = jax.random.split(key)
      batch = replay.flatten_batch(replay.sample(replay_state, sample_key,
                                                 c.batch_size_per_task))
      if self.layout is not None:
        batch = self.layout.constrain_batch(batch)
      if self.agent.context_per_task:
        context = replay.sample(replay_state, jax.random.fold_in(sample_key, 1),
                                self.agent.context_per_task)
        batch["context"] = (context if self.layout is None
                            else self.layout.constrain_per_task(context))
      learner_state, metrics = self.agent.update(learner_state, batch, step_key)
      # The order the update computes its quantities in (a traced dict comes back with
      # sorted keys), for the non-finite report.
      self.update_order = tuple(metrics["finite"])
      return learner_state, metrics

    # The update is traced once: its jaxpr serves the scan, and its output shapes the
    # skipped branch (zero metrics, every finiteness flag true).
    keys = jax.random.split(update_key, c.grad_steps_per_epoch)
    update_jaxpr, out_shapes = jax.make_jaxpr(one, return_shape=True)(
        state.learner, sampled, keys[0])
    out_tree = jax.tree.structure(out_shapes)

    def traced_one(learner_state, key):
      flat = jax.tree.leaves((learner_state, sampled, key))
      return jax.tree.unflatten(out_tree, jax_core.jaxpr_as_fun(update_jaxpr)(*flat))

    skipped = lambda learner_state: (learner_state, jax.tree.map(
        lambda s: jnp.full((c.grad_steps_per_epoch,) + s.shape, s.dtype == jnp.bool_,
                           s.dtype), out_shapes[1]))
    learner_state, update_metrics = jax.lax.cond(
        train, lambda s: jax.lax.scan(traced_one, s, keys), skipped, state.learner)
    finite = update_metrics.pop("finite")
    metrics = {f"train/{k}": v.mean() for k, v in update_metrics.items()}
    metrics["train/reward"] = transitions["reward"].mean()
    metrics["health"] = self._health(state.learner, transitions, finite, learner_state)
    grad_steps = jnp.where(train, c.grad_steps_per_epoch, 0)
    return self._laid_out(TrainingState(
        learner=learner_state, replay=replay_state, env_state=env_state, rng=rng,
        epoch=state.epoch + 1,
        env_steps=state.env_steps + self.env_steps_per_epoch,
        grad_steps=state.grad_steps + grad_steps)), metrics

  def _meta_epoch(self, state: TrainingState):
    """One ``agent.meta_update`` on the run's tasks (MAML's meta-iteration): its episodes,
    drawn inside it with sampled actions, and its update in this one jit."""
    rng, key = jax.random.split(state.rng)

    def episodes(act, policy_inputs, task_params, keys):
      if self.layout is not None:   # the episodes over the data axis, as CEM's candidates
        policy_inputs, task_params, keys = jax.lax.with_sharding_constraint(
            (policy_inputs, task_params, keys), self.layout.leading)
      return acting.rollout(self.env, act, policy_inputs, task_params, keys,
                            stochastic=True, keep_transitions=True)

    learner_state, metrics = self.agent.meta_update(state.learner, episodes,
                                                    self.task_params, key)
    finite = metrics.pop("finite")
    metrics = {f"train/{k}": v for k, v in metrics.items()}
    health = {f"start/{k}": jnp.where(ok, -1, 0)
              for k, ok in self.agent.parameter_health(state.learner).items()}
    health.update({f"update/{i}/{k}": jnp.where(ok, -1, 0)
                   for i, (k, ok) in enumerate(finite.items())})
    health.update({f"end/{k}": jnp.where(ok, -1, 0)
                   for k, ok in self.agent.parameter_health(learner_state).items()})
    metrics["health"] = jax.tree.map(lambda x: x.astype(jnp.int32), health)
    return self._laid_out(state.replace(
        learner=learner_state, rng=rng, epoch=state.epoch + 1,
        env_steps=state.env_steps + self.env_steps_per_epoch,
        grad_steps=state.grad_steps + 1)), metrics

  def _health(self, start, transitions, finite, end) -> dict[str, jax.Array]:
    """``{quantity: first env or gradient step where it is non-finite, or -1}``, in the
    order things happen in the epoch (parameters at the start, env steps, the update's
    quantities, numbered in the order the update computes them, parameters at the end);
    read by ``job.describe_nonfinite``."""
    def first_bad(ok):  # ok: bool[steps]
      return jnp.where(ok.all(), -1, jnp.argmin(ok)).astype(jnp.int32)

    def per_env_step(x):  # task-major [tasks, envs_per_task * T, ...] -> [T]
      x = x.reshape((self.num_tasks, self.config.envs_per_task, -1) + x.shape[2:])
      return jnp.isfinite(jnp.moveaxis(x, 2, 0)).reshape(x.shape[2], -1).all(1)

    health = {f"start/{k}": first_bad(ok[None])
              for k, ok in self.agent.parameter_health(start).items()}
    health.update({f"env/{k}": first_bad(per_env_step(transitions[k]))
                   for k in ("next_obs", "reward")})
    health.update({f"update/{self.update_order.index(k)}/{k}": first_bad(v)
                   for k, v in finite.items()})
    health.update({f"end/{k}": first_bad(ok[None])
                   for k, ok in self.agent.parameter_health(end).items()})
    return health

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
    """Per task (default: the run's) mean deterministic return, velocity, length and
    success rate."""
    task_index = self.task_index if task_index is None else task_index
    task_params = self.task_params if task_params is None else task_params
    c = self.config
    if self.eval_batch is not None:
      act = lambda obs, task_index, key: self.agent.act(policy_params, obs, task_index, key,
                                                        deterministic=True)
      return acting.evaluate_batch(self.eval_batch, act, task_index, task_params, key,
                                   c.eval_episodes, c.success_window)
    return acting.evaluate(self.env, self.act_on_task(policy_params), task_index,
                           task_params, key, c.eval_episodes, c.success_window)

  def eval_metrics(self, policy_params, epoch: int) -> dict[str, float]:
    """Per-task evaluation: return, episode length, velocity (mean over the steps alive),
    success rate (``acting.episode_success``) and |velocity - target| where the task has
    a target; on a planar family the heading of the displacement and its angle to the
    task's direction (``acting.displacement_heading``); their means over the tasks; keyed
    by (seed, epoch), so it never touches the training RNG."""
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), epoch)
    result = jax.device_get(self.evaluate(policy_params, key))
    out, errors, direction_errors = {}, [], []
    for i, name in enumerate(self.task_names):
      out[f"eval/return/{name}"] = float(result["return"][i])
      if "velocity" in result:
        out[f"eval/velocity/{name}"] = float(result["velocity"][i])
      out[f"eval/length/{name}"] = float(result["length"][i])
      out[f"eval/success/{name}"] = float(result["success"][i])
      if self.velocity_targets[i] is not None:
        errors.append(abs(float(result["velocity"][i]) - self.velocity_targets[i]))
        out[f"eval/velocity_error/{name}"] = errors[-1]
      if "heading" in result:
        out[f"eval/heading/{name}"] = float(result["heading"][i])
        if self.direction_targets[i] is not None:
          direction_errors.append(acting.angle_difference(float(result["heading"][i]),
                                                          self.direction_targets[i]))
          out[f"eval/direction_error/{name}"] = direction_errors[-1]
    out["eval/return_mean"] = float(np.mean(result["return"]))
    out["eval/success_rate"] = float(np.mean(result["success"]))
    if errors:
      out["eval/velocity_error_mean"] = float(np.mean(errors))
    if direction_errors:
      out["eval/direction_error_mean"] = float(np.mean(direction_errors))
    return out


# Keys only the job loop reads: configs that differ in nothing else share a Trainer.
HOST_ONLY_KEYS = ("num_epochs", "eval_every", "checkpoint_every", "checkpoints_to_keep",
                  "on_nonfinite", "max_rollbacks", "poison_epoch", "watchdog_factor",
                  "watchdog_min_s", "watchdog_first_epoch_s", "stop_grace_s", "stall_epoch",
                  "num_processes", "process_id", "coordinator_address",
                  "coordinator_timeout_s")
_TRAINERS: dict[str, Trainer] = {}


def traced_config_key(config: ml_collections.ConfigDict) -> str:
  """``config`` but ``HOST_ONLY_KEYS``, as JSON: what the compiled functions depend on."""
  return json.dumps({k: v for k, v in config_lib.flatten(config).items()
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
