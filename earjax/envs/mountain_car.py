"""MountainCarContinuous: Gym's ``MountainCarContinuous-v0`` in pure JAX, the policy-space
compression paper's first environment (arXiv 2509.22566; its 121,801 : 1 ratio is most
likely a 2 -> 400 -> 300 -> 1 policy on it with a 1-D latent, ``shared/METHOD_NOTES.md``).

Dynamics (Gym's, power 0.0015): v' = clip(v + 0.0015 a - 0.0025 cos(3 x), +-0.07),
x' = clip(x + v', -1.2, 0.6), v' = 0 where x' hits the left wall moving left; a is
clipped to [-1, 1].  Observation (2): (x, v).  Reward: the goal bonus p on the step that
reaches x >= 0.45 with v >= 0 (which ends the episode), minus 0.1 a^2 (a unclipped); Gym's task is
p = 100 (``task_param`` = (p,), the family's one training task).  Reset: x ~ U(-0.6, -0.4),
v = 0.  Episodes: 999 steps (Gym's limit).  Success: the goal reached.
"""
import jax
import jax.numpy as jnp
import numpy as np

from earjax.envs.base import TaskFamilyEnv
from earjax.envs.point import PointData   # the car is a point on a curve: x [1], v [1]

POWER = 0.0015
GRAVITY = 0.0025
MAX_SPEED = 0.07
MIN_POSITION, MAX_POSITION = -1.2, 0.6
GOAL_POSITION = 0.45
CTRL_COST = 0.1


class MountainCarContinuous(TaskFamilyEnv):
  """Gym's MountainCarContinuous-v0 (module docstring)."""
  name = "mountaincar_continuous"
  task_param_size = 1
  task_param_names = ("goal_bonus",)
  observation_size = 2
  action_size = 1
  dt = 1.0     # Gym's unit step

  @classmethod
  def default_config(cls):
    """Gym's 999-step episodes."""
    config = super().default_config()
    config.episode_length = 999
    return config

  def _train_tasks(self):
    return np.array([[100.0]])

  def _adapt_tasks(self):
    return np.zeros((0, 1))

  def _physics_reset(self, key):
    x = jax.random.uniform(key, (1,), minval=-0.6, maxval=-0.4)
    return PointData(qpos=x, qvel=jnp.zeros(1))

  def _physics_step(self, data, action):
    force = jnp.clip(action, -1.0, 1.0)
    v = jnp.clip(data.qvel + force * POWER - GRAVITY * jnp.cos(3.0 * data.qpos),
                 -MAX_SPEED, MAX_SPEED)
    x = jnp.clip(data.qpos + v, MIN_POSITION, MAX_POSITION)
    v = jnp.where((x <= MIN_POSITION) & (v < 0), 0.0, v)
    return PointData(qpos=x, qvel=v)

  def _observation(self, data):
    return jnp.concatenate([data.qpos, data.qvel])

  def _at_goal(self, data):
    return (data.qpos[0] >= GOAL_POSITION) & (data.qvel[0] >= 0.0)

  def reward(self, data_before, data, action, task_param):
    del data_before
    reached = self._at_goal(data).astype(jnp.float32)
    ctrl_cost = CTRL_COST * jnp.sum(jnp.square(action))   # Gym's: the unclipped action
    return reached * task_param[0] - ctrl_cost, {
        "velocity": data.qvel[0], "ctrl_cost": ctrl_cost, "success": reached}

  def _terminated(self, data):
    return self._at_goal(data)


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (MountainCarContinuous,)
