"""Hopper-Vel and Walker-Vel: track a forward velocity p (EAR reference table).

r = -|v_x - p| - 1e-3 * sum(a^2) + alive_bonus (Hopper 1.05, Walker 1.0), with Gym's
terminations; success: v_x within 10 % of p, at least 0.1 m/s
(``envs.base.velocity_success``).  Observation: Gym's ``qpos[1:]`` and ``clip(qvel, -10, 10)`` (Hopper 11,
Walker 17).  brax's MJCF moved the root joints to the torso (no joint ``ref``), so
``qpos[1]`` starts at 0 there; the torso height ``1.25 + qpos[1]`` is used wherever Gym
uses its ``qpos[1]`` (observation and termination), which makes both exactly Gym's.
dt = 4 substeps x 0.002 s = 0.008 s.
"""
import jax.numpy as jnp
import numpy as np

from earjax.envs.base import (MjxFamilyEnv, velocity_success, with_sampled_tasks,
                             with_velocity_success)

CTRL_COST = 1e-3
TORSO_Z0 = 1.25


class _PlanarWalker(MjxFamilyEnv):
  n_frames = 4
  reset_noise_scale = 5e-3
  task_param_size = 1
  task_param_names = ("vel",)
  alive_bonus: float

  def _train_tasks(self):
    return np.linspace(0.2, 2.0, 10)[:, None]

  def _adapt_tasks(self):
    return np.array([[0.5], [1.1], [1.7]])

  @classmethod
  def default_config(cls):
    """The MJX settings, ``success_velocity_fraction`` and the sampled-task protocol
    (``envs.base.SAMPLED_TASKS``)."""
    return with_sampled_tasks(with_velocity_success(super().default_config()))

  def velocity_target(self, task_param):
    return float(task_param[0])

  def _init_qpos_qvel(self, key):
    return self._uniform_noise(key, self.mjx_model.qpos0, self.mjx_model.nv)

  @staticmethod
  def height(data):
    """Gym's torso height (its ``qpos[1]``)."""
    return TORSO_Z0 + data.qpos[1]

  def _observation(self, data):
    qpos = data.qpos.at[1].set(self.height(data))
    return jnp.concatenate([qpos[1:], jnp.clip(data.qvel, -10.0, 10.0)])

  def reward(self, data_before, data, action, task_param):
    velocity = (data.qpos[0] - data_before.qpos[0]) / self.dt
    ctrl_cost = CTRL_COST * jnp.sum(jnp.square(action))
    reward = -jnp.abs(velocity - task_param[0]) - ctrl_cost + self.alive_bonus
    return reward, {"velocity": velocity, "ctrl_cost": ctrl_cost,
                    "success": velocity_success(velocity, task_param[0],
                                                self.config.success_velocity_fraction)}


class HopperVel(_PlanarWalker):
  """Terminates unless height > 0.7, |angle| < 0.2, |state[2:]| < 100 (Gym Hopper)."""
  name = "hopper_vel"
  xml_file = "hopper.xml"
  alive_bonus = 1.05

  def _terminated(self, data):
    state = jnp.concatenate([data.qpos.at[1].set(self.height(data)), data.qvel])
    healthy = (jnp.all(jnp.isfinite(state)) & jnp.all(jnp.abs(state[2:]) < 100.0)
               & (self.height(data) > 0.7) & (jnp.abs(data.qpos[2]) < 0.2))
    return ~healthy


class WalkerVel(_PlanarWalker):
  """Terminates unless 0.8 < height < 2.0 and |angle| < 1 (Gym Walker2d)."""
  name = "walker_vel"
  xml_file = "walker2d.xml"
  alive_bonus = 1.0

  def _terminated(self, data):
    height = self.height(data)
    return ~((height > 0.8) & (height < 2.0) & (jnp.abs(data.qpos[2]) < 1.0))


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (HopperVel, WalkerVel)
