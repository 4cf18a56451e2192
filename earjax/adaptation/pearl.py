"""PEARL's adaptation to a new task: no gradient steps, only inference of z (Rakelly et
al. 2019, Sec. 4.3 and the meta-test procedure of Algorithm 2).

On the new task the context starts empty; episode e (e = 0 .. context_episodes - 1)
draws z ~ q(z | c) (the prior N(0, I) for e = 0), acts with sampled actions and adds
its transitions to the context (posterior sampling: exploration by the uncertainty of
z).  After each context episode, and before the first, the policy is evaluated with
the posterior mean and deterministic actions on fresh episodes: the return vs
adaptation env steps (e x episode length) of ``adapt``.  Every (task, seed) runs in one
jitted, vmapped call; the context is a fixed-size buffer with a mask, so the shapes
never change as it grows.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax import acting
from earjax import envs
from earjax.agents.pearl import PEARLNetworks
from earjax.networks import deterministic_action, sample_tanh_gaussian
from earjax.run import Run


@dataclasses.dataclass(frozen=True)
class PEARLRun:
  """A trained PEARL run: networks, the actor's and the encoder's parameters, env."""
  workdir: str
  config: ml_collections.ConfigDict
  env: envs.TaskFamilyEnv
  networks: PEARLNetworks
  actor_params: dict
  encoder_params: dict
  epoch: int


def load(workdir: str, seed_index: int = 0) -> PEARLRun:
  """The best checkpoint of the PEARL run in ``workdir`` (of a seed batch, seed
  ``seed_index``'s)."""
  run = Run.load(workdir, agent="pearl", what="PEARL's adaptation", impl="jax")
  envs.require_per_env(run.env, "PEARL's adaptation rollouts")
  items, epoch = run.restore_best_items(seed_index)
  return PEARLRun(workdir=workdir, config=run.config, env=run.env, networks=run.networks,
                  actor_params=items["policy"]["actor"], encoder_params=items["encoder"],
                  epoch=epoch)


def _act(networks: PEARLNetworks, actor_params):
  """``acting.ActFn`` with z as the policy input."""
  def act(z, obs, key, stochastic):
    mean, log_std = networks.actor_apply(actor_params, obs[None], z[None])
    sample = sample_tanh_gaussian(mean, log_std, key)[0]
    return jnp.where(stochastic, sample, deterministic_action(mean))[0]
  return act


def adapt(run: PEARLRun, task_params: jax.Array, key: jax.Array, context_episodes: int,
          eval_episodes: int) -> dict[str, np.ndarray]:
  """Per task row of ``task_params`` [N, p] (e.g. every (task, seed) pair), with its own
  key: ``eval_return`` and ``eval_velocity`` [N, E + 1] (the posterior mean's return
  and mean forward velocity after e context episodes),
  ``context_return`` [N, E] (the posterior-sampling episodes' returns), ``posterior_std``
  [N, E + 1] (mean std of q(z | c)) and ``env_steps`` [E + 1] (context steps taken)."""
  return jax.device_get(_adapt(run.env, run.networks, context_episodes, eval_episodes,
                               run.actor_params, run.encoder_params,
                               jnp.asarray(task_params, jnp.float32),
                               jax.random.split(key, len(task_params)))) | {
      "env_steps": np.arange(context_episodes + 1) * run.env.episode_length}


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _adapt(env, networks, context_episodes, eval_episodes, actor_params, encoder_params,
           task_params, keys):
  act = _act(networks, actor_params)
  length = env.episode_length

  def one(task_param, key):
    size = context_episodes * length
    context = {"obs": jnp.zeros((size, env.observation_size)),
               "action": jnp.zeros((size, env.action_size)), "reward": jnp.zeros(size),
               "next_obs": jnp.zeros((size, env.observation_size))}
    mask = jnp.zeros(size)

    def evaluate(context, mask, key):
      mean, variance = networks.posterior(encoder_params, context, mask)
      episodes = acting.rollout(env, act, jnp.repeat(mean[None], eval_episodes, 0),
                                jnp.repeat(task_param[None], eval_episodes, 0),
                                jax.random.split(key, eval_episodes))
      return (episodes.ret.mean(), episodes.velocity.mean(), jnp.sqrt(variance).mean(),
              mean, variance)

    def episode(carry, e):
      context, mask = carry
      eval_key, z_key, rollout_key = jax.random.split(jax.random.fold_in(key, e), 3)
      eval_return, velocity, std, mean, variance = evaluate(context, mask, eval_key)
      z = mean + jnp.sqrt(variance) * jax.random.normal(z_key, mean.shape)
      ep = acting.rollout(env, act, z[None], task_param[None], rollout_key[None],
                          stochastic=True, keep_transitions=True)
      start = e * length
      context = jax.tree.map(
          lambda buf, new: jax.lax.dynamic_update_slice_in_dim(buf, new[:, 0], start, 0),
          context, ep.transitions)
      mask = jax.lax.dynamic_update_slice_in_dim(mask, ep.alive[:, 0], start, 0)
      return (context, mask), (eval_return, velocity, std, ep.ret[0])

    (context, mask), (eval_returns, velocities, stds, context_returns) = jax.lax.scan(
        episode, (context, mask), jnp.arange(context_episodes))
    last_return, last_velocity, last_std, _, _ = evaluate(
        context, mask, jax.random.fold_in(key, context_episodes))
    return {"eval_return": jnp.append(eval_returns, last_return),
            "eval_velocity": jnp.append(velocities, last_velocity),
            "posterior_std": jnp.append(stds, last_std),
            "context_return": context_returns}

  return jax.vmap(one)(task_params, keys)
