"""MAML's outer step as its references take it: TRPO (Schulman et al. 2015, Appendix C;
tristandeleu/pytorch-maml-rl's ``MAMLTRPO.step``: max KL 0.01, 10 conjugate-gradient
iterations, damping 1e-5, 15 line-search steps of ratio 0.8).

The step direction solves F x = g, F the Hessian of the mean KL between the adapted
policies of the new and the current initialisation (the Fisher matrix at the current
one), g the meta-gradient, by conjugate gradient on Hessian-vector products
(``jax.scipy.sparse.linalg.cg``); it is scaled so that its quadratic KL is ``max_kl``,
then shortened by ``backtrack_ratio`` until the meta-loss improves and the KL is within
``max_kl``.  Every candidate of the line search is evaluated (``lax.map``), so the step
does a fixed amount of work inside the jit; none accepted leaves the parameters.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp

Params = Any


@dataclasses.dataclass(frozen=True)
class TRPOConfig:
  max_kl: float = 0.01
  cg_iters: int = 10
  cg_damping: float = 1e-5
  ls_steps: int = 15
  backtrack_ratio: float = 0.8


def gaussian_kl(mean_p: jax.Array, log_std_p: jax.Array, mean_q: jax.Array,
                log_std_q: jax.Array) -> jax.Array:
  """KL(N(mean_p, e^{2 log_std_p}) || N(mean_q, e^{2 log_std_q})), summed over the last
  axis (diagonal Gaussians)."""
  var_p, var_q = jnp.exp(2.0 * log_std_p), jnp.exp(2.0 * log_std_q)
  return jnp.sum(log_std_q - log_std_p + (var_p + jnp.square(mean_p - mean_q))
                 / (2.0 * var_q) - 0.5, -1)


def step(loss: Callable[[Params], jax.Array], kl: Callable[[Params], jax.Array],
         params: Params, config: TRPOConfig) -> tuple[Params, dict[str, jax.Array]]:
  """One TRPO step on ``loss`` under ``kl(params) <= max_kl`` (``kl`` is 0 with zero
  gradient at ``params``): (new parameters, ``loss``, ``kl`` of the step taken,
  ``accepted``, ``step_fraction``, ``grad_finite``)."""
  flat, unravel = ravel_pytree(params)
  flat_loss = lambda x: loss(unravel(x))
  flat_kl = lambda x: kl(unravel(x))
  loss_before, grad = jax.value_and_grad(flat_loss)(flat)

  def fisher_vector(v):
    return jax.jvp(jax.grad(flat_kl), (flat,), (v,))[1] + config.cg_damping * v

  direction, _ = jax.scipy.sparse.linalg.cg(fisher_vector, grad, tol=1e-10,
                                            maxiter=config.cg_iters)
  quadratic_kl = 0.5 * direction @ fisher_vector(direction)
  full_step = direction * jnp.sqrt(config.max_kl / jnp.maximum(quadratic_kl, 1e-12))
  fractions = config.backtrack_ratio ** jnp.arange(config.ls_steps, dtype=flat.dtype)
  losses, kls = jax.lax.map(
      lambda f: (flat_loss(flat - f * full_step), flat_kl(flat - f * full_step)), fractions)
  ok = (losses < loss_before) & (kls <= config.max_kl) & jnp.isfinite(losses)
  first = jnp.argmax(ok)
  accepted = ok.any() & jnp.isfinite(full_step).all()
  fraction = jnp.where(accepted, fractions[first], 0.0)
  new = unravel(flat - fraction * jnp.where(accepted, full_step, 0.0))
  return new, {"loss": loss_before, "kl": jnp.where(accepted, kls[first], 0.0),
               "accepted": accepted.astype(jnp.float32), "step_fraction": fraction,
               "grad_finite": jnp.isfinite(grad).all()}
