"""MAML's adaptation to a new task: the inner loop alone (Finn et al. 2017, Sec. 3.2),
policy-gradient steps from the meta-learned initialisation on that task's rollouts.

Step s draws ``episodes_per_step`` episodes with theta_s (sampled actions), fits the
baseline and takes theta_{s+1} = theta_s - alpha grad L_inner (``agents.maml.losses``);
theta_s is also evaluated on fresh deterministic episodes (the mean action), which the
budget does not count.  Return vs adaptation env steps: after s steps, s x
``episodes_per_step`` x episode length steps were spent.  Every task row runs in one
jitted, vmapped call.
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
from earjax.agents.maml import MAMLNetworks, learner, losses
from earjax.run import Run


@dataclasses.dataclass(frozen=True)
class MAMLRun:
  workdir: str
  config: ml_collections.ConfigDict
  env: envs.TaskFamilyEnv
  networks: MAMLNetworks
  params: dict          # theta, the meta-learned initialisation
  epoch: int


def load(workdir: str, which: str = "latest", seed_index: int = 0) -> MAMLRun:
  """The MAML run in ``workdir`` (of a seed batch, seed ``seed_index``'s); ``which``
  defaults to "latest": the job's best checkpoint is chosen on the unadapted policy's
  return, which MAML does not maximise."""
  run = Run.load(workdir, agent="maml", what="MAML's adaptation", impl="jax")
  envs.require_per_env(run.env, "MAML's adaptation rollouts")
  params, epoch = run.restore_policy(which, seed_index)
  return MAMLRun(workdir=workdir, config=run.config, env=run.env, networks=run.networks,
                 params=params, epoch=epoch)


def adapt(run: MAMLRun, task_params: jax.Array, key: jax.Array, steps: int,
          episodes_per_step: int, eval_episodes: int,
          inner_lr: float | None = None) -> dict[str, np.ndarray]:
  """Per task row of ``task_params`` [N, p]: ``eval_return`` and ``eval_velocity``
  [N, steps + 1] (theta_s's deterministic return and mean forward velocity),
  ``sampled_return`` [N, steps] (the mean return of the episodes step s learns from)
  and ``env_steps`` [steps + 1]; ``inner_lr`` defaults to the run's ``maml.inner_lr``."""
  m = run.config.maml
  lr = float(m.inner_lr if inner_lr is None else inner_lr)
  out = jax.device_get(_adapt(run.env, run.networks, steps, episodes_per_step, eval_episodes,
                              lr, run.config.gamma, float(m.gae_lambda), run.params,
                              jnp.asarray(task_params, jnp.float32),
                              jax.random.split(key, len(task_params))))
  return out | {"env_steps": np.arange(steps + 1) * episodes_per_step
                             * run.env.episode_length}


@functools.partial(jax.jit, static_argnums=tuple(range(8)))
def _adapt(env, networks, steps, episodes_per_step, eval_episodes, inner_lr, gamma,
           gae_lambda, params, task_params, keys):
  act = learner.make_act(networks)

  def rollouts(params, task_param, key, n, stochastic):
    tile = lambda x: jnp.broadcast_to(x, (n,) + x.shape)
    return acting.rollout(env, act, jax.tree.map(tile, params), tile(task_param),
                          jax.random.split(key, n), stochastic=stochastic,
                          keep_transitions=stochastic)

  def one(task_param, key):
    def evaluate(theta, s):
      ep = rollouts(theta, task_param, jax.random.fold_in(key, 2 * s), eval_episodes, False)
      return ep.ret.mean(), ep.velocity.mean()

    def step(theta, s):
      ret, velocity = evaluate(theta, s)
      ep = rollouts(theta, task_param, jax.random.fold_in(key, 2 * s + 1),
                    episodes_per_step, True)
      data = {name: jnp.swapaxes(ep.transitions[name], 0, 1)
              for name in ("obs", "action", "reward")}
      data["alive"] = ep.alive.T
      theta = losses.inner_step(networks, theta, data,
                                losses.advantages(data, gamma, gae_lambda), inner_lr,
                                first_order=True)
      return theta, (ret, velocity, ep.ret.mean())

    theta, (returns, velocities, sampled) = jax.lax.scan(step, params, jnp.arange(steps))
    last_return, last_velocity = evaluate(theta, steps)
    return {"eval_return": jnp.append(returns, last_return),
            "eval_velocity": jnp.append(velocities, last_velocity),
            "sampled_return": sampled}

  return jax.vmap(one)(task_params, keys)
