"""Multi-task SAC losses (EAR-SAC's Algorithm 1 and its baselines), brax-style.

``make_losses`` closes over the network apply functions and returns three pure losses;
the first argument of each is the one it is differentiated in, every other parameter
enters through ``stop_gradient``.  A batch is a flat dict of arrays (``replay.
flatten_batch``): ``obs`` [B, obs], ``action`` [B, act], ``reward`` [B], ``next_obs``,
``discount`` [B] (0 on termination) and ``task`` [B] int.

What follows the release (``EARSAC.update`` of piao-0429/EAR) and what is a switch:
- temperature: ``log_alpha`` is a scalar (the release: one alpha for all tasks) or a
  [num_tasks] vector (``sac.per_task_alpha``); alpha starts at 1, target entropy
  -action_size, loss -log_alpha * stop_gradient(log pi + target entropy);
- critics: each twin regresses the same target with its own MSE (the release's two
  ``MSELoss``es), so ``critic_loss`` = MSE(Q1) + MSE(Q2);
- actor: mean(alpha log pi - min Q) + ``policy_mean_reg`` mean(mean^2) +
  ``policy_std_reg`` mean(log_std^2).  The release's code defaults both weights to 1e-3;
  its training configs set both to 0 (``sac.policy_{mean,std}_reg``);
- LTE noise (Algorithm 1): the policy samples of the alpha and actor losses are drawn with
  a noise key, so an EAR actor perturbs its LTE there (whether it does is the actor's
  ``lte_noise_std``/``release_noise_bug``; baselines ignore the key).  The target action
  a' ~ pi(. | s', Z) of the critic loss gets noise only with ``target_lte_noise``
  (earjax's choice; the release drew a' with the clean LTE).
Passing one key to ``alpha_loss`` and ``actor_loss`` makes them share the policy sample,
as the release did.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from earjax.networks import sample_tanh_gaussian

Params = Any
Batch = dict[str, jax.Array]


class SACLosses(NamedTuple):
  """``alpha_loss(log_alpha, actor_params, batch, key)``,
  ``critic_loss(critic_params, actor_params, target_critic_params, log_alpha, batch, key)``,
  ``actor_loss(actor_params, critic_params, log_alpha, batch, key)``; all scalars."""
  alpha_loss: Callable[..., jax.Array]
  critic_loss: Callable[..., jax.Array]
  actor_loss: Callable[..., jax.Array]


def initial_log_alpha(num_tasks: Optional[int] = None) -> jax.Array:
  """log alpha = 0 (alpha = 1): a scalar, or one entry per task if ``num_tasks``."""
  return jnp.zeros(() if num_tasks is None else (num_tasks,))


def make_losses(actor_apply: Callable[..., tuple[jax.Array, jax.Array]],
                critic_apply: Callable[..., jax.Array], action_size: int, num_tasks: int, *,
                gamma: float, reward_scale: float, policy_mean_reg: float,
                policy_std_reg: float, target_lte_noise: bool,
                target_entropy: Optional[float] = None,
                task_features: Optional[Callable[[Batch], jax.Array]] = None) -> SACLosses:
  """The losses of multi-task SAC for ``actor_apply(params, obs, task_onehot, noise_key)``
  and ``critic_apply(params, obs, action, task_onehot) -> [2, B]``; ``target_entropy``
  defaults to -action_size.  ``task_features(batch) -> [B, f]`` is what the networks
  receive as the task (default: the one-hot of ``batch["task"]``; PEARL: the latent
  context ``batch["z"]``)."""
  target_entropy = -float(action_size) if target_entropy is None else target_entropy

  def task_onehot(batch: Batch) -> jax.Array:
    if task_features is not None:
      return task_features(batch)
    return jax.nn.one_hot(batch["task"], num_tasks)

  def sample_alpha(log_alpha: jax.Array, batch: Batch) -> jax.Array:
    """log alpha of each sample's task (a scalar log_alpha is shared by all tasks)."""
    return jnp.broadcast_to(log_alpha, (num_tasks,))[batch["task"]]

  def policy(actor_params, obs, onehot, key, lte_noise=True):
    """(action, log pi, mean, log_std) of a ~ pi(. | s, Z~) (Z without ``lte_noise``)."""
    action_key, noise_key = jax.random.split(key)
    mean, log_std = actor_apply(actor_params, obs, onehot,
                                noise_key if lte_noise else None)
    action, log_prob = sample_tanh_gaussian(mean, log_std, action_key)
    return action, log_prob, mean, log_std

  def alpha_loss(log_alpha, actor_params, batch, key):
    """-E[log alpha_task (log pi(a|s) + target entropy)], policy held fixed."""
    _, log_prob, _, _ = policy(jax.lax.stop_gradient(actor_params), batch["obs"],
                               task_onehot(batch), key)
    return -jnp.mean(sample_alpha(log_alpha, batch)
                     * jax.lax.stop_gradient(log_prob + target_entropy))

  def critic_loss(critic_params, actor_params, target_critic_params, log_alpha, batch,
                  key):
    """Sum over the twins of E[(Q_i(s, a) - y)^2], y = scale r + gamma d (min_i
    Q'_i(s', a') - alpha log pi(a'|s')), a' ~ pi(. | s'), y held fixed."""
    onehot = task_onehot(batch)
    next_action, next_log_prob, _, _ = policy(
        jax.lax.stop_gradient(actor_params), batch["next_obs"], onehot, key,
        lte_noise=target_lte_noise)
    next_q = critic_apply(jax.lax.stop_gradient(target_critic_params), batch["next_obs"],
                          next_action, onehot).min(axis=0)
    alpha = jnp.exp(jax.lax.stop_gradient(sample_alpha(log_alpha, batch)))
    target = jax.lax.stop_gradient(
        reward_scale * batch["reward"]
        + gamma * batch["discount"] * (next_q - alpha * next_log_prob))
    q = critic_apply(critic_params, batch["obs"], batch["action"], onehot)
    return jnp.sum(jnp.mean(jnp.square(q - target), axis=-1))

  def actor_loss(actor_params, critic_params, log_alpha, batch, key):
    """E[alpha log pi(a|s) - min_i Q_i(s, a)], a ~ pi(. | s, Z~), plus the mean and
    log-std regularisers; critics and alpha held fixed."""
    onehot = task_onehot(batch)
    action, log_prob, mean, log_std = policy(actor_params, batch["obs"], onehot, key)
    q = critic_apply(jax.lax.stop_gradient(critic_params), batch["obs"], action,
                     onehot).min(axis=0)
    alpha = jnp.exp(jax.lax.stop_gradient(sample_alpha(log_alpha, batch)))
    return (jnp.mean(alpha * log_prob - q)
            + policy_mean_reg * jnp.mean(jnp.square(mean))
            + policy_std_reg * jnp.mean(jnp.square(log_std)))

  return SACLosses(alpha_loss=alpha_loss, critic_loss=critic_loss, actor_loss=actor_loss)
