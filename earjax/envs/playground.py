"""MuJoCo Playground's environments as earjax task families (the ``playground`` extra).

``PlaygroundFamilyEnv`` adapts a Playground ``MjxEnv`` (``mujoco_playground.registry``):
Playground's own ``reset``/``step`` move the physics (its ``State`` is the earjax state's
``data``, its observation the earjax observation), and the family adds the task
parameter: the quantity the env fixes or samples per episode, held fixed per task, so
every earjax agent and tool (LTE interpolation, CEM, TSAC, PEARL) runs on it.  A family
subclass names the Playground env (``playground_env``), its task sets and ``reward``:
the reward of any task for a transition (interpolation scores a rollout under two
tasks), equal to Playground's own at the env's own parameter.

Registered here: ``playground_walker_speed``, the DM Control suite walker (Playground's
``WalkerStand``/``WalkerWalk``/``WalkerRun``, one ``PlanarWalker`` whose ``move_speed``
is 0, 1 or 8 m/s) with the move speed as the task parameter.  Its assets ship inside
Playground's wheel, so it runs offline.

Envs that sample their task into ``state.info`` every episode (a joystick env's velocity
``command``; the locomotion robots, Go1, G1, ..., which need MuJoCo Menagerie's assets)
are adapted by a subclass that sets ``task_info_key`` (e.g. ``"command"``): the adapter
writes the task parameter there after Playground's ``reset`` and after every ``step``
(which would resample it) and recomputes the observation (the env's ``_get_obs(data,
info)``).  Their ``reward`` under another task than the one in ``info`` needs the env's
reward terms; a subclass writes them as ``PlaygroundWalkerSpeed.reward`` does.  Those
envs are not tested here: Playground git-clones Menagerie at run time, and this machine
has no network (WORKSPACE.md, "MuJoCo Playground").
"""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from earjax.envs import readings as readings_lib
from earjax.envs.base import MjxFamilyEnv, TaskFamilyEnv, check_positive_int


def _registry():
  """``mujoco_playground.registry``, or one line saying how to install it."""
  try:
    from mujoco_playground import registry  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("the Playground families need MuJoCo Playground: pip install "
                      "'earjax[playground]'") from e
  return registry


@functools.cache
def _mjcf_solver(playground_env: str) -> tuple[int, int]:
  """(iterations, line-search iterations) of a Playground env's MJCF (its MuJoCo model,
  built once per process)."""
  registry = _registry()
  config = registry.get_default_config(playground_env)
  config.impl = "jax"
  opt = registry.load(playground_env, config=config).mj_model.opt
  return int(opt.iterations), int(opt.ls_iterations)


class PlaygroundFamilyEnv(TaskFamilyEnv):
  """A Playground ``MjxEnv`` with a task parameter (see the module docstring).

  Subclasses set ``name``, ``task_param_size``, ``task_param_names``,
  ``playground_env`` and implement the task sets and ``reward``; ``task_info_key`` where
  the env keeps its task in ``state.info``.
  """
  playground_env: ClassVar[str]
  task_info_key: ClassVar[str | None] = None
  BACKENDS = ("jax",)

  @classmethod
  def default_config(cls):
    """Playground's episode length and Warp buffer sizes for the env, and MJX's
    implementation: ``jax`` (earjax's default; Playground's is ``warp``, for its GPUs)."""
    config = super().default_config()
    playground = _registry().get_default_config(cls.playground_env)
    config.episode_length = int(playground.episode_length)
    config.impl = "jax"
    # Warp's buffers (Playground's settings and defaults): contacts for the whole batch
    # of worlds stepped together, constraint rows per world.
    config.naconmax = int(playground.naconmax)
    config.njmax = int(playground.njmax)
    # The MJX solver's budget, the env's MJCF's own by default.  Gradient LTE adaptation
    # asks for 1 iteration (MJX's solver is a while_loop beyond one: not
    # reverse-differentiable).
    config.solver_iterations, config.ls_iterations = _mjcf_solver(cls.playground_env)
    return config

  def __init__(self, config=None, **overrides):
    super().__init__(config, **overrides)
    if self.config.impl not in MjxFamilyEnv.IMPLS:
      raise ValueError(f"impl of {self.name} must be one of "
                       f"{', '.join(MjxFamilyEnv.IMPLS)}, got "
                       f"{self.config.impl!r}")
    registry = _registry()
    playground_config = registry.get_default_config(self.playground_env)
    playground_config.impl = self.config.impl
    playground_config.naconmax = self.config.naconmax
    playground_config.njmax = self.config.njmax
    self.playground = registry.load(self.playground_env, config=playground_config)
    self._set_solver(self.config.solver_iterations, self.config.ls_iterations)
    self.impl = self.config.impl
    self.differentiable = self.impl == "jax"
    self.mj_model = self.playground.mj_model
    self.action_size = int(self.playground.action_size)
    self.dt = float(self.playground.dt)
    self.observation_size = int(jax.eval_shape(
        self._physics_reset, jax.random.PRNGKey(0)).obs.shape[-1])

  def _set_solver(self, iterations: int, ls_iterations: int) -> None:
    """Playground's model with this solver budget: where it differs from the MJCF's, the
    options are set and the MJX model put again, as Playground's constructors build it."""
    model = self.playground.mj_model
    budget = (check_positive_int("solver_iterations", iterations),
              check_positive_int("ls_iterations", ls_iterations))
    if budget == (model.opt.iterations, model.opt.ls_iterations):
      return
    from mujoco import mjx  # pylint: disable=import-outside-toplevel
    model.opt.iterations, model.opt.ls_iterations = budget
    self.playground._mjx_model = mjx.put_model(  # pylint: disable=protected-access
        model, impl=self.config.impl)

  def reset(self, key, task_param):
    state = super().reset(key, task_param)
    if self.task_info_key is None:
      return state
    data = self._with_task(state.data, state.info["task_param"])
    return state.replace(data=data, obs=self._observation(data))

  def _with_task(self, data, task_param):
    """Playground's state with its ``info[task_info_key]`` the task and the observation
    recomputed from it."""
    info = {**data.info, self.task_info_key: task_param}
    obs = self.playground._get_obs(data.data, info)  # pylint: disable=protected-access
    return data.replace(info=info, obs=obs)

  def select(self, pred, new_data, data):
    """The auto-reset's merge: MJX's ``Data.where`` for the physics (Warp's contact and
    constraint buffers are the batch's, not one env's, and are kept), ``where`` for the
    rest of Playground's state."""
    rest = super().select(pred, new_data.replace(data=None), data.replace(data=None))
    return rest.replace(data=data.data.where(pred, new_data.data))

  def _physics_reset(self, key):
    return self.playground.reset(key)

  def _physics_step(self, data, action):
    stepped = self.playground.step(data, action)
    if self.task_info_key is None:
      return stepped
    return self._with_task(stepped, data.info[self.task_info_key])

  def _observation(self, data):
    obs = data.obs
    return obs["state"] if isinstance(obs, dict) else obs

  def _terminated(self, data):
    return data.done > 0

  @staticmethod
  def qpos(data):
    return data.data.qpos

  @staticmethod
  def qvel(data):
    return data.data.qvel


# DM Control's walker (Playground's walker.py): the torso should stand above this height.
WALKER_STAND_HEIGHT = 1.2


class PlaygroundWalkerSpeed(PlaygroundFamilyEnv):
  """Playground's planar walker with the move speed v as the task.

  Reward (Playground's ``PlanarWalker``, DM Control's walker): stand = (3 standing +
  upright) / 4 with standing = tolerance(torso height, (1.2, inf), margin 0.6) and
  upright = (1 + torso zz) / 2; for v > 0, stand (5 move + 1) / 6 with move =
  tolerance(speed, (v, inf), margin v / 2, value at margin 0.5, linear), speed the
  torso subtree's forward velocity; for v = 0 (stand), stand alone.  So the task asks for
  at least v, as DM Control's does, and evaluation reads the velocity's shortfall below v
  (``velocity_shortfall``), not |velocity - v|.  Success (earjax's choice): the torso
  above 1.2 m and, for v > 0, the speed at least v: the conditions of full reward.
  Tasks: v in {0, 1, 2, 4, 8} (Playground's stand, walk and run are 0, 1 and 8); held out
  3 and 6.
  """
  name = "playground_walker_speed"
  playground_env = "WalkerWalk"
  task_param_size = 1
  task_param_names = ("speed",)

  def _train_tasks(self):
    return np.array([[0.0], [1.0], [2.0], [4.0], [8.0]])

  def _adapt_tasks(self):
    return np.array([[3.0], [6.0]])

  def velocity_target(self, task_param):
    return float(task_param[0])

  def readings(self):
    """The forward velocity and its shortfall below the task's speed, max(0, v - speed):
    the task asks for at least v, so running faster is no error."""
    return (dataclasses.replace(readings_lib.velocity(self.velocity_target),
                                error_name="velocity_shortfall",
                                error=lambda value, want: max(0.0, want - value)),)

  def reward(self, data_before, data, action, task_param):
    del data_before, action
    from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
    from mujoco_playground._src import reward as rewards  # pylint: disable=import-outside-toplevel
    physics = data.data
    torso = self.mj_model.body("torso").id
    height = physics.xpos[torso, -1]
    standing = rewards.tolerance(height, bounds=(WALKER_STAND_HEIGHT, float("inf")),
                                 margin=WALKER_STAND_HEIGHT / 2)
    upright = (1.0 + physics.xmat[torso, 2, 2]) / 2.0
    stand = (3.0 * standing + upright) / 4.0
    speed = mjx_env.get_sensor_data(self.mj_model, physics, "torso_subtreelinvel")[0]
    target = task_param[0]
    # tolerance(speed, (v, inf), margin v / 2) is tolerance((speed - v) / (v / 2),
    # (0, inf), margin 1): Playground's function, with v traced.
    safe = jnp.where(target > 0.0, target, 1.0)
    move = rewards.tolerance((speed - safe) / (safe / 2.0), bounds=(0.0, float("inf")),
                             margin=1.0, value_at_margin=0.5, sigmoid="linear")
    total = jnp.where(target > 0.0, stand * (5.0 * move + 1.0) / 6.0, stand)
    moving = (target <= 0.0) | (speed >= target)   # standing (v = 0) asks for no speed
    success = ((height >= WALKER_STAND_HEIGHT) & moving).astype(jnp.float32)
    return total, {"velocity": speed, "success": success, "stand": stand, "move": move}


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (PlaygroundWalkerSpeed,)
