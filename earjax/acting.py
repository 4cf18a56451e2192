"""Acting: the policy steps every task's envs together, for data and for evaluation.

``collect`` runs ``num_steps`` steps of the auto-reset batch inside one ``lax.scan`` and
returns the transitions, task-major ([num_tasks, envs_per_task * num_steps, ...]) as the
replay stores them.  Exploration samples the tanh-Gaussian with the clean LTE: the LTE
noise of Algorithm 1 perturbs the gradient steps, not the behaviour policy.
``evaluate`` runs deterministic episodes (a = tanh(mean)) of every task at once.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from earjax import envs
from earjax.networks import Networks, deterministic_action, sample_tanh_gaussian


def collect(batch_env: envs.AutoResetBatch, networks: Networks, actor_params,
            env_state: envs.State, task_onehot: jax.Array, key: jax.Array,
            num_steps: int, random_actions: jax.Array):
  """``num_steps`` steps of every env; uniform actions where ``random_actions`` (bool).

  ``task_onehot`` [num_envs, num_tasks] with envs ordered task-major (env i runs task
  i // envs_per_task).  Returns (env_state, transitions) with replay's fields.
  """
  num_tasks = task_onehot.shape[1]

  def step(env_state, key):
    policy_key, uniform_key = jax.random.split(key)
    mean, log_std = networks.actor_apply(actor_params, env_state.obs, task_onehot)
    action, _ = sample_tanh_gaussian(mean, log_std, policy_key)
    uniform = jax.random.uniform(uniform_key, action.shape, minval=-1.0, maxval=1.0)
    action = jnp.where(random_actions, uniform, action)
    next_state = batch_env.step(env_state, action)
    terminated = next_state.done * (1.0 - next_state.info["truncation"])
    transition = {"obs": env_state.obs, "action": action, "reward": next_state.reward,
                  "next_obs": next_state.info["terminal_obs"],
                  "discount": 1.0 - terminated}
    return next_state, transition

  env_state, transitions = jax.lax.scan(step, env_state, jax.random.split(key, num_steps))

  def task_major(x):  # [T, num_envs, ...] -> [num_tasks, envs_per_task * T, ...]
    return jnp.moveaxis(x, 0, 1).reshape((num_tasks, -1) + x.shape[2:])

  return env_state, jax.tree.map(task_major, transitions)


def evaluate(env: envs.TaskFamilyEnv, networks: Networks, actor_params,
             task_params: jax.Array, key: jax.Array, episodes: int):
  """Deterministic episodes of every task: per task mean return, velocity and length.

  All ``len(task_params) * episodes`` episodes run in one vmapped batch; an episode's
  return and velocity stop accumulating at its termination.
  """
  num_tasks = task_params.shape[0]
  tasks = jnp.repeat(task_params, episodes, axis=0)
  onehot = jnp.repeat(jnp.eye(num_tasks), episodes, axis=0)
  state = jax.vmap(env.reset)(jax.random.split(key, len(tasks)), tasks)

  def step(carry, _):
    state, alive = carry
    mean, _ = networks.actor_apply(actor_params, state.obs, onehot)
    state = jax.vmap(env.step)(state, deterministic_action(mean))
    out = (alive * state.reward, alive * state.metrics["velocity"], alive)
    return (state, alive * (1.0 - state.done)), out

  _, (rewards, velocities, alive) = jax.lax.scan(
      step, (state, jnp.ones(len(tasks))), None, length=env.episode_length)
  per_task = lambda x: x.reshape(num_tasks, episodes)
  returns = per_task(rewards.sum(0)).mean(1)
  velocity = per_task(velocities.sum(0) / alive.sum(0)).mean(1)
  return {"return": returns, "velocity": velocity, "length": per_task(alive.sum(0)).mean(1)}
