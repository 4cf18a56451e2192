"""TSAC's final action (T1-T2 of ``earjax.agents.tsac``) and losses (T3-T7), brax-style:
``make_losses`` closes over the networks and returns pure losses whose first argument is
the one differentiated; everything else enters through ``stop_gradient``.  A batch has
the replay's fields plus ``success`` (the sparse reward r_s) and ``task``."""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from earjax.networks import deterministic_action, sample_tanh_gaussian

Batch = dict[str, jax.Array]
sg = jax.lax.stop_gradient


class TSACLosses(NamedTuple):
  """``critic_loss(critic_params, target_params, policy, log_alphas, batch, key, which)``
  (which: "dense" or "sparse"); ``sp_loss(sp_params, policy, dense_params, log_alpha_sp,
  batch, key) -> (loss, log pi_sp)``; ``acp_loss(acp_params, policy, dense_params,
  sparse_params, log_alpha_acp, lagrange, batch, key) -> (loss, (mean min Q_s(s, a),
  mean min Q_s(s, a_sp), log pi_acp))``; ``alpha_loss(log_alpha, log_prob)``."""
  critic_loss: Callable[..., jax.Array]
  sp_loss: Callable[..., jax.Array]
  acp_loss: Callable[..., tuple[jax.Array, jax.Array]]
  alpha_loss: Callable[..., jax.Array]


def final_action(networks, policy_params, obs, onehot,
                 key: Optional[jax.Array], deterministic: bool):
  """(a, a_sp, log pi_sp(a_sp), log pi_acp(d)) of T1-T2; deterministic: tanh of the means
  (log-probs 0)."""
  mean, log_std = networks.sp_apply(policy_params["sp"], obs, onehot)
  if deterministic:
    a_sp, sp_log_prob = deterministic_action(mean), jnp.zeros(obs.shape[:1])
  else:
    sp_key, key = jax.random.split(key)
    a_sp, sp_log_prob = sample_tanh_gaussian(mean, log_std, sp_key)
  mean, log_std = networks.acp_apply(policy_params["acp"], obs, onehot, a_sp)
  if deterministic:
    correction, acp_log_prob = deterministic_action(mean), jnp.zeros(obs.shape[:1])
  else:
    correction, acp_log_prob = sample_tanh_gaussian(mean, log_std, key)
  action = jnp.clip(a_sp + networks.correction_scale * correction, -1.0, 1.0)
  return action, a_sp, sp_log_prob, acp_log_prob


def make_losses(networks, num_tasks: int, action_size: int, *, gamma: float,
                reward_scale: float) -> TSACLosses:
  target_entropy = -float(action_size)

  def onehot(batch):
    return jax.nn.one_hot(batch["task"], num_tasks)

  def critic_loss(critic_params, target_params, policy, log_alphas, batch, key,
                  which: str):
    """T3 (``which="dense"``: reward, SP's entropy) or T4 (``"sparse"``: success, ACP's
    entropy): the sum over the twins of E[(Q_i(s, a) - y)^2], y held fixed."""
    k = onehot(batch)
    next_action, _, sp_log_prob, acp_log_prob = final_action(
        networks, sg(policy), batch["next_obs"], k, key, False)
    if which == "dense":
      reward, alpha, log_prob = reward_scale * batch["reward"], log_alphas[0], sp_log_prob
    else:
      reward, alpha, log_prob = batch["success"], log_alphas[1], acp_log_prob
    next_q = networks.critic_apply(sg(target_params), batch["next_obs"], next_action,
                                   k).min(axis=0)
    target = sg(reward + gamma * batch["discount"]
                * (next_q - jnp.exp(sg(alpha)) * log_prob))
    q = networks.critic_apply(critic_params, batch["obs"], batch["action"], k)
    return jnp.sum(jnp.mean(jnp.square(q - target), axis=-1))

  def sp_loss(sp_params, policy, dense_params, log_alpha_sp, batch, key):
    """T5: E[alpha_sp log pi_sp(a_sp | s) - min Q_d(s, a_sp)], the SP alone."""
    k = onehot(batch)
    mean, log_std = networks.sp_apply(sp_params, batch["obs"], k)
    a_sp, log_prob = sample_tanh_gaussian(mean, log_std, key)
    q = networks.critic_apply(sg(dense_params), batch["obs"], a_sp, k).min(axis=0)
    return jnp.mean(jnp.exp(sg(log_alpha_sp)) * log_prob - q), log_prob

  def acp_loss(acp_params, policy, dense_params, sparse_params, log_alpha_acp, lagrange,
               batch, key):
    """T6: E[alpha_acp log pi_acp(d | .) - (min Q_d(s, a) + lambda min Q_s(s, a)) /
    (1 + lambda)] over the final action a, the SP held fixed; also E[min Q_s(s, a)] (T7's
    estimate of the sparse return), E[min Q_s(s, a_sp)] (the SP's alone, uncorrected:
    T7's budget reference "shared_policy") and log pi_acp."""
    k = onehot(batch)
    params = {"sp": sg(policy["sp"]), "acp": acp_params}
    action, a_sp, _, log_prob = final_action(networks, params, batch["obs"], k, key, False)
    q_d = networks.critic_apply(sg(dense_params), batch["obs"], action, k).min(axis=0)
    q_s = networks.critic_apply(sg(sparse_params), batch["obs"], action, k).min(axis=0)
    q_s_sp = networks.critic_apply(sg(sparse_params), batch["obs"], sg(a_sp), k).min(axis=0)
    lam = sg(lagrange)
    loss = jnp.mean(jnp.exp(sg(log_alpha_acp)) * log_prob - (q_d + lam * q_s) / (1.0 + lam))
    return loss, (sg(jnp.mean(q_s)), sg(jnp.mean(q_s_sp)), log_prob)

  def alpha_loss(log_alpha, log_prob):
    """-E[log alpha (log pi + target entropy)], the policy held fixed (SAC's)."""
    return -jnp.mean(log_alpha * sg(log_prob + target_entropy))

  return TSACLosses(critic_loss=critic_loss, sp_loss=sp_loss, acp_loss=acp_loss,
                    alpha_loss=alpha_loss)


def dual_step(lagrange: jax.Array, sparse_return: jax.Array, budget: jax.Array,
              lagrange_lr: float, lagrange_max: float = float("inf")) -> jax.Array:
  """T7: lambda <- clip(lambda + eta (b - J_s), 0, lambda_max): rises while the sparse
  return misses the budget, falls (to 0 at most) while it exceeds it, never past
  ``lagrange_max`` (a bounded multiplier: an unreachable budget cannot make the dense term
  vanish from T6)."""
  return jnp.clip(lagrange + lagrange_lr * (budget - sparse_return), 0.0, lagrange_max)


def budget(reference: str, budget_fraction: float, gamma: float,
           sp_sparse_return: jax.Array) -> jax.Array:
  """T7's b: ``"max"``, a fraction of the largest discounted sparse return 1 / (1 - gamma)
  (success at every step: unreachable where an episode must first get there);
  ``"shared_policy"``, a multiple of what the SP's own action already earns,
  E[min Q_s(s, a_sp)] (met at a multiple <= 1 with no correction at all)."""
  if reference == "max":
    return jnp.asarray(budget_fraction / (1.0 - gamma), jnp.float32)
  return budget_fraction * sp_sparse_return
