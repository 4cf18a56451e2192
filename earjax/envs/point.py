"""Point-Vel: a damped point mass on a line that must hold a target velocity.

The tiny pure-JAX family of earjax: the same ``reset``/``step``/``State`` interface as the
MuJoCo families and a task set shaped like HalfCheetah-Vel's, but its step is a few
arithmetic operations, so it compiles in about a second.  Algorithm tests run on it,
and a user can debug an agent on it in seconds (``envs.make("point_vel")``).  It is a
real control problem, not a mock: the best policy pushes towards the target velocity
and then holds it against the damping.

Physics (semi-implicit Euler, dt = 0.1 s): v' = v + dt (GAIN a - DAMPING v),
x' = x + dt v'; action a in [-1, 1]; the top speed is GAIN / DAMPING = 2.
Observation (2): (x, v).  Reward: -|v' - p| - 0.1 a^2, the HalfCheetah-Vel form;
success: |v' - p| within 10 % of p, at least 0.1 (``envs.base.velocity_success``).
Termination: the point leaves the track |x| <= 20, which the fast tasks reach within the
200-step episode (so both ends of an episode, termination and truncation, occur).
Reset: x, v ~ U(-0.1, 0.1).  Tasks: p in {-1.5, -0.5, 0.5, 1.5}; held out -1, 0, 1.
"""
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from earjax.envs.base import (TaskFamilyEnv, velocity_success, with_sampled_tasks,
                             with_velocity_success)

DT = 0.1
GAIN = 2.0
DAMPING = 1.0
CTRL_COST = 0.1
TRACK_HALF_LENGTH = 20.0
RESET_NOISE = 0.1


@struct.dataclass
class PointData:
  qpos: jax.Array   # [1]: x
  qvel: jax.Array   # [1]: v


class PointVel(TaskFamilyEnv):
  """r = -|v - p| - 0.1 a^2 for the target velocity p."""
  name = "point_vel"
  task_param_size = 1
  task_param_names = ("vel",)
  observation_size = 2
  action_size = 1
  dt = DT

  def _train_tasks(self):
    return np.array([[-1.5], [-0.5], [0.5], [1.5]])

  def _adapt_tasks(self):
    return np.array([[-1.0], [0.0], [1.0]])

  @classmethod
  def default_config(cls):
    """200-step episodes, ``success_velocity_fraction`` and the sampled-task protocol
    (``envs.base.SAMPLED_TASKS``)."""
    return with_sampled_tasks(with_velocity_success(super().default_config()))

  def velocity_target(self, task_param):
    return float(task_param[0])

  def _physics_reset(self, key):
    x, v = jax.random.uniform(key, (2, 1), minval=-RESET_NOISE, maxval=RESET_NOISE)
    return PointData(qpos=x, qvel=v)

  def _physics_step(self, data, action):
    qvel = data.qvel + DT * (GAIN * action - DAMPING * data.qvel)
    return PointData(qpos=data.qpos + DT * qvel, qvel=qvel)

  def _observation(self, data):
    return jnp.concatenate([data.qpos, data.qvel])

  def reward(self, data_before, data, action, task_param):
    del data_before
    velocity = data.qvel[0]
    ctrl_cost = CTRL_COST * jnp.sum(jnp.square(action))
    return -jnp.abs(velocity - task_param[0]) - ctrl_cost, {
        "velocity": velocity, "ctrl_cost": ctrl_cost,
        "success": velocity_success(velocity, task_param[0],
                                    self.config.success_velocity_fraction)}

  def _terminated(self, data):
    return jnp.abs(data.qpos[0]) > TRACK_HALF_LENGTH


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (PointVel,)
