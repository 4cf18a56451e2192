"""The policy space Θ the compression works on: small deterministic MLP policies
(arXiv 2509.22566 compresses the parameters of such policies), as flat vectors.

A policy is θ ∈ R^D, the ravelled parameters of ``PolicyMLP`` (tanh hidden layers, tanh
actions in the env's box [-1, 1]); ``PolicySpace`` converts between θ and the network.
The widths are earjax's choice (the paper's are not recoverable; ``METHOD_NOTES.md``).
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


class PolicyMLP(nn.Module):
  """obs -> tanh(Dense) x len(hidden) -> tanh(Dense(action_size))."""
  hidden: Sequence[int]
  action_size: int

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    x = obs
    for width in self.hidden:
      x = nn.tanh(nn.Dense(width)(x))
    return nn.tanh(nn.Dense(self.action_size)(x))


class PolicySpace:
  """Θ for ``observation_size -> hidden -> action_size``: θ [D] <-> the MLP's parameters."""

  def __init__(self, observation_size: int, action_size: int, hidden: Sequence[int]):
    if any(int(w) < 1 for w in hidden):
      raise ValueError(f"policy hidden widths must be positive, got {tuple(hidden)}")
    self.observation_size = int(observation_size)
    self.action_size = int(action_size)
    self.hidden = tuple(int(w) for w in hidden)
    self.module = PolicyMLP(self.hidden, self.action_size)
    example = self.module.init(jax.random.PRNGKey(0), jnp.zeros(self.observation_size))
    flat, self._unravel = ravel_pytree(example)
    self.num_params = int(flat.size)

  def init(self, key: jax.Array) -> jax.Array:
    """A freshly initialised θ [D] (flax's default initialisers)."""
    return ravel_pytree(self.module.init(key, jnp.zeros(self.observation_size)))[0]

  def params(self, theta: jax.Array):
    """θ [D] as the MLP's parameter tree."""
    return self._unravel(theta)

  def act(self, theta: jax.Array, obs: jax.Array) -> jax.Array:
    """The deterministic action of policy θ on ``obs`` [..., observation_size]."""
    return self.module.apply(self._unravel(theta), obs)

  def actions_on(self, thetas: jax.Array, states: jax.Array) -> jax.Array:
    """Every policy's actions on every state: [N, D] x [K, obs] -> [N, K, action_size]."""
    return jax.vmap(lambda theta: self.act(theta, states))(thetas)

  def act_fn(self):
    """``acting.ActFn`` of a policy θ (the policy input of ``acting.rollout``)."""
    return lambda theta, obs, key, stochastic: self.act(theta, obs)
