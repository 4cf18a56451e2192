"""TSAC's learner state and update step (``earjax.agents.tsac``, T3-T7).

``TSACState`` holds the SP and ACP actors, the dense and sparse twin critics with their
Polyak targets, two temperatures, the Lagrange multiplier and the Adam states.  One step:
both critics, the SP, the ACP (against the updated critics), both temperatures, the dual
step on lambda, the targets; every gradient clipped per network (as the SAC agents).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import optax

from earjax.agents.base import AgentSpec
from earjax.agents.sac.learner import clip_per_network, finite_by_network
from earjax.agents.tsac.losses import dual_step, make_losses

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
  return {**finite_by_network(state.sp_params, "sp"),
          **finite_by_network(state.acp_params, "acp"),
          **finite_by_network(state.dense_params, "dense"),
          **finite_by_network(state.sparse_params, "sparse")}


def make_update(networks: TSACNetworks, optimizer: optax.GradientTransformation,
                spec: AgentSpec, *, gamma: float,
                tau: float, reward_scale: float, max_grad_norm: float, budget: float,
                lagrange_lr: float):
  """``update(state, batch, key) -> (state, metrics)``: one TSAC step."""
  losses = make_losses(networks, spec.num_tasks, spec.action_size, gamma=gamma,
                       reward_scale=reward_scale)

  def apply(params, opt_state, grads):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def update(state: TSACState, batch, key):
    dense_key, sparse_key, sp_key, acp_key = jax.random.split(key, 4)
    policy = policy_params(state)
    finite = {}
    critics = {}
    for which, params, target, opt, k in (
        ("dense", state.dense_params, state.target_dense_params, state.dense_opt,
         dense_key),
        ("sparse", state.sparse_params, state.target_sparse_params, state.sparse_opt,
         sparse_key)):
      loss, grads = jax.value_and_grad(losses.critic_loss)(
          params, target, policy, state.log_alphas, batch, k, which)
      grads = clip_per_network(grads, max_grad_norm, ensemble_axis=True)
      finite.update({f"{which}_loss": jnp.isfinite(loss),
                     **finite_by_network(grads, f"{which}_grad")})
      critics[which] = (loss, *apply(params, opt, grads))
    dense_params, sparse_params = critics["dense"][1], critics["sparse"][1]

    (sp_loss, sp_log_prob), sp_grads = jax.value_and_grad(losses.sp_loss, has_aux=True)(
        state.sp_params, policy, dense_params, state.log_alphas[0], batch, sp_key)
    sp_grads = clip_per_network(sp_grads, max_grad_norm, ensemble_axis=False)
    finite.update({"sp_loss": jnp.isfinite(sp_loss),
                   **finite_by_network(sp_grads, "sp_grad")})
    (acp_loss, (sparse_return, acp_log_prob)), acp_grads = jax.value_and_grad(
        losses.acp_loss, has_aux=True)(state.acp_params, policy, dense_params,
                                       sparse_params, state.log_alphas[1], state.lagrange,
                                       batch, acp_key)
    acp_grads = clip_per_network(acp_grads, max_grad_norm, ensemble_axis=False)
    finite.update({"acp_loss": jnp.isfinite(acp_loss),
                   **finite_by_network(acp_grads, "acp_grad")})
    sp_params, sp_opt = apply(state.sp_params, state.sp_opt, sp_grads)
    acp_params, acp_opt = apply(state.acp_params, state.acp_opt, acp_grads)

    alpha_loss, alpha_grads = jax.value_and_grad(
        lambda la: losses.alpha_loss(la[0], sp_log_prob) + losses.alpha_loss(
            la[1], acp_log_prob))(state.log_alphas)
    finite.update({"alpha_loss": jnp.isfinite(alpha_loss),
                   "alpha_grad": jnp.isfinite(alpha_grads).all()})
    log_alphas, alpha_opt = apply(state.log_alphas, state.alpha_opt, alpha_grads)
    lagrange = dual_step(state.lagrange, sparse_return, budget, lagrange_lr)

    grads_finite = jnp.stack([v for k, v in finite.items() if "grad" in k]).all()
    metrics = {"dense_loss": critics["dense"][0], "sparse_loss": critics["sparse"][0],
               "sp_loss": sp_loss, "acp_loss": acp_loss, "alpha_loss": alpha_loss,
               "alpha_sp": jnp.exp(log_alphas[0]), "alpha_acp": jnp.exp(log_alphas[1]),
               "lagrange": lagrange, "sparse_return": sparse_return,
               "grads_finite": grads_finite.astype(jnp.float32), "finite": finite}
    return TSACState(
        sp_params=sp_params, acp_params=acp_params, dense_params=dense_params,
        sparse_params=sparse_params,
        target_dense_params=optax.incremental_update(dense_params,
                                                     state.target_dense_params, tau),
        target_sparse_params=optax.incremental_update(sparse_params,
                                                      state.target_sparse_params, tau),
        log_alphas=log_alphas, lagrange=lagrange, sp_opt=sp_opt, acp_opt=acp_opt,
        dense_opt=critics["dense"][2], sparse_opt=critics["sparse"][2],
        alpha_opt=alpha_opt), metrics

  return update
