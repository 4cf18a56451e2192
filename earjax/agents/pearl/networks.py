"""PEARL's networks (Rakelly et al. 2019, "Efficient Off-Policy Meta-Reinforcement
Learning via Probabilistic Context Variables", Sec. 4.1-4.2).

- The context encoder: every transition c_n = (s, a, r) (and s' with
  ``pearl.context_next_obs``) gives a Gaussian factor Psi(z | c_n) = N(mu_n, sigma_n^2)
  (an MLP with a softplus variance, floored at 1e-7 as oyster does);
- the posterior q(z | c_1..N) is proportional to the product of the factors (Eq. 3's
  permutation-invariant encoder): precision 1 / sigma^2 = sum_n 1 / sigma_n^2, mean
  sigma^2 sum_n mu_n / sigma_n^2 (``product_of_gaussians``); with no context it is the
  prior N(0, I);
- the KL term of the information bottleneck (Eq. 4): KL(q(z | c) || N(0, I));
- the actor pi(a | s, z) and the twin critics Q(s, a, z): the SAC agents' modules with
  z in place of the one-hot task (``ohe_sac.OHEActor``, ``networks.TwinCritic``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from earjax.agents.base import AgentSpec
from earjax.agents.ohe_sac import OHEActor
from earjax.agents.sac import network_functions
from earjax.networks import MLP, TwinCritic

Params = Any
MIN_VARIANCE = 1e-7


class ContextEncoder(nn.Module):
  """Psi(z | c_n): a Gaussian factor (mean, variance) [..., latent_dim] per transition."""
  hidden_sizes: Sequence[int]
  latent_dim: int

  @nn.compact
  def __call__(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean, raw = jnp.split(MLP(self.hidden_sizes, 2 * self.latent_dim)(features), 2, -1)
    return mean, jnp.maximum(jax.nn.softplus(raw), MIN_VARIANCE)


def context_features(context: dict[str, jax.Array], next_obs: bool) -> jax.Array:
  """c_n = concat(s, a, r[, s']) of replay fields [..., N, ...] -> [..., N, f]."""
  parts = [context["obs"], context["action"], context["reward"][..., None]]
  if next_obs:
    parts.append(context["next_obs"])
  return jnp.concatenate(parts, -1)


def product_of_gaussians(means: jax.Array, variances: jax.Array,
                         mask: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
  """The normalised product of the factors N(means[..., n, :], variances[..., n, :]) over
  n (the factors where ``mask`` [..., N] is 1): (mean, variance) [..., d].  No factor
  at all gives the prior N(0, I)."""
  if mask is None:
    mask = jnp.ones(means.shape[:-1])
  precision_terms = mask[..., None] / variances
  precision = precision_terms.sum(-2)
  empty = precision <= 0
  variance = 1.0 / jnp.where(empty, 1.0, precision)
  mean = variance * (precision_terms * means).sum(-2)
  return jnp.where(empty, 0.0, mean), jnp.where(empty, 1.0, variance)


def kl_to_prior(mean: jax.Array, variance: jax.Array) -> jax.Array:
  """KL(N(mean, diag variance) || N(0, I)) over the last axis."""
  return 0.5 * jnp.sum(variance + jnp.square(mean) - 1.0 - jnp.log(variance), -1)


@dataclasses.dataclass(frozen=True)
class PEARLNetworks:
  """``actor_apply(params, obs, z, noise_key=None) -> (mean, log_std)``,
  ``critic_apply(params, obs, action, z) -> [2, B]``, ``encoder_apply(params, features)
  -> (mean, variance)`` per transition; ``posterior(params, context, mask=None)`` is
  q(z | c) of replay fields [..., N, ...] -> (mean, variance) [..., d]."""
  actor_init: Callable[[jax.Array], Params]
  actor_apply: Callable[..., tuple[jax.Array, jax.Array]]
  critic_init: Callable[[jax.Array], Params]
  critic_apply: Callable[..., jax.Array]
  encoder_init: Callable[[jax.Array], Params]
  encoder_apply: Callable[..., tuple[jax.Array, jax.Array]]
  latent_dim: int
  context_next_obs: bool

  def posterior(self, encoder_params: Params, context: dict[str, jax.Array],
                mask: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    means, variances = self.encoder_apply(
        encoder_params, context_features(context, self.context_next_obs))
    return product_of_gaussians(means, variances, mask)


def make_networks(config, spec: AgentSpec) -> PEARLNetworks:
  """The actor and critics on (obs, z) at ``network.{actor,critic}_hidden``, the encoder
  at ``pearl.encoder_hidden``."""
  p, n = config.pearl, config.network
  latent_spec = AgentSpec(spec.observation_size, spec.action_size, int(p.latent_dim))
  sac = network_functions(OHEActor(spec.action_size, tuple(n.actor_hidden)),
                          TwinCritic(tuple(n.critic_hidden)), latent_spec)
  encoder = ContextEncoder(tuple(p.encoder_hidden), int(p.latent_dim))
  feature_size = (2 * spec.observation_size if p.context_next_obs
                  else spec.observation_size) + spec.action_size + 1
  return PEARLNetworks(
      actor_init=sac["actor_init"], actor_apply=sac["actor_apply"],
      critic_init=sac["critic_init"], critic_apply=sac["critic_apply"],
      encoder_init=lambda key: encoder.init(key, jnp.zeros((1, feature_size)))["params"],
      encoder_apply=lambda params, features: encoder.apply({"params": params}, features),
      latent_dim=int(p.latent_dim), context_next_obs=bool(p.context_next_obs))
