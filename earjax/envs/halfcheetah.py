"""HalfCheetah families: HalfCheetah-Vel and HalfCheetah-Run-Jump (EAR reference table).

Observation (17): Gym's ``qpos[1:]`` (rootz, rooty, 6 joint angles) and ``qvel`` (9).
dt = 5 substeps x 0.01 s = 0.05 s.  No termination.
"""
import jax.numpy as jnp
import numpy as np

from earjax.envs.base import (MjxFamilyEnv, velocity_success, with_sampled_tasks,
                             with_velocity_success)

CTRL_COST = 0.1


class _HalfCheetah(MjxFamilyEnv):
  xml_file = "half_cheetah.xml"
  n_frames = 5
  reset_noise_scale = 0.1

  def _init_qpos_qvel(self, key):
    return self._uniform_gaussian_noise(key, self.mjx_model.qpos0, self.mjx_model.nv)

  # brax's settings for its spring pipeline on HalfCheetah (brax.envs.half_cheetah).
  BRAX_BACKENDS = {"spring": (0.003125, 16, (120.0, 90.0, 60.0, 120.0, 100.0, 100.0))}

  def _observation(self, data):
    return jnp.concatenate([self.qpos(data)[1:], self.qvel(data)])

  def _velocity(self, data_before, data):
    """v_x: the torso's x displacement over the control step divided by dt."""
    return (self.qpos(data)[0] - self.qpos(data_before)[0]) / self.dt

  def _terminated(self, data):
    return jnp.zeros((), bool)


class HalfCheetahVel(_HalfCheetah):
  """r = -|v_x - p| - 0.1 * sum(a^2); train p = 1..10 m/s, held-out p in [0, 9.9]."""
  name = "halfcheetah_vel"
  task_param_size = 1
  task_param_names = ("vel",)

  def _train_tasks(self):
    return np.arange(1.0, 11.0)[:, None]

  def _adapt_tasks(self):
    return np.array([[1.5], [4.5], [7.5]])

  @classmethod
  def default_config(cls):
    """The MJX settings, ``success_velocity_fraction``, the sampled-task protocol
    (``envs.base.SAMPLED_TASKS``) and ``ctrl_cost``, the weight of sum(a^2): EAR's 0.1
    (PEARL's and MAML's HalfCheetah-Vel use 0.05)."""
    config = with_sampled_tasks(with_velocity_success(super().default_config()))
    config.ctrl_cost = CTRL_COST
    return config

  def velocity_target(self, task_param):
    return float(task_param[0])

  def reward(self, data_before, data, action, task_param):
    velocity = self._velocity(data_before, data)
    ctrl_cost = self.config.ctrl_cost * jnp.sum(jnp.square(action))
    reward = -jnp.abs(velocity - task_param[0]) - ctrl_cost
    return reward, {"velocity": velocity, "ctrl_cost": ctrl_cost,
                    "success": velocity_success(velocity, task_param[0],
                                                self.config.success_velocity_fraction)}


class HalfCheetahRunJump(_HalfCheetah):
  """One reward for run, jump, walk and stand; task_param = (c_vel, vel, w_height).

  r = -c_vel * |v_x - vel| + w_height * rootz - 0.1 * sum(a^2), rootz = qpos[1] = obs[0].
  - run p (train, p = 1..7):     (1, p, 0)  -- exactly HalfCheetah-Vel's reward
  - jump w (train, w = 1, 5, 10): (0, 0, w)  -- w * rootz - 0.1 * sum(a^2)
  - walk (extra): (1, 0.5, 0)  -- a slow run target
  - stand (extra): (1, 0, 1)   -- keep still (v_x = 0) with the torso held high
  Walk and stand are offered in ``extra_tasks``; the 10 training tasks are the paper's.
  Success on a step: every term the task weighs is met -- the velocity within 10 % of
  ``vel`` (at least 0.1 m/s) if c_vel > 0, rootz >= ``jump_success_height`` (a setting,
  0.4 m: earjax's choice) if w_height > 0.
  There are no held-out adaptation tasks: the family is used for composition.
  """
  name = "halfcheetah_run_jump"
  task_param_size = 3
  task_param_names = ("c_vel", "vel", "w_height")

  @classmethod
  def default_config(cls):
    """The MJX settings, ``success_velocity_fraction`` and ``jump_success_height``: a
    jump task succeeds on a step whose torso is this far above its start (rootz =
    qpos[1], 0 at rest; earjax's choice, like every success indicator)."""
    config = with_velocity_success(super().default_config())
    config.jump_success_height = 0.4
    return config

  def __init__(self, config=None, **overrides):
    super().__init__(config, **overrides)
    self.extra_tasks = np.array([[1.0, 0.5, 0.0], [1.0, 0.0, 1.0]], np.float32)
    self.extra_task_names = ("walk", "stand")

  def _train_tasks(self):
    run = [[1.0, p, 0.0] for p in range(1, 8)]
    jump = [[0.0, 0.0, w] for w in (1.0, 5.0, 10.0)]
    return np.array(run + jump)

  def _adapt_tasks(self):
    return np.zeros((0, 3))

  def task_name(self, task_param):
    c_vel, vel, w_height = (float(x) for x in task_param)
    if w_height == 0 and c_vel == 1:
      return f"run{vel:g}"
    if c_vel == 0 and vel == 0:
      return f"jump{w_height:g}"
    return super().task_name(task_param)

  def velocity_target(self, task_param):
    return float(task_param[1]) if task_param[0] > 0 else None

  def reward(self, data_before, data, action, task_param):
    c_vel, vel, w_height = task_param[0], task_param[1], task_param[2]
    velocity = self._velocity(data_before, data)
    height = self.qpos(data)[1]
    ctrl_cost = CTRL_COST * jnp.sum(jnp.square(action))
    reward = -c_vel * jnp.abs(velocity - vel) + w_height * height - ctrl_cost
    c = self.config
    ran = jnp.where(c_vel > 0, velocity_success(velocity, vel, c.success_velocity_fraction),
                    1.0)
    jumped = jnp.where(w_height > 0,
                       (height >= c.jump_success_height).astype(jnp.float32), 1.0)
    return reward, {"velocity": velocity, "height": height, "ctrl_cost": ctrl_cost,
                    "success": ran * jumped}


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (HalfCheetahVel, HalfCheetahRunJump)
