"""A trained EAR policy as a function of (observation, LTE), for adaptation and rendering.

``load_policy(workdir)`` returns ``(policy, ltes)``: ``policy(obs, lte)`` is the
deterministic action tanh(mean) of the frozen actor for a batch of observations and a
batch of LTE vectors (jitted); ``ltes`` is the table of training LTEs, one row per task of
the run, in the run's task order.

``load_run(workdir)`` gives the same actor as a ``FrozenPolicy`` pytree (parameters as
leaves, the decoder static) together with the run's env and tasks: what the rollouts of
``earjax.lte`` and the searches of ``earjax.adaptation`` take.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import checkpoint
from earjax import config as config_lib
from earjax.envs import TaskFamilyEnv
from earjax.networks import Networks, deterministic_action, sample_tanh_gaussian


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's ``config.json``, keys it predates filled with their defaults."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise checkpoint.CheckpointError(f"{workdir!r} holds no training run (no config.json)")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  # A run saved before a config key existed (e.g. ``backend``) ran with its default.
  for key, value in config_lib.flatten(config_lib.default_config()).items():
    *parents, leaf = key.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    if leaf not in node:
      node[leaf] = value
  return config


@struct.dataclass
class FrozenPolicy:
  """The frozen EAR actor pi(a | phi(s), Z) with Z given (Sec. 3.2): only LTEs vary."""
  params: Any
  decode_fn: Callable = struct.field(pytree_node=False)   # (params, obs, lte) -> mean, log_std
  encode_fn: Callable = struct.field(pytree_node=False)   # (params, obs) -> LSE

  def act(self, obs: jax.Array, lte: jax.Array, key: jax.Array,
          stochastic: jax.Array) -> jax.Array:
    """A sample of the tanh-Gaussian (keyed by ``key``) where ``stochastic`` (a traced
    bool, so one compiled rollout serves both), else tanh(mean)."""
    mean, log_std = self.decode_fn(self.params, obs, lte)
    sample = sample_tanh_gaussian(mean, log_std, key)[0]
    return jnp.where(stochastic, sample, deterministic_action(mean))

  def lse(self, obs: jax.Array) -> jax.Array:
    """The latent sensory embedding phi(s) (unit 16-vector)."""
    return self.encode_fn(self.params, obs)


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


def _restore_actor(workdir: str, which: str):
  """(trainer, actor_params, epoch) of the run in ``workdir``."""
  from earjax import training  # pylint: disable=g-import-not-at-top

  if which not in ("best", "latest"):
    raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
  config = load_config(workdir)
  trainer = training.trainer_for(config)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    key = jax.random.PRNGKey(config.seed)
    if which == "best":
      abstract_params = checkpoint.abstract(jax.eval_shape(trainer.networks.actor_init, key))
      epoch = ckpt.best_epoch()
      actor_params = ckpt.restore_best({"actor_params": abstract_params,
                                        "critic_params": checkpoint.abstract(jax.eval_shape(
                                            trainer.networks.critic_init, key))})
      actor_params = actor_params["actor_params"]
    else:
      epoch = ckpt.latest_epoch()
      if epoch is None:
        raise checkpoint.CheckpointError(f"{workdir!r} has no training checkpoint yet")
      state = ckpt.restore(checkpoint.abstract(jax.eval_shape(trainer.init, key)))
      actor_params = state.learner.actor_params
  finally:
    ckpt.close()
  return trainer, actor_params, epoch


def _state_encoder(module, obs):
  return module.state_encoder(obs)


def frozen_policy(networks: Networks, actor_params) -> FrozenPolicy:
  """The EAR actor of ``networks`` with ``actor_params``, frozen."""
  if networks.kind != "ear":
    raise ValueError(f"a frozen LTE-conditioned policy needs EAR networks, got "
                     f"{networks.kind!r}")
  return FrozenPolicy(params=actor_params, decode_fn=networks.decode,
                      encode_fn=functools.partial(_encode, networks.actor))


def _encode(actor, params, obs):
  return actor.apply({"params": params}, obs, method=_state_encoder)


def _require_ear(workdir: str) -> None:
  kind = load_config(workdir).network.kind
  if kind != "ear":
    raise ValueError(f"an EAR run is needed; {workdir!r} trained {kind!r}, which has no LTEs")


def load_run(workdir: str, which: str = "best") -> Run:
  """The EAR run in ``workdir`` with its ``which`` ("best" or "latest") actor."""
  _require_ear(workdir)
  trainer, actor_params, epoch = _restore_actor(workdir, which)
  return Run(workdir=workdir, config=trainer.config, env=trainer.env,
             policy=frozen_policy(trainer.networks, actor_params),
             ltes=trainer.networks.lte_table(actor_params),
             task_params=np.asarray(trainer.task_params),
             task_names=tuple(trainer.task_names), epoch=int(epoch))


def load_policy(workdir: str, which: str = "best") -> tuple[Callable, jax.Array]:
  """(policy, ltes) of the run in ``workdir``; ``which`` is "best" (highest mean
  evaluation return) or "latest" (the last training checkpoint)."""
  _require_ear(workdir)
  trainer, actor_params, _ = _restore_actor(workdir, which)
  decode = trainer.networks.decode

  @jax.jit
  def policy(obs: jax.Array, lte: jax.Array) -> jax.Array:
    return deterministic_action(decode(actor_params, obs, lte)[0])

  return policy, trainer.networks.lte_table(actor_params)
