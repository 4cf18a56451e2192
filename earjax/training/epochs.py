"""The two kinds of training epoch, chosen by the agent's data (``agents.ReplayData`` or
``agents.EpisodeData``), each traced inside ``Trainer.epoch`` (one jit, state donated).

Both return ``(state, metrics)`` with the same contract: ``train/<name>`` scalars (the
update's metrics, averaged over the epoch's updates) and ``health``, ``{quantity: first
env or gradient step where it is non-finite, or -1}`` in the order things happen in the
epoch (``start/`` parameters, ``env/`` steps, ``update/<i>/`` the update's quantities in
the order it computes them, ``end/`` parameters), which ``job.describe_nonfinite`` reads.
"""
from __future__ import annotations

import jax
from jax.extend import core as jax_core
import jax.numpy as jnp

from earjax import acting
from earjax import replay


def _first_bad(ok: jax.Array) -> jax.Array:
  """ok: bool[steps] -> the first step that is not, or -1."""
  return jnp.where(ok.all(), -1, jnp.argmin(ok)).astype(jnp.int32)


def health(agent, start, env_finite: dict, update_finite: dict, update_order, end):
  """The epoch's ``health`` dict: ``env_finite`` {field: bool[env steps]},
  ``update_finite`` {quantity: bool[updates]} numbered by ``update_order``."""
  out = {f"start/{k}": _first_bad(ok[None]) for k, ok in agent.parameter_health(start).items()}
  out.update({f"env/{k}": _first_bad(ok) for k, ok in env_finite.items()})
  out.update({f"update/{update_order.index(k)}/{k}": _first_bad(ok)
              for k, ok in update_finite.items()})
  out.update({f"end/{k}": _first_bad(ok[None]) for k, ok in agent.parameter_health(end).items()})
  return out


def updates_due(trainer, state) -> jax.Array:
  """Whether this epoch's updates run: the random-action epochs are over and the replay
  (as the updates will read it, after this epoch's collection unless
  ``overlap_collection``) holds ``min_replay_size`` transitions, all tasks together."""
  c = trainer.config
  size = state.replay.size + (0 if c.overlap_collection else
                              jnp.minimum(c.envs_per_task * c.env_steps_per_epoch,
                                          c.replay_capacity - state.replay.size))
  return (state.epoch >= c.random_epochs) & (size * trainer.num_tasks
                                             >= max(c.min_replay_size, 1))


def off_policy(trainer, state, due=None):
  """Algorithm 1, one epoch: collect with every task's envs, insert into the replay, then
  ``grad_steps_per_epoch`` updates on task-balanced batches in a ``lax.scan`` when they
  are ``due`` (``updates_due``; given by a seed-batched trainer, read off seed 0).

  A method with a context buffer (``agents.ContextData``, PEARL) has the transitions of
  the envs it made explore replace their slots of ``state.context`` (every slot in the
  random-action epochs and the first), and each update draws its context batch from it.

  With ``overlap_collection`` the updates read the replay (and the context buffer) of
  before this epoch's transitions, so nothing they compute waits for the collection."""
  c, agent, layout = trainer.config, trainer.agent, trainer.inner_layout
  data = agent.data
  rng, collect_key, update_key = jax.random.split(state.rng, 3)
  random_phase = state.epoch < c.random_epochs
  policy_params = agent.policy_params(state.learner)
  act = lambda obs, task_index, key: agent.act(policy_params, obs, task_index, key,
                                               deterministic=False)
  env_state, transitions = acting.collect(
      trainer.batch_env, act, state.env_state, trainer.env_task_index, trainer.num_tasks,
      collect_key, c.env_steps_per_epoch, random_phase, data.extra_fields)
  replay_state = replay.insert(state.replay, transitions)
  sampled = state.replay if c.overlap_collection else replay_state
  context_state = state.context
  if data.context is not None:   # the exploring envs' epoch enters the context buffer
    fresh = data.context.exploring(state.learner) | random_phase | (state.epoch == 0)
    context_state = replay.refresh(
        state.context, {f: transitions[f] for f in replay.FIELDS},
        jnp.repeat(fresh, c.env_steps_per_epoch, axis=1))
  sampled_context = state.context if c.overlap_collection else context_state
  train = updates_due(trainer, state) if due is None else due

  def one(learner_state, replay_state, context_state, key):
    sample_key, step_key = jax.random.split(key)
    batch = replay.flatten_batch(replay.sample(replay_state, sample_key,
                                               c.batch_size_per_task))
    if layout is not None:
      batch = layout.constrain_batch(batch)
    if data.context is not None:
      context = replay.sample(context_state, jax.random.fold_in(sample_key, 1),
                              data.context.per_task)
      batch["context"] = context if layout is None else layout.constrain_per_task(context)
    learner_state, metrics = agent.update(learner_state, batch, step_key)
    # The order the update computes its quantities in (a traced dict comes back with
    # sorted keys), for the non-finite report.
    trainer.update_order = tuple(metrics["finite"])
    return learner_state, metrics

  # The update is traced once: its jaxpr serves the scan, and its output shapes the
  # skipped branch (zero metrics, every finiteness flag true).
  keys = jax.random.split(update_key, c.grad_steps_per_epoch)
  update_jaxpr, out_shapes = jax.make_jaxpr(one, return_shape=True)(
      state.learner, sampled, sampled_context, keys[0])
  out_tree = jax.tree.structure(out_shapes)

  def traced_one(learner_state, key):
    flat = jax.tree.leaves((learner_state, sampled, sampled_context, key))
    return jax.tree.unflatten(out_tree, jax_core.jaxpr_as_fun(update_jaxpr)(*flat))

  skipped = lambda learner_state: (learner_state, jax.tree.map(
      lambda s: jnp.full((c.grad_steps_per_epoch,) + s.shape, s.dtype == jnp.bool_,
                         s.dtype), out_shapes[1]))
  learner_state, update_metrics = jax.lax.cond(
      train, lambda s: jax.lax.scan(traced_one, s, keys), skipped, state.learner)
  finite = update_metrics.pop("finite")
  metrics = {f"train/{k}": v.mean() for k, v in update_metrics.items()}
  metrics["train/reward"] = transitions["reward"].mean()

  def per_env_step(x):  # task-major [tasks, envs_per_task * T, ...] -> [T]
    x = x.reshape((trainer.num_tasks, c.envs_per_task, -1) + x.shape[2:])
    return jnp.isfinite(jnp.moveaxis(x, 2, 0)).reshape(x.shape[2], -1).all(1)

  metrics["health"] = health(agent, state.learner,
                             {k: per_env_step(transitions[k]) for k in ("next_obs", "reward")},
                             finite, trainer.update_order, learner_state)
  return state.replace(
      learner=learner_state, replay=replay_state, context=context_state,
      env_state=env_state, rng=rng, epoch=state.epoch + 1, env_steps=state.env_steps + trainer.env_steps_per_epoch,
      grad_steps=state.grad_steps + jnp.where(train, c.grad_steps_per_epoch, 0)), metrics


def on_policy(trainer, state, due=None):
  """One ``agent.update`` that draws its own episodes (MAML's meta-iteration), on the
  run's tasks or a meta-batch of ``EpisodeData.tasks_per_update`` drawn from them: the
  episodes, with sampled actions, and the update in this one jit; no collection, no
  replay (``due`` is the off-policy epoch's; unused)."""
  del due
  agent, layout = trainer.agent, trainer.inner_layout
  rng, key = jax.random.split(state.rng)
  task_params = trainer.task_params
  if agent.data.tasks_per_update:     # the meta-batch: tasks drawn with replacement
    task_key, key = jax.random.split(key)
    task_params = task_params[jax.random.randint(
        task_key, (agent.data.tasks_per_update,), 0, task_params.shape[0])]

  def episodes(act, policy_inputs, task_params, keys):
    if layout is not None:   # the episodes over the data axis, as CEM's candidates
      policy_inputs, task_params, keys = jax.lax.with_sharding_constraint(
          (policy_inputs, task_params, keys), layout.leading)
    return acting.rollout(trainer.env, act, policy_inputs, task_params, keys,
                          stochastic=True, keep_transitions=True)

  learner_state, metrics = agent.update(state.learner, episodes, task_params, key)
  finite = metrics.pop("finite")
  trainer.update_order = tuple(finite)
  metrics = {f"train/{k}": v for k, v in metrics.items()}
  metrics["health"] = health(agent, state.learner, {},
                             {k: jnp.asarray(ok)[None] for k, ok in finite.items()},
                             trainer.update_order, learner_state)
  return state.replace(
      learner=learner_state, rng=rng, epoch=state.epoch + 1,
      env_steps=state.env_steps + trainer.env_steps_per_epoch,
      grad_steps=state.grad_steps + 1), metrics
