"""A trained EAR policy as a function of (observation, LTE), for adaptation and rendering.

``load_policy(workdir)`` returns ``(policy, ltes)``: ``policy(obs, lte)`` is the
deterministic action tanh(mean) of the frozen actor for a batch of observations and a
batch of LTE vectors (jitted); ``ltes`` is the table of training LTEs, one row per task of
the run, in the run's task order.

``load_run(workdir)`` gives the same actor as a ``FrozenPolicy`` pytree (parameters as
leaves, the decoder static) together with the run's env and tasks: what the rollouts and
searches of ``earjax.adaptation`` take.

Both build the networks from the run's saved config and read the ``policy`` item of a
checkpoint alone (the best one, or the latest training checkpoint's copy): no trainer,
optimiser or replay is built or read.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import agents
from earjax import checkpoint
from earjax import envs
from earjax.envs import TaskFamilyEnv
from earjax.networks import deterministic_action, sample_tanh_gaussian
from earjax.training import job
from earjax.training.trainer import agent_spec, make_env, task_ids


@struct.dataclass
class FrozenPolicy:
  """The frozen EAR actor pi(a | phi(s), Z) with Z given (Sec. 3.2): only LTEs vary."""
  params: Any
  decode_fn: Callable = struct.field(pytree_node=False)   # (params, obs, lte) -> mean, log_std
  lse_fn: Callable = struct.field(pytree_node=False)      # (params, obs) -> LSE

  def act(self, lte: jax.Array, obs: jax.Array, key: jax.Array,
          stochastic: jax.Array) -> jax.Array:
    """The action for ``obs`` under ``lte`` (an ``acting.ActFn``): a sample of the
    tanh-Gaussian (keyed by ``key``) where ``stochastic`` (a traced bool, so one compiled
    rollout serves both), else tanh(mean)."""
    mean, log_std = self.decode_fn(self.params, obs, lte)
    sample = sample_tanh_gaussian(mean, log_std, key)[0]
    return jnp.where(stochastic, sample, deterministic_action(mean))

  def lse(self, obs: jax.Array) -> jax.Array:
    """The latent sensory embedding phi(s) (a unit vector)."""
    return self.lse_fn(self.params, obs)


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained EAR run: its frozen policy, training LTEs, env and tasks."""
  workdir: str
  config: ml_collections.ConfigDict
  env: TaskFamilyEnv
  policy: FrozenPolicy
  ltes: jax.Array            # [num_tasks, lte_dim], the run's task order
  task_params: np.ndarray    # [num_tasks, task_param_size]
  task_names: tuple[str, ...]
  epoch: int                 # the checkpoint's epoch

  @property
  def lte_dim(self) -> int:
    return int(self.ltes.shape[-1])


def frozen_policy(networks, actor_params) -> FrozenPolicy:
  """The EAR actor of ``networks`` (``EARNetworks``) with ``actor_params``, frozen."""
  if getattr(networks, "decode", None) is None:
    raise ValueError("a frozen LTE-conditioned policy needs EAR networks (agent ear_sac)")
  return FrozenPolicy(params=actor_params, decode_fn=networks.decode, lse_fn=networks.lse)


def restore_policy(workdir: str, which: str = "best"):
  """(config, env, task ids, networks, policy params, epoch) of the run in ``workdir``;
  ``which`` is "best" (highest mean evaluation return) or "latest" (the last training
  checkpoint)."""
  if which not in ("best", "latest"):
    raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
  config = job.load_config(workdir)
  env = make_env(config, impl="jax")
  ids = task_ids(config, env)
  networks = agents.get(config.agent).make_networks(config, agent_spec(env, len(ids)))
  target = {"policy": checkpoint.abstract(jax.eval_shape(networks.actor_init,
                                                         jax.random.PRNGKey(0)))}
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    if which == "best":
      epoch, params = ckpt.best_epoch(), ckpt.restore_best(target)["policy"]
    else:
      epoch, params = ckpt.latest_epoch(), ckpt.restore_items(target)["policy"]
  finally:
    ckpt.close()
  return config, env, ids, networks, params, epoch


def restore_best_items(workdir: str, agent: agents.Agent,
                       checkpoints_to_keep: int) -> tuple[dict, int]:
  """(every item of ``agent.best_items``, epoch) of the best checkpoint in ``workdir``."""
  targets = checkpoint.abstract(agents.abstract_best_items(agent))
  ckpt = checkpoint.Checkpointer(workdir, checkpoints_to_keep, tuple(targets))
  try:
    return ckpt.restore_best(targets), int(ckpt.best_epoch())
  finally:
    ckpt.close()


def restore_critic(run: Run) -> tuple[Callable, Any]:
  """(``critic_apply(params, obs, action, task_label) -> [2, ...]``, params) of the twin
  critics in ``run``'s best checkpoint (SAC-family agents keep them there)."""
  agent = agents.get(run.config.agent).make_agent(
      run.config, agent_spec(run.env, len(run.task_names)))
  items, _ = restore_best_items(run.workdir, agent, run.config.checkpoints_to_keep)
  return agent.networks.critic_apply, items["critic"]


def _require_ear(workdir: str) -> None:
  agent = job.load_config(workdir).agent
  if agent != "ear_sac":
    raise ValueError(f"an EAR run is needed; {workdir!r} trained {agent!r}, which has no LTEs")


def load_run(workdir: str, which: str = "best") -> Run:
  """The EAR run in ``workdir`` with its ``which`` ("best" or "latest") actor."""
  _require_ear(workdir)
  config, env, ids, networks, params, epoch = restore_policy(workdir, which)
  envs.require_per_env(env, "the LTE tools (interpolation, CEM, rendering)")
  return Run(workdir=workdir, config=config, env=env,
             policy=frozen_policy(networks, params), ltes=networks.lte_table(params),
             task_params=env.train_tasks[ids],
             task_names=tuple(env.task_names[i] for i in ids), epoch=int(epoch))


def load_policy(workdir: str, which: str = "best") -> tuple[Callable, jax.Array]:
  """(policy, ltes) of the EAR run in ``workdir``; ``which`` is "best" (highest mean
  evaluation return) or "latest" (the last training checkpoint)."""
  _require_ear(workdir)
  _, _, _, networks, params, _ = restore_policy(workdir, which)

  @jax.jit
  def policy(obs: jax.Array, lte: jax.Array) -> jax.Array:
    return deterministic_action(networks.decode(params, obs, lte)[0])

  return policy, networks.lte_table(params)
