"""A trained EAR policy as a function of (observation, LTE), for adaptation and rendering.

``load_policy(workdir)`` returns ``(policy, ltes)``: ``policy(obs, lte)`` is the
deterministic action tanh(mean) of the frozen actor for a batch of observations and a
batch of LTE vectors (jitted); ``ltes`` is the table of training LTEs, one row per task of
the run, in the run's task order.
"""
from __future__ import annotations

import json
import os
from typing import Callable

import jax
import ml_collections

from earjax import checkpoint
from earjax.networks import deterministic_action


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise checkpoint.CheckpointError(f"{workdir!r} holds no training run (no config.json)")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_policy(workdir: str, which: str = "best") -> tuple[Callable, jax.Array]:
  """(policy, ltes) of the run in ``workdir``; ``which`` is "best" (highest mean
  evaluation return) or "latest" (the last training checkpoint)."""
  from earjax import training  # pylint: disable=g-import-not-at-top

  config = load_config(workdir)
  if config.network.kind != "ear":
    raise ValueError(f"load_policy needs an EAR run; {workdir!r} trained "
                     f"{config.network.kind!r}, which has no LTEs")
  trainer = training.Trainer(config)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    key = jax.random.PRNGKey(config.seed)
    if which == "best":
      abstract_params = checkpoint.abstract(jax.eval_shape(trainer.networks.actor_init, key))
      actor_params = ckpt.restore_best({"actor_params": abstract_params,
                                        "critic_params": checkpoint.abstract(jax.eval_shape(
                                            trainer.networks.critic_init, key))})
      actor_params = actor_params["actor_params"]
    elif which == "latest":
      if ckpt.latest_epoch() is None:
        raise checkpoint.CheckpointError(f"{workdir!r} has no training checkpoint yet")
      state = ckpt.restore(checkpoint.abstract(jax.eval_shape(trainer.init, key)))
      actor_params = state.learner.actor_params
    else:
      raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
  finally:
    ckpt.close()
  decode = trainer.networks.decode

  @jax.jit
  def policy(obs: jax.Array, lte: jax.Array) -> jax.Array:
    return deterministic_action(decode(actor_params, obs, lte)[0])

  return policy, trainer.networks.lte_table(actor_params)
