"""The paper's adaptation baseline: an OHE-SAC policy fine-tuned with SAC on a new task.

The new task gets no new input: it reuses the one-hot slot of a source training task
(the one whose policy scores best on the new task, found by rollouts counted in the
budget) and actor and critics, with the run's temperature, continue SAC from the
source run's best parameters on the new task's rewards.  ``FinetuneTrainer`` is the
run's ``Trainer`` narrowed to one task whose one-hot input is slot 0; moving the chosen
source's weights into slot 0 (``move_slot_to_front``) lets every new task share one
compiled epoch, since the task parameter travels in the env state.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import acting
from earjax import checkpoint
from earjax import learner
from earjax import replay
from earjax import training
from earjax.losses import make_losses
from earjax.networks import Networks


def move_slot_to_front(params, slot: int, num_tasks: int):
  """Swaps one-hot input rows 0 and ``slot`` of the first layer of every MLP in
  ``params`` (the one-hot is the last ``num_tasks`` inputs), so that one-hot 0 then acts
  as one-hot ``slot`` did."""
  order = np.arange(num_tasks)
  order[[0, slot]] = order[[slot, 0]]

  def swap(path, x):
    if jax.tree_util.keystr(path).endswith("['Dense_0']['kernel']"):
      rows = x.shape[-2] - num_tasks + order
      return jnp.concatenate([x[..., :x.shape[-2] - num_tasks, :],
                              jnp.take(x, jnp.asarray(rows), axis=-2)], axis=-2)
    return x

  return jax.tree_util.tree_map_with_path(swap, params)


def slot_zero(networks: Networks, num_tasks: int) -> Networks:
  """``networks`` of ``num_tasks`` one-hot inputs called with a 1-task one-hot: the single
  task is fed to slot 0."""
  def pad(onehot):
    return jnp.pad(onehot, [(0, 0)] * (onehot.ndim - 1) + [(0, num_tasks - 1)])

  return dataclasses.replace(
      networks,
      actor_apply=lambda p, obs, onehot, noise_key=None: networks.actor_apply(
          p, obs, pad(onehot), noise_key),
      critic_apply=lambda p, obs, action, onehot: networks.critic_apply(
          p, obs, action, pad(onehot)))


class FinetuneTrainer(training.Trainer):
  """The source run's Trainer on one new task: same networks (one-hot slot 0), same SAC
  settings but ``envs_per_task`` envs and no random-action epochs; the new task's
  parameter is set by ``init_state``."""

  def __init__(self, source_config: ml_collections.ConfigDict, envs_per_task: int):
    config = ml_collections.ConfigDict(source_config.to_dict())
    config.envs_per_task, config.random_epochs = envs_per_task, 0
    if config.network.kind != "ohe":
      raise ValueError(f"fine-tuning is the OHE-SAC baseline; got a {config.network.kind!r} run")
    if config.per_task_alpha:
      raise ValueError("fine-tuning continues one shared temperature; the run has per-task ones")
    super().__init__(config)
    self.source_config = source_config
    self.source_networks, self.num_source_tasks = self.networks, self.num_tasks
    self.num_tasks, self.num_envs = 1, config.envs_per_task
    self.task_params = self.task_names = self.velocity_targets = None  # set per new task
    self.env_task_onehot = jnp.ones((self.num_envs, 1))
    self.networks = slot_zero(self.source_networks, self.num_source_tasks)
    losses = make_losses(self.networks.actor_apply, self.networks.critic_apply,
                         self.env.action_size, 1, gamma=config.gamma,
                         reward_scale=config.reward_scale)
    self.sgd_step = learner.make_sgd_step(losses, self.optimizer, config.tau,
                                          config.max_grad_norm)
    self.init_state = jax.jit(self._init_state)
    self.evaluate_on = jax.jit(self._evaluate_on, static_argnums=3)
    self.score_sources = jax.jit(self._score_sources, static_argnums=3)

  def _init_state(self, actor_params, critic_params, log_alpha, task_param, key):
    """A fine-tuning run of ``task_param`` [p] from the given (slot-0) parameters."""
    env_key, rng = jax.random.split(key)
    c = self.config
    return training.TrainingState(
        learner=learner.from_params(actor_params, critic_params, log_alpha, self.optimizer),
        replay=replay.init(1, c.replay_capacity, self.env.observation_size,
                           self.env.action_size),
        env_state=self.batch_env.reset(jax.random.split(env_key, self.num_envs),
                                       jnp.broadcast_to(task_param, (self.num_envs,)
                                                        + task_param.shape)),
        rng=rng, epoch=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        grad_steps=jnp.zeros((), jnp.int32))

  def _evaluate_on(self, actor_params, task_param, key, episodes):
    """Deterministic return and velocity of the fine-tuned policy on ``task_param``."""
    return acting.evaluate(self.env, self.networks, actor_params, task_param[None], key,
                           episodes)

  def _score_sources(self, source_actor_params, task_param, key, episodes):
    """Each source one-hot's deterministic return on the new task [num_source_tasks]."""
    tasks = jnp.broadcast_to(task_param, (self.num_source_tasks,) + task_param.shape)
    return acting.evaluate(self.env, self.source_networks, source_actor_params, tasks, key,
                           episodes)["return"]


def load_source(workdir: str, trainer: FinetuneTrainer):
  """(actor, critic, log_alpha) of the OHE run: best actor and critics, the temperature
  of its latest checkpoint (the best checkpoint keeps no alpha)."""
  config = trainer.source_config
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    key = jax.random.PRNGKey(config.seed)
    nets = trainer.source_networks
    best = ckpt.restore_best({
        "actor_params": checkpoint.abstract(jax.eval_shape(nets.actor_init, key)),
        "critic_params": checkpoint.abstract(jax.eval_shape(nets.critic_init, key))})
    if ckpt.latest_epoch() is None:
      raise checkpoint.CheckpointError(f"{workdir!r} has no training checkpoint yet")
    source = training.trainer_for(config)
    latest = ckpt.restore(checkpoint.abstract(jax.eval_shape(source.init, key)))
  finally:
    ckpt.close()
  return best["actor_params"], best["critic_params"], latest.learner.log_alpha
