"""A trained EAR policy as a function of (observation, LTE), for adaptation and rendering.

``load_policy(workdir)`` returns ``(policy, ltes)``: ``policy(obs, lte)`` is the
deterministic action tanh(mean) of the frozen actor for a batch of observations and a
batch of LTE vectors (jitted); ``ltes`` is the table of training LTEs, one row per task of
the run, in the run's task order.

``load_run(workdir)`` gives the same actor as a ``FrozenPolicy`` pytree (parameters as
leaves, the decoder static) with the ``Run`` it belongs to (env, tasks): an ``EARRun``,
what the rollouts and searches of ``earjax.adaptation`` take.

Both read the run once (``Run.load``: its config, env, tasks and networks) and the
``policy`` item of a checkpoint alone (the best one, or the latest training checkpoint's
copy): no trainer, optimiser or replay is built or read.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import envs
from earjax.envs import TaskFamilyEnv
from earjax.networks import deterministic_action, sample_tanh_gaussian
from earjax.run import Run


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
class EARRun:
  """A trained EAR run: the ``Run`` (config, env, tasks), its frozen policy, the training
  LTEs and the checkpoint's epoch."""
  run: Run
  policy: FrozenPolicy
  ltes: jax.Array            # [num_tasks, lte_dim], the run's task order
  epoch: int                 # the checkpoint's epoch
  which: str | int = "best"  # the checkpoint read
  seed_index: int = 0        # the seed of a batched run

  @property
  def workdir(self) -> str:
    return self.run.workdir

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.run.config

  @property
  def env(self) -> TaskFamilyEnv:
    return self.run.env

  @property
  def task_params(self) -> np.ndarray:
    return self.run.task_params

  @property
  def task_names(self) -> tuple[str, ...]:
    return self.run.task_names

  @property
  def lte_dim(self) -> int:
    return int(self.ltes.shape[-1])


def frozen_policy(networks, actor_params) -> FrozenPolicy:
  """The EAR actor of ``networks`` (``EARNetworks``) with ``actor_params``, frozen."""
  if getattr(networks, "decode", None) is None:
    raise ValueError("a frozen LTE-conditioned policy needs EAR networks (agent ear_sac)")
  return FrozenPolicy(params=actor_params, decode_fn=networks.decode, lse_fn=networks.lse)


def restore_critic(run: EARRun) -> tuple[Callable, Any]:
  """(``critic_apply(params, obs, action, task_label) -> [2, ...]``, params) of the twin
  critics in ``run``'s best checkpoint (SAC-family agents keep them there)."""
  if run.which != "best":
    raise ValueError("the critics are kept in the best checkpoint alone; the policy was "
                     f"read from checkpoint {run.which!r}: use --checkpoint=best with the "
                     "critic's gradient")
  items, _ = run.run.restore_best_items(run.seed_index)
  return run.run.networks.critic_apply, items["critic"]


def _load_ear(workdir: str) -> Run:
  """The EAR run in ``workdir`` with the JAX physics (the LTE tools' batches differ from
  training's, so Warp's buffers would not fit them)."""
  return Run.load(workdir, agent="ear_sac", what="the LTE tools (an EAR run has LTEs)",
                  impl="jax")


def load_run(workdir: str, which: str | int = "best", seed_index: int = 0) -> EARRun:
  """The EAR run in ``workdir`` with its ``which`` actor: "best", "latest" or a training
  checkpoint's epoch (``Run.restore_policy``), read onto this process's device whatever
  device or process count saved it; of a seed batch, seed ``seed_index``'s."""
  run = _load_ear(workdir)
  envs.require_per_env(run.env, "the LTE tools (interpolation, CEM, rendering)")
  params, epoch = run.restore_policy(which, seed_index)
  return EARRun(run=run, policy=frozen_policy(run.networks, params),
                ltes=run.networks.lte_table(params), epoch=epoch, which=which,
                seed_index=seed_index)


def load_policy(workdir: str, which: str | int = "best",
                seed: int = 0) -> tuple[Callable, jax.Array]:
  """(policy, ltes) of the EAR run in ``workdir``; ``which`` is "best" (highest mean
  evaluation return), "latest" (the last training checkpoint) or a training checkpoint's
  epoch; ``seed``: the index of the seed in a batched run (``num_seeds`` > 1)."""
  run = _load_ear(workdir)
  params, _ = run.restore_policy(which, seed)
  networks = run.networks

  @jax.jit
  def policy(obs: jax.Array, lte: jax.Array) -> jax.Array:
    return deterministic_action(networks.decode(params, obs, lte)[0])

  return policy, networks.lte_table(params)
