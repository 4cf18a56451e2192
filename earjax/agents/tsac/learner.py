"""TSAC's learner state and update step (``earjax.agents.tsac``, T3-T7).

``TSACState`` holds the SP and ACP actors, the dense and sparse twin critics with their
Polyak targets, two temperatures, the Lagrange multiplier and the Adam states.  One step:
both critics, the SP, the ACP (against the updated critics), both temperatures, the dual
step on lambda, the targets.  The step is composed of the SAC learner's pieces
(``sac.learner``: clipped gradients with finite checks, the optimizer step, Polyak).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import optax

from earjax.agents.base import AgentSpec
from earjax.agents.sac import learner as sac
from earjax.agents.tsac.losses import budget, dual_step, make_losses

Params = Any


@dataclasses.dataclass(frozen=True)
class TSACNetworks:
  """``sp_apply(params, obs, onehot) -> (mean, log_std)``, ``acp_apply(params, obs, onehot,
  a_sp) -> (mean, log_std)``, ``critic_apply(params, obs, action, onehot) -> [2, B]`` (the
  dense and the sparse critics share the architecture); ``*_init(key)`` give params."""
  sp_init: Callable
  sp_apply: Callable
  acp_init: Callable
  acp_apply: Callable
  critic_init: Callable
  critic_apply: Callable
  correction_scale: float


@struct.dataclass
class TSACState:
  sp_params: Params
  acp_params: Params
  dense_params: Params
  sparse_params: Params
  target_dense_params: Params
  target_sparse_params: Params
  log_alphas: jax.Array    # [2]: SP, ACP
  lagrange: jax.Array      # lambda >= 0
  sp_opt: optax.OptState
  acp_opt: optax.OptState
  dense_opt: optax.OptState
  sparse_opt: optax.OptState
  alpha_opt: optax.OptState


def init(networks: TSACNetworks, optimizer: optax.GradientTransformation, key: jax.Array,
         lagrange_init: float) -> TSACState:
  sp_key, acp_key, dense_key, sparse_key = jax.random.split(key, 4)
  sp, acp = networks.sp_init(sp_key), networks.acp_init(acp_key)
  dense, sparse = networks.critic_init(dense_key), networks.critic_init(sparse_key)
  log_alphas = jnp.zeros(2)
  return TSACState(
      sp_params=sp, acp_params=acp, dense_params=dense, sparse_params=sparse,
      target_dense_params=dense, target_sparse_params=sparse, log_alphas=log_alphas,
      lagrange=jnp.asarray(lagrange_init, jnp.float32),
      sp_opt=optimizer.init(sp), acp_opt=optimizer.init(acp),
      dense_opt=optimizer.init(dense), sparse_opt=optimizer.init(sparse),
      alpha_opt=optimizer.init(log_alphas))


def policy_params(state: TSACState) -> dict[str, Params]:
  return {"sp": state.sp_params, "acp": state.acp_params}


def parameter_health(state: TSACState) -> dict[str, jax.Array]:
  return {**sac.finite_by_network(state.sp_params, "sp"),
          **sac.finite_by_network(state.acp_params, "acp"),
          **sac.finite_by_network(state.dense_params, "dense"),
          **sac.finite_by_network(state.sparse_params, "sparse")}


def make_update(networks: TSACNetworks, optimizer: optax.GradientTransformation,
                spec: AgentSpec, *, gamma: float,
                tau: float, reward_scale: float, max_grad_norm: float,
                budget_reference: str, budget_fraction: float, lagrange_lr: float,
                lagrange_max: float):
  """``update(state, batch, key) -> (state, metrics)``: one TSAC step."""
  losses = make_losses(networks, spec.num_tasks, spec.action_size, gamma=gamma,
                       reward_scale=reward_scale)

  def update(state: TSACState, batch, key):
    dense_key, sparse_key, sp_key, acp_key = jax.random.split(key, 4)
    policy = policy_params(state)
    new, finite, metrics = {}, {}, {}
    for which, k in (("dense", dense_key), ("sparse", sparse_key)):   # both critics
      params = getattr(state, f"{which}_params")
      target = getattr(state, f"target_{which}_params")
      metrics[f"{which}_loss"], grads, ok = sac.critic_gradients(
          losses.critic_loss, params, target, policy, state.log_alphas, batch, k, which,
          max_grad_norm=max_grad_norm, prefix=which)
      params, new[f"{which}_opt"] = sac.apply_gradients(
          optimizer, params, getattr(state, f"{which}_opt"), grads)
      new[f"{which}_params"] = params
      new[f"target_{which}_params"] = sac.polyak_update(params, target, tau)
      finite.update(ok)
    dense_params, sparse_params = new["dense_params"], new["sparse_params"]

    (sp_loss, sp_log_prob), sp_grads, sp_ok = sac.actor_gradients(
        losses.sp_loss, state.sp_params, policy, dense_params, state.log_alphas[0], batch,
        sp_key, max_grad_norm=max_grad_norm, prefix="sp", has_aux=True)
    (acp_loss, (sparse_return, sp_sparse_return, acp_log_prob)), acp_grads, acp_ok = (
        sac.actor_gradients(losses.acp_loss, state.acp_params, policy, dense_params,
                            sparse_params, state.log_alphas[1], state.lagrange, batch,
                            acp_key, max_grad_norm=max_grad_norm, prefix="acp",
                            has_aux=True))
    new["sp_params"], new["sp_opt"] = sac.apply_gradients(
        optimizer, state.sp_params, state.sp_opt, sp_grads)
    new["acp_params"], new["acp_opt"] = sac.apply_gradients(
        optimizer, state.acp_params, state.acp_opt, acp_grads)

    alpha_loss, alpha_grads, alpha_ok = sac.temperature_gradients(
        lambda la: losses.alpha_loss(la[0], sp_log_prob) + losses.alpha_loss(
            la[1], acp_log_prob), state.log_alphas)
    log_alphas, new["alpha_opt"] = sac.apply_gradients(
        optimizer, state.log_alphas, state.alpha_opt, alpha_grads)
    b = budget(budget_reference, budget_fraction, gamma, sp_sparse_return)
    lagrange = dual_step(state.lagrange, sparse_return, b, lagrange_lr, lagrange_max)

    finite.update({**sp_ok, **acp_ok, **alpha_ok})
    metrics.update(sp_loss=sp_loss, acp_loss=acp_loss, alpha_loss=alpha_loss,
                   alpha_sp=jnp.exp(log_alphas[0]), alpha_acp=jnp.exp(log_alphas[1]),
                   lagrange=lagrange, sparse_return=sparse_return,
                   sp_sparse_return=sp_sparse_return, budget=b,
                   grads_finite=sac.grads_finite(finite), finite=finite)
    return TSACState(**new, log_alphas=log_alphas, lagrange=lagrange), metrics

  return update
