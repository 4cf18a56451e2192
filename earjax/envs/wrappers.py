"""The training-side batch of envs: vmapped, with auto-reset that keeps each task.

``AutoResetBatch`` holds a batch of envs, each with its own task parameter (all tasks of
a family in one batch).  An env whose episode terminated or reached ``episode_length``
steps restarts with a fresh randomised reset of *its own* task.  ``done`` marks both
cases; ``info["truncation"]`` marks time-limit ends (bootstrap through them) and
``info["terminal_obs"]`` keeps the last observation before the reset, so the learner
stores the true ``next_obs`` of every transition.
"""
import jax
import jax.numpy as jnp

from earjax.envs.base import State, TaskFamilyEnv


class AutoResetBatch:
  """A vmapped batch of one family's envs with per-env auto-reset."""

  def __init__(self, env: TaskFamilyEnv, episode_length: int | None = None):
    self.env = env
    self.episode_length = int(episode_length or env.episode_length)

  def reset(self, keys: jax.Array, task_params: jax.Array) -> State:
    """Fresh episodes; ``keys`` [B] and ``task_params`` [B, task_param_size]."""
    if task_params.ndim != 2 or keys.shape[0] != task_params.shape[0]:
      raise ValueError(f"expected B keys and task_params [B, {self.env.task_param_size}],"
                       f" got keys {keys.shape} and task_params {task_params.shape}")
    return jax.vmap(self._reset_one)(keys, task_params)

  def step(self, state: State, actions: jax.Array) -> State:
    """Steps every env with its action (``actions`` [B, action_size])."""
    batch = state.obs.shape[0]
    if actions.shape != (batch, self.env.action_size):
      raise ValueError(f"actions must have shape {(batch, self.env.action_size)}, "
                       f"got {actions.shape}")
    return jax.vmap(self._step_one)(state, actions)

  def _reset_one(self, key, task_param):
    key, reset_key = jax.random.split(key)
    state = self.env.reset(reset_key, task_param)
    info = dict(state.info, steps=jnp.zeros((), jnp.int32), truncation=jnp.zeros(()),
                terminal_obs=state.obs, rng=key)
    return state.replace(info=info)

  def _step_one(self, state, action):
    stepped = self.env.step(state, action)
    steps = state.info["steps"] + 1
    truncation = ((stepped.done == 0) & (steps >= self.episode_length)).astype(jnp.float32)
    done = jnp.maximum(stepped.done, truncation)
    rng, reset_key = jax.random.split(state.info["rng"])
    fresh = self.env.reset(reset_key, state.info["task_param"])
    info = dict(state.info, steps=jnp.where(done > 0, 0, steps), truncation=truncation,
                terminal_obs=stepped.obs, rng=rng)
    return stepped.replace(data=self.env.select(done > 0, fresh.data, stepped.data),
                           obs=jnp.where(done > 0, fresh.obs, stepped.obs), done=done,
                           info=info)
