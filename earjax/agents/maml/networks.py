"""MAML's policy for continuous control (Finn et al. 2017, Sec. 5.3): a Gaussian MLP,
tanh hidden layers, a state-independent log-std (rllab's ``GaussianMLPPolicy``, as in
tristandeleu/pytorch-maml-rl's HalfCheetah-Vel config: hidden 64 x 64, tanh).

The sample is unbounded; ``acting.rollout`` clips it to the action space [-1, 1] for the
env and keeps the sample itself in the transitions, so log-probabilities are those of
the action the policy drew.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from earjax.agents.base import AgentSpec

Params = Any


class GaussianMLPPolicy(nn.Module):
  """pi(a | s) = N(mean(s), diag exp(log_std)^2)."""
  action_size: int
  hidden_sizes: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = obs
    for width in self.hidden_sizes:
      x = jnp.tanh(nn.Dense(width)(x))
    mean = nn.Dense(self.action_size)(x)
    log_std = self.param("log_std", nn.initializers.zeros, (self.action_size,))
    return mean, jnp.broadcast_to(log_std, mean.shape)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
  """log N(action; mean, exp(log_std)^2), summed over the action's dimensions."""
  z = (action - mean) * jnp.exp(-log_std)
  return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * jnp.log(2.0 * jnp.pi), -1)


@dataclasses.dataclass(frozen=True)
class MAMLNetworks:
  """``actor_apply(params, obs) -> (mean, log_std)``; ``actor_init(key)``."""
  actor_init: Callable[[jax.Array], Params]
  actor_apply: Callable[[Params, jax.Array], tuple[jax.Array, jax.Array]]

  def log_prob(self, params: Params, obs: jax.Array, action: jax.Array) -> jax.Array:
    return gaussian_log_prob(*self.actor_apply(params, obs), action)

  def sample(self, params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
    mean, log_std = self.actor_apply(params, obs)
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def make_networks(config, spec: AgentSpec) -> MAMLNetworks:
  """The policy at ``maml.hidden`` (a MAML run has no critic and no task input)."""
  policy = GaussianMLPPolicy(spec.action_size, tuple(config.maml.hidden))
  return MAMLNetworks(
      actor_init=lambda key: policy.init(key, jnp.zeros((1, spec.observation_size)))[
          "params"],
      actor_apply=lambda params, obs: policy.apply({"params": params}, obs))
