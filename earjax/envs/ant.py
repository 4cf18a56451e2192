"""Ant-Dir: run in the direction p (degrees) on the plane (EAR reference table).

r = dot(v_xy, (cos p, sin p)) - 0.5 * sum(a^2) + 1.0; terminates when the torso z
leaves [0.2, 1.0].  Observation (27): Gym's ``qpos[2:]`` (13) and ``qvel`` (14).

Gym's Ant-v2 also appends the 84 clipped external contact forces ``cfrc_ext`` to the
observation and charges 0.5e-3 * sum(clip(cfrc_ext, -1, 1)^2) in the reward.  MJX does
not compute ``cfrc_ext`` (it stays zero: MJX has no ``mj_rnePostConstraint``), so both
the 84 entries and the contact cost are dropped rather than faked with zeros.
dt = 5 substeps x 0.01 s = 0.05 s.  Success on a step (earjax's choice): a speed of at
least ``success_speed`` along p and a heading within ``success_heading_deg`` of p (its
settings, ``AntDir.default_config``).
"""
import jax.numpy as jnp
import numpy as np

from earjax.envs import readings as readings_lib
from earjax.envs.base import MjxFamilyEnv

CTRL_COST = 0.5
HEALTHY_REWARD = 1.0
HEALTHY_Z = (0.2, 1.0)


class AntDir(MjxFamilyEnv):
  name = "ant_dir"
  xml_file = "ant.xml"
  n_frames = 5
  reset_noise_scale = 0.1
  task_param_size = 1
  task_param_names = ("dir",)

  def _train_tasks(self):
    return np.arange(0.0, 360.0, 15.0)[:, None]

  def _adapt_tasks(self):
    return np.array([[37.5], [112.5], [187.5], [262.5], [322.5]])

  def task_name(self, task_param):
    return f"dir{float(task_param[0]):g}deg"

  @classmethod
  def default_config(cls):
    """The MJX settings and the success thresholds: ``success_speed`` (m/s along the
    task's direction) and ``success_heading_deg`` (the largest angle between the
    velocity and the direction)."""
    config = super().default_config()
    config.success_speed = 0.5
    config.success_heading_deg = 15.0
    return config

  def direction_target(self, task_param) -> float:
    """The heading in degrees the task asks for."""
    return float(task_param[0])

  def readings(self):
    """The velocity along the task's direction (no target) and the heading of the
    episodes' displacement against the task's direction."""
    return super().readings() + (readings_lib.heading(self.direction_target),)

  def _init_qpos_qvel(self, key):
    return self._uniform_gaussian_noise(key, self.mjx_model.qpos0, self.mjx_model.nv)

  def _observation(self, data):
    return jnp.concatenate([data.qpos[2:], data.qvel])

  def reward(self, data_before, data, action, task_param):
    velocity_xy = (data.qpos[:2] - data_before.qpos[:2]) / self.dt
    angle = jnp.deg2rad(task_param[0])
    velocity = velocity_xy[0] * jnp.cos(angle) + velocity_xy[1] * jnp.sin(angle)
    ctrl_cost = CTRL_COST * jnp.sum(jnp.square(action))
    reward = velocity - ctrl_cost + HEALTHY_REWARD
    lateral = -velocity_xy[0] * jnp.sin(angle) + velocity_xy[1] * jnp.cos(angle)
    c = self.config
    success = ((velocity >= c.success_speed)
               & (jnp.abs(lateral) <= jnp.tan(jnp.deg2rad(c.success_heading_deg)) * velocity))
    return reward, {"velocity": velocity, "x_velocity": velocity_xy[0],
                    "y_velocity": velocity_xy[1], "ctrl_cost": ctrl_cost,
                    "success": success.astype(jnp.float32)}

  def _terminated(self, data):
    z = data.qpos[2]
    finite = jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel))
    return ~(finite & (z >= HEALTHY_Z[0]) & (z <= HEALTHY_Z[1]))


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (AntDir,)
