"""One MAML meta-iteration (Finn et al. 2017, Algorithm 3), all in one jitted function.

For every task of the meta-batch (the run's training tasks), ``episodes_per_task``
episodes with theta; ``inner_steps`` policy-gradient steps, each on fresh episodes of
the policy it adapts (as pytorch-maml-rl's sampler does); then episodes of the adapted
theta'_k.  The meta-objective is the mean over tasks of the surrogate loss of theta'_k
on those episodes, differentiated through the inner steps (second order; first order
with ``maml.first_order``), and theta takes one Adam step on it (clipped to
``max_grad_norm``) or, with ``maml.outer=trpo``, one TRPO step (``trpo.py``).  The rollouts are ``acting.rollout`` calls, vmapped over tasks and
episodes, inside the same jit as the update.
"""
from __future__ import annotations

from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import optax

from earjax.agents.maml import losses
from earjax.agents.maml import trpo
from earjax.agents.maml.networks import MAMLNetworks

Params = Any


@struct.dataclass
class MAMLState:
  params: Params       # theta, the meta-learned initialisation
  opt_state: optax.OptState


def finite_tree(tree) -> jax.Array:
  return jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]).all()


def make_act(networks: MAMLNetworks):
  """``acting.ActFn`` with the policy's parameters as the policy input: a sample, or the
  mean where not ``stochastic``."""
  def act(params, obs, key, stochastic):
    mean, _ = networks.actor_apply(params, obs)
    return jnp.where(stochastic, networks.sample(params, obs, key), mean)
  return act


def make_meta_update(networks: MAMLNetworks, optimizer: optax.GradientTransformation, *,
                     episodes_per_task: int, inner_steps: int, inner_lr: float,
                     first_order: bool, gamma: float, gae_lambda: float,
                     max_grad_norm: float, trpo_config: trpo.TRPOConfig | None = None):
  """``meta_update(state, episodes, task_params [K, p], key) -> (state, metrics)``;
  ``episodes(act, policy_inputs, task_params, keys)`` is ``acting.rollout`` with sampled
  actions and the transitions kept (the trainer's).  The outer step: ``optimizer`` on
  the clipped meta-gradient, or with ``trpo_config`` a TRPO step (``trpo.step``) under
  the mean KL between the adapted policies of the new and the current initialisation on
  the outer episodes (pytorch-maml-rl's ``kl_divergence(pi, old_pi)``)."""
  act = make_act(networks)
  per_task_advantages = jax.vmap(lambda ep: losses.advantages(ep, gamma, gae_lambda))
  adapt = jax.vmap(lambda params, ep, adv: losses.inner_step(
      networks, params, ep, adv, inner_lr, first_order))

  def sample(episodes: Callable, params_per_task, task_params, key):
    """``episodes_per_task`` episodes of task k with params_per_task[k]: fields [K, E, T]."""
    k, e = task_params.shape[0], episodes_per_task
    repeat = lambda x: jnp.repeat(x, e, axis=0)
    ep = episodes(act, jax.tree.map(repeat, params_per_task), repeat(task_params),
                  jax.random.split(key, k * e))
    per_task = lambda x: jnp.moveaxis(x, 0, 1).reshape((k, e) + x.shape[:1] + x.shape[2:])
    data = {name: per_task(ep.transitions[name]) for name in ("obs", "action", "reward")}
    data["alive"] = per_task(ep.alive)
    return data, ep.ret.reshape(k, e)

  def meta_update(state: MAMLState, episodes: Callable, task_params: jax.Array,
                  key: jax.Array):
    k = task_params.shape[0]
    tile = lambda params: jax.tree.map(lambda x: jnp.broadcast_to(x, (k,) + x.shape), params)
    keys = jax.random.split(key, inner_steps + 1)
    adapted, inner = tile(state.params), []
    for step in range(inner_steps):          # sampling: no gradient flows through it
      data, returns = sample(episodes, adapted, task_params, keys[step])
      adv = per_task_advantages(data)
      inner.append((data, adv))
      adapted = adapt(adapted, data, adv)
      if step == 0:
        before = returns.mean()
    outer, after = sample(episodes, adapted, task_params, keys[-1])
    outer_adv = per_task_advantages(outer)
    old_log_prob = jax.vmap(networks.log_prob)(adapted, outer["obs"], outer["action"])

    def adapted_from(params):
      adapted = tile(params)
      for data, adv in inner:
        adapted = adapt(adapted, data, adv)
      return adapted

    def meta_loss(params):
      return jax.vmap(lambda p, ep, adv, old: losses.surrogate_loss(
          networks, p, ep, adv, old))(adapted_from(params), outer, outer_adv,
                                      old_log_prob).mean()

    if trpo_config is None:
      loss, grads = jax.value_and_grad(meta_loss)(state.params)
      grads_ok = finite_tree(grads)
      grads = optax.clip_by_global_norm(max_grad_norm).update(grads, None)[0]
      updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
      params, outer_metrics = optax.apply_updates(state.params, updates), {}
    else:
      old_dists = jax.lax.stop_gradient(jax.vmap(networks.actor_apply)(adapted, outer["obs"]))

      def meta_kl(params):
        mean, log_std = jax.vmap(networks.actor_apply)(adapted_from(params), outer["obs"])
        kl = trpo.gaussian_kl(mean, log_std, *old_dists)           # [K, E, T]
        return jax.vmap(losses.mean_alive)(kl, outer["alive"]).mean()

      params, outer_metrics = trpo.step(meta_loss, meta_kl, state.params, trpo_config)
      loss, grads_ok, opt_state = (outer_metrics.pop("loss"),
                                   outer_metrics.pop("grad_finite"), state.opt_state)
    metrics = {"meta_loss": loss, "return_before_adaptation": before,
               "return_after_adaptation": after.mean(),
               "policy_std": jnp.exp(params["log_std"]).mean(), **outer_metrics,
               "finite": {"meta_loss": jnp.isfinite(loss), "meta_grad": grads_ok}}
    return MAMLState(params=params, opt_state=opt_state), metrics

  return meta_update
