"""MAML's objectives for policy-gradient RL (Finn et al. 2017, Sec. 3.2, Eq. 4 and
Algorithm 3), with the baseline and advantages of its locomotion experiments (rllab's
``LinearFeatureBaseline``, GAE; tristandeleu/pytorch-maml-rl).

A task's episodes are a dict of ``obs`` [E, T, o], ``action`` [E, T, a], ``reward``
[E, T] and ``alive`` [E, T] (1 while the episode runs, 0 after it ended); every mean is
over the alive steps.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from earjax.agents.maml.networks import MAMLNetworks

Params = Any
Episodes = dict[str, jax.Array]


def discounted_returns(reward: jax.Array, alive: jax.Array, gamma: float) -> jax.Array:
  """G_t = sum_k gamma^k r_{t+k} over the alive steps, per episode ([E, T])."""
  def step(later, x):
    r, m = x
    g = m * (r + gamma * later)
    return g, g
  _, out = jax.lax.scan(step, jnp.zeros(reward.shape[0]),
                        (reward.T[::-1], alive.T[::-1]))
  return out[::-1].T


def baseline_features(obs: jax.Array) -> jax.Array:
  """rllab's ``LinearFeatureBaseline`` features of [E, T, o]: clipped s, s^2, t/100 and its
  square and cube, 1."""
  s = jnp.clip(obs, -10.0, 10.0)
  t = jnp.broadcast_to(jnp.arange(obs.shape[1])[None, :, None] / 100.0,
                       obs.shape[:2] + (1,))
  return jnp.concatenate([s, jnp.square(s), t, t ** 2, t ** 3, jnp.ones_like(t)], -1)


def linear_baseline(obs: jax.Array, returns: jax.Array, alive: jax.Array,
                    ridge: float = 1e-5, tries: int = 5) -> jax.Array:
  """V(s_t): the ridge regression of the returns on ``baseline_features``, fitted on
  these episodes' alive steps ([E, T]).  As rllab's linear baseline (the MAML release's):
  where the solve with ``ridge`` is not finite, the first finite one of ``ridge`` x 10,
  x 100, ... (``tries`` in all; all solved at once, no host round trip)."""
  x = baseline_features(obs) * alive[..., None]
  x = x.reshape(-1, x.shape[-1])
  y = (returns * alive).reshape(-1)
  ridges = ridge * 10.0 ** jnp.arange(tries)
  eye = jnp.eye(x.shape[-1])
  ws = jax.vmap(lambda r: jnp.linalg.solve(x.T @ x + r * eye, x.T @ y))(ridges)
  return (baseline_features(obs) @ first_finite(ws)) * alive


def first_finite(rows: jax.Array) -> jax.Array:
  """The first row of ``rows`` [n, k] with every entry finite; the last row if none is."""
  finite = jnp.isfinite(rows).all(-1)
  return jnp.where(finite.any(), rows[jnp.argmax(finite)], rows[-1])


def advantages(episodes: Episodes, gamma: float, gae_lambda: float) -> jax.Array:
  """GAE(gamma, lambda) with the linear baseline, normalised over the alive steps to mean
  0 and std 1 (lambda = 1: returns minus baseline)."""
  reward, alive = episodes["reward"], episodes["alive"]
  values = linear_baseline(episodes["obs"], discounted_returns(reward, alive, gamma), alive)
  next_values = jnp.concatenate([values[:, 1:], jnp.zeros_like(values[:, :1])], 1)
  delta = alive * (reward + gamma * next_values - values)
  adv = discounted_returns(delta, alive, gamma * gae_lambda)
  n = alive.sum()
  mean = (adv * alive).sum() / n
  std = jnp.sqrt((jnp.square(adv - mean) * alive).sum() / n)
  return jax.lax.stop_gradient(alive * (adv - mean) / (std + 1e-8))


def mean_alive(x: jax.Array, alive: jax.Array) -> jax.Array:
  """The mean of ``x`` over the steps alive (``alive`` 1 or 0, same shape)."""
  return (x * alive).sum() / alive.sum()


def reinforce_loss(networks: MAMLNetworks, params: Params, episodes: Episodes,
                   adv: jax.Array) -> jax.Array:
  """The inner loss -E[log pi(a | s) A] (REINFORCE with the baseline)."""
  log_prob = networks.log_prob(params, episodes["obs"], episodes["action"])
  return -mean_alive(log_prob * adv, episodes["alive"])


def surrogate_loss(networks: MAMLNetworks, params: Params, episodes: Episodes,
                   adv: jax.Array, old_log_prob: jax.Array) -> jax.Array:
  """The outer loss -E[pi(a | s) / pi_old(a | s) A] on episodes drawn by pi_old: its
  gradient at pi = pi_old is the policy gradient (the ratio is 1 there)."""
  ratio = jnp.exp(networks.log_prob(params, episodes["obs"], episodes["action"])
                  - old_log_prob)
  return -mean_alive(ratio * adv, episodes["alive"])


def inner_step(networks: MAMLNetworks, params: Params, episodes: Episodes,
               adv: jax.Array, inner_lr: float, first_order: bool) -> Params:
  """theta' = theta - alpha grad L_inner(theta) (Algorithm 3 line 7); ``first_order``
  holds the gradient fixed, so d theta' / d theta = I (first-order MAML)."""
  grads = jax.grad(lambda p: reinforce_loss(networks, p, episodes, adv))(params)
  if first_order:
    grads = jax.lax.stop_gradient(grads)
  return jax.tree.map(lambda p, g: p - inner_lr * g, params, grads)
