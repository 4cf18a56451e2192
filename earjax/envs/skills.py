"""The policy-space compression paper's tasks (arXiv 2509.22566) as two families: HalfCheetah
forward, backward, frontflip, backflip and Hopper forward, backward, jump.

The paper's reward definitions cannot be read from here (``shared/METHOD_NOTES.md``); these
are earjax's choice, one linear reward per body whose weights are the task parameter, so
that one rollout scores a policy on every task (``acting.rollout``'s ``score_params``):

- HalfCheetah (task_param = (w_vel, w_spin)):
  r = w_vel * v_x + w_spin * omega - 0.1 * sum(a^2), omega = d(rooty)/dt (qpos[2]; > 0
  pitches the head down, a front flip).  forward (1, 0), backward (-1, 0), frontflip
  (0, 1), backflip (0, -1).  No termination, as HalfCheetah-Vel.
- Hopper (task_param = (w_vel, w_height)):
  r = w_vel * v_x + w_height * (height - 1.25) + 1 - 1e-3 * sum(a^2), Gym's termination
  and alive bonus of 1.  forward (1, 0), backward (-1, 0), jump (0, 10) (the weight of
  HalfCheetah-Run-Jump's strongest jump).

Bodies, observations, resets and physics are HalfCheetah-Vel's and Hopper-Vel's, so a
policy of one runs on the other.  Success on a step (earjax's choice): every weighted
term is met in its sign's direction -- sign(w_vel) v_x >= ``SKILL_SPEED``,
sign(w_spin) omega >= ``SKILL_SPIN``, the torso ``SKILL_HEIGHT`` above its start.  No held-out
adaptation tasks: the families score the compression's datasets and searches.
"""
import jax.numpy as jnp
import numpy as np

from earjax.envs.base import SAMPLED_TASKS
from earjax.envs.halfcheetah import CTRL_COST as CHEETAH_CTRL_COST
from earjax.envs.halfcheetah import _HalfCheetah
from earjax.envs.planar_walkers import CTRL_COST as HOPPER_CTRL_COST
from earjax.envs.planar_walkers import TORSO_Z0, HopperVel

SKILL_SPEED = 1.0             # m/s
SKILL_SPIN = float(np.pi)     # rad/s: half a turn a second
SKILL_HEIGHT = 0.15           # m above the standing torso
HOPPER_ALIVE_BONUS = 1.0


def _met(weight, value, threshold):
  """1.0 where the weighted term is absent or ``sign(weight) * value >= threshold``."""
  return jnp.where(weight != 0, (jnp.sign(weight) * value >= threshold).astype(jnp.float32),
                   1.0)


class _NamedTasks:
  """Tasks named by the ``TASKS`` table (name -> task_param)."""
  TASKS: dict[str, tuple[float, ...]]

  def _train_tasks(self):
    return np.array(list(self.TASKS.values()))

  def _adapt_tasks(self):
    return np.zeros((0, self.task_param_size))

  def task_name(self, task_param):
    for name, param in self.TASKS.items():
      if np.allclose(param, np.asarray(task_param, np.float64)):
        return name
    return super().task_name(task_param)


class HalfCheetahSkills(_NamedTasks, _HalfCheetah):
  """HalfCheetah forward, backward, frontflip, backflip (module docstring)."""
  name = "halfcheetah_skills"
  task_param_size = 2
  task_param_names = ("w_vel", "w_spin")
  TASKS = {"forward": (1.0, 0.0), "backward": (-1.0, 0.0), "frontflip": (0.0, 1.0),
           "backflip": (0.0, -1.0)}

  def reward(self, data_before, data, action, task_param):
    w_vel, w_spin = task_param[0], task_param[1]
    velocity = self._velocity(data_before, data)
    spin = (self.qpos(data)[2] - self.qpos(data_before)[2]) / self.dt
    ctrl_cost = CHEETAH_CTRL_COST * jnp.sum(jnp.square(action))
    reward = w_vel * velocity + w_spin * spin - ctrl_cost
    success = _met(w_vel, velocity, SKILL_SPEED) * _met(w_spin, spin, SKILL_SPIN)
    return reward, {"velocity": velocity, "spin": spin, "ctrl_cost": ctrl_cost,
                    "success": success}


class HopperSkills(_NamedTasks, HopperVel):
  """Hopper forward, backward, jump (module docstring)."""
  name = "hopper_skills"
  task_param_size = 2
  task_param_names = ("w_vel", "w_height")
  TASKS = {"forward": (1.0, 0.0), "backward": (-1.0, 0.0), "jump": (0.0, 10.0)}

  @classmethod
  def default_config(cls):
    """Hopper-Vel's settings but its velocity success and its sampled targets (the skills
    are named tasks with their own success)."""
    config = super().default_config()
    for key in ("success_velocity_fraction", *SAMPLED_TASKS):
      del config[key]
    return config

  def velocity_target(self, task_param):
    return None

  def reward(self, data_before, data, action, task_param):
    w_vel, w_height = task_param[0], task_param[1]
    velocity = (data.qpos[0] - data_before.qpos[0]) / self.dt
    rise = self.height(data) - TORSO_Z0
    ctrl_cost = HOPPER_CTRL_COST * jnp.sum(jnp.square(action))
    reward = w_vel * velocity + w_height * rise + HOPPER_ALIVE_BONUS - ctrl_cost
    success = _met(w_vel, velocity, SKILL_SPEED) * _met(w_height, rise, SKILL_HEIGHT)
    return reward, {"velocity": velocity, "height": rise, "ctrl_cost": ctrl_cost,
                    "success": success}


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (HalfCheetahSkills, HopperSkills)
