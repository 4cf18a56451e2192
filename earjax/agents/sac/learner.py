"""One multi-task SAC gradient step on a task-balanced batch (Algorithm 1, inner loop).

``SACState`` holds the actor, the twin critics, their Polyak targets, the temperature
and the three Adam states.  ``make_update`` returns the pure update; every gradient is
clipped per network as the release does (``clip_grad_norm_`` 10 on the state encoder,
task encoder, action decoder and each critic on its own), then the targets move by
``tau``.  Two orders (``sac.update_order``):

- ``alpha_first`` (the release, ``EARSAC.update``): the temperature is updated first and
  the new alpha enters both the critic target and the actor loss; the actor loss is
  taken against the critics before this step's critic update.
- ``critic_first`` (earjax's first order): critics, then the actor against the updated
  critics with the old alpha, then the temperature.

The step's pieces are public so that SAC-family learners (TSAC, PEARL) compose them
instead of copying them: ``update_keys`` (the key split), ``critic_gradients`` /
``actor_gradients`` / ``temperature_gradients`` (loss, clipped gradient, finite checks),
``apply_gradients`` (the optimizer step), ``polyak_update`` (the targets) and
``grads_finite`` (the metric).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import optax

from earjax.agents.sac.losses import SACLosses, initial_log_alpha
from earjax.networks import NUM_CRITICS

Params = Any
UPDATE_ORDERS = ("alpha_first", "critic_first")


@struct.dataclass
class SACState:
  actor_params: Params
  critic_params: Params
  target_critic_params: Params
  log_alpha: jax.Array
  actor_opt: optax.OptState
  critic_opt: optax.OptState
  alpha_opt: optax.OptState


def init(networks, optimizer: optax.GradientTransformation, key: jax.Array,
         num_tasks: int, per_task_alpha: bool) -> SACState:
  """Fresh parameters (alpha = 1) and optimizer states."""
  actor_key, critic_key = jax.random.split(key)
  return from_params(networks.actor_init(actor_key), networks.critic_init(critic_key),
                     initial_log_alpha(num_tasks if per_task_alpha else None), optimizer)


def from_params(actor_params: Params, critic_params: Params, log_alpha: jax.Array,
                optimizer: optax.GradientTransformation) -> SACState:
  """A learner starting from given parameters: targets = critics, fresh optimizer states."""
  return SACState(
      actor_params=actor_params, critic_params=critic_params,
      target_critic_params=critic_params, log_alpha=log_alpha,
      actor_opt=optimizer.init(actor_params), critic_opt=optimizer.init(critic_params),
      alpha_opt=optimizer.init(log_alpha))


def clip_per_network(grads: Params, max_norm: float, ensemble_axis: bool) -> Params:
  """Scales each network's gradient to global norm <= ``max_norm``.

  The networks are the top-level entries of ``grads`` (the EAR actor's state encoder,
  task encoder and action decoder); with ``ensemble_axis`` every member along the
  leading axis of size ``NUM_CRITICS`` (each twin critic) is clipped on its own.
  """
  def clip(tree):
    if ensemble_axis:
      sq = sum(jnp.sum(jnp.square(g).reshape(NUM_CRITICS, -1), 1)
               for g in jax.tree.leaves(tree))
      scale = jnp.minimum(1.0, max_norm / jnp.maximum(jnp.sqrt(sq), 1e-12))
      return jax.tree.map(lambda g: g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), tree)
    norm = optax.tree.norm(tree)
    return jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12)),
                        tree)
  return {name: clip(sub) for name, sub in grads.items()}


def finite_by_network(tree: Params, prefix: str) -> dict[str, jax.Array]:
  """``{"<prefix>/<network>": all finite}`` per top-level network of ``tree``; the twin
  critics (top-level ``ensemble``, members on the leading axis) as ``critic_<i>``."""
  out = {}
  for name, sub in tree.items():
    if name == "ensemble":
      ok = jnp.stack([jnp.isfinite(x).reshape(NUM_CRITICS, -1).all(1)
                      for x in jax.tree.leaves(sub)]).all(0)
      out.update({f"{prefix}/critic_{i}": ok[i] for i in range(NUM_CRITICS)})
    else:
      out[f"{prefix}/{name}"] = jnp.stack([jnp.isfinite(x).all()
                                           for x in jax.tree.leaves(sub)]).all()
  return out


def parameter_health(state: SACState) -> dict[str, jax.Array]:
  """Every network's parameters finite: ``actor/<network>``, ``critic/critic_<i>``."""
  return {**finite_by_network(state.actor_params, "actor"),
          **finite_by_network(state.critic_params, "critic")}


def update_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(critic_key, actor_key)``: the split of one SAC step's key (Algorithm 1, inner
  loop).  The critic target's next-action sample uses ``critic_key``; the actor loss and
  the temperature loss share ``actor_key`` (alpha is fitted to the policy sample the actor
  loss sees).  Learners that take a loss at SAC's critic key (PEARL's encoder) use it."""
  critic_key, actor_key = jax.random.split(key)
  return critic_key, actor_key


def apply_gradients(optimizer: optax.GradientTransformation, params: Params,
                    opt_state: optax.OptState,
                    grads: Params) -> tuple[Params, optax.OptState]:
  """``(params, opt_state)`` after one optimizer (Adam) step on ``grads``: the descent
  step of every network and of the temperature (Algorithm 1, inner loop)."""
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _clipped_gradients(loss_fn, params, args, max_grad_norm, prefix, ensemble_axis,
                       has_aux):
  value, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *args)
  grads = clip_per_network(grads, max_grad_norm, ensemble_axis)
  loss = value[0] if has_aux else value
  return value, grads, {f"{prefix}_loss": jnp.isfinite(loss),
                        **finite_by_network(grads, f"{prefix}_grad")}


def critic_gradients(loss_fn: Callable, params: Params, *args, max_grad_norm: float,
                     prefix: str = "critic", has_aux: bool = False):
  """``(loss, grads, finite)`` of the twin critics' loss (the Q-function step of
  Algorithm 1): ``loss_fn(params, *args)`` and its gradient, each twin critic (members
  on the leading axis) clipped on its own to norm ``max_grad_norm``, and the finite
  checks ``{"<prefix>_loss", "<prefix>_grad/critic_<i>"}``.  With ``has_aux`` the first
  item is ``(loss, aux)``."""
  return _clipped_gradients(loss_fn, params, args, max_grad_norm, prefix, True, has_aux)


def actor_gradients(loss_fn: Callable, params: Params, *args, max_grad_norm: float,
                    prefix: str = "actor", has_aux: bool = False):
  """``(loss, grads, finite)`` of a network without an ensemble axis (the policy step of
  Algorithm 1; also PEARL's context encoder): ``loss_fn(params, *args)`` and its gradient,
  each top-level network clipped to norm ``max_grad_norm``, and the finite checks
  ``{"<prefix>_loss", "<prefix>_grad/<network>"}``.  With ``has_aux`` the first item is
  ``(loss, aux)``."""
  return _clipped_gradients(loss_fn, params, args, max_grad_norm, prefix, False, has_aux)


def temperature_gradients(loss_fn: Callable, log_alpha: jax.Array, *args):
  """``(loss, grad, finite)`` of the temperature loss ``loss_fn(log_alpha, *args)`` (the
  alpha step of Algorithm 1; not clipped) with ``{"alpha_loss", "alpha_grad"}``."""
  loss, grad = jax.value_and_grad(loss_fn)(log_alpha, *args)
  return loss, grad, {"alpha_loss": jnp.isfinite(loss),
                      "alpha_grad": jnp.isfinite(grad).all()}


def polyak_update(params: Params, target_params: Params, tau: float) -> Params:
  """The target networks' Polyak step (Algorithm 1's last line):
  ``tau * params + (1 - tau) * target_params``."""
  return optax.incremental_update(params, target_params, tau)


def grads_finite(finite: dict[str, jax.Array]) -> jax.Array:
  """The ``grads_finite`` metric: 1.0 when every gradient check of ``finite`` (the keys
  containing "grad") holds, else 0.0."""
  return jnp.stack([v for k, v in finite.items() if "grad" in k]).all().astype(jnp.float32)


def make_update(losses: SACLosses, optimizer: optax.GradientTransformation, tau: float,
                max_grad_norm: float, order: str):
  """``update(state, batch, key) -> (state, metrics)``: one SAC step of every part."""
  if order not in UPDATE_ORDERS:
    raise ValueError(f"update order must be one of {', '.join(UPDATE_ORDERS)}, got {order!r}")

  apply = functools.partial(apply_gradients, optimizer)

  def alpha_step(state, batch, key):
    loss, grad, finite = temperature_gradients(losses.alpha_loss, state.log_alpha,
                                               state.actor_params, batch, key)
    log_alpha, alpha_opt = apply(state.log_alpha, state.alpha_opt, grad)
    return log_alpha, alpha_opt, loss, finite

  def critic_grads(state, log_alpha, batch, key):
    return critic_gradients(losses.critic_loss, state.critic_params, state.actor_params,
                            state.target_critic_params, log_alpha, batch, key,
                            max_grad_norm=max_grad_norm)

  def actor_grads(actor_params, critic_params, log_alpha, batch, key):
    return actor_gradients(losses.actor_loss, actor_params, critic_params, log_alpha,
                           batch, key, max_grad_norm=max_grad_norm)

  def update(state: SACState, batch, key):
    critic_key, actor_key = update_keys(key)
    if order == "alpha_first":
      log_alpha, alpha_opt, alpha_loss, alpha_ok = alpha_step(state, batch, actor_key)
      critic_loss, c_grads, critic_ok = critic_grads(state, log_alpha, batch, critic_key)
      actor_loss, a_grads, actor_ok = actor_grads(state.actor_params, state.critic_params,
                                                  log_alpha, batch, actor_key)
      critic_params, critic_opt = apply(state.critic_params, state.critic_opt, c_grads)
      actor_params, actor_opt = apply(state.actor_params, state.actor_opt, a_grads)
      finite = {**alpha_ok, **critic_ok, **actor_ok}
    else:
      critic_loss, c_grads, critic_ok = critic_grads(state, state.log_alpha, batch,
                                                     critic_key)
      critic_params, critic_opt = apply(state.critic_params, state.critic_opt, c_grads)
      actor_loss, a_grads, actor_ok = actor_grads(state.actor_params, critic_params,
                                                  state.log_alpha, batch, actor_key)
      actor_params, actor_opt = apply(state.actor_params, state.actor_opt, a_grads)
      log_alpha, alpha_opt, alpha_loss, alpha_ok = alpha_step(state, batch, actor_key)
      finite = {**critic_ok, **actor_ok, **alpha_ok}
    target_critic_params = polyak_update(critic_params, state.target_critic_params, tau)
    metrics = {"critic_loss": critic_loss, "actor_loss": actor_loss,
               "alpha_loss": alpha_loss, "alpha": jnp.mean(jnp.exp(log_alpha)),
               "grads_finite": grads_finite(finite), "finite": finite}
    return SACState(actor_params=actor_params, critic_params=critic_params,
                    target_critic_params=target_critic_params, log_alpha=log_alpha,
                    actor_opt=actor_opt, critic_opt=critic_opt,
                    alpha_opt=alpha_opt), metrics

  return update
