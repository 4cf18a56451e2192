"""The functional MJX environment of one task family.

One env instance serves every task of its family: the task parameter is part of the env
state (``state.info["task_param"]``), so ``jax.vmap(env.step)`` over a batch that holds
different task parameters steps every task of the family at once.

Physics: MuJoCo XLA (MJX, JAX implementation) on the MJX-tuned MJCF models that brax
ships.  The ``n_frames`` physics substeps of one control step are a fully unrolled
``lax.scan``: on CPU an unrolled step runs ~30x faster under ``vmap`` than the same
substeps in a rolled loop, and the scan traces the substep once (measured, see WORKSPACE.md).
"""
from __future__ import annotations

import abc
import importlib
import os
import re
from typing import Any, ClassVar

import brax
from flax import struct
import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx
import numpy as np

ASSETS_DIR = os.path.join(os.path.dirname(brax.__file__), "envs", "assets")


def _load_model(xml_file: str) -> mujoco.MjModel:
  """Compiles one of brax's MJCF assets.

  MuJoCo 4 deprecates the ``settotalmass`` compiler attribute (HalfCheetah's asset has
  it) and logs a warning to ``MUJOCO_LOG.TXT`` in the working directory; the same
  scaling is applied here the way the warning asks, through ``mj_setTotalmass``.
  """
  with open(os.path.join(ASSETS_DIR, xml_file)) as f:
    xml = f.read()
  match = re.search(r'\s*settotalmass="([^"]+)"', xml)
  if match:
    xml = xml.replace(match.group(0), "")
  model = mujoco.MjModel.from_xml_string(xml)
  if match:
    mujoco.mj_setTotalmass(model, float(match.group(1)))
    mujoco.mj_setConst(model, mujoco.MjData(model))
  return model


@struct.dataclass
class State:
  """One env's state; every field gets a leading axis under ``vmap``."""
  data: mjx.Data
  obs: jax.Array
  reward: jax.Array
  done: jax.Array
  metrics: dict[str, jax.Array]
  info: dict[str, Any]


class TaskFamilyEnv(abc.ABC):
  """Base class: loads the model, steps MJX, checks shapes; families define the rest.

  Subclasses set the class attributes below and implement ``_init_qpos_qvel``,
  ``_observation``, ``_reward`` and ``_terminated``.
  """
  name: ClassVar[str]
  xml_file: ClassVar[str]
  n_frames: ClassVar[int]
  task_param_size: ClassVar[int]
  task_param_names: ClassVar[tuple[str, ...]]
  reset_noise_scale: ClassVar[float]

  # Options a user may override through ``earjax.envs.make(name, **overrides)``.
  OPTIONS = ("solver_iterations", "ls_iterations", "episode_length", "backend")
  # brax pipelines a family offers besides MJX: name -> (timestep, n_frames, gear), the
  # settings brax itself runs that pipeline with (the control step dt is kept).
  BRAX_BACKENDS: ClassVar[dict[str, tuple[float, int, tuple[float, ...]]]] = {}

  def __init__(self, *, solver_iterations: int = 4, ls_iterations: int = 8,
               episode_length: int = 200, backend: str = "mjx"):
    for option, value in (("solver_iterations", solver_iterations),
                          ("ls_iterations", ls_iterations),
                          ("episode_length", episode_length)):
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{option} must be a positive integer, got {value!r}")
    model = _load_model(self.xml_file)
    # Solver budget: 4 Newton iterations, line search capped at 8 (brax's asset asks 50,
    # which converges within 8 here and costs 3x more).  Fewer iterations (1 and 4, as
    # Playground tunes) let MJX diverge to NaN under bang-bang actions; see WORKSPACE.md.
    model.opt.iterations = solver_iterations
    model.opt.ls_iterations = ls_iterations
    self.mj_model = model
    self.mjx_model = mjx.put_model(model)
    self._data0 = mjx.make_data(self.mjx_model)
    self.episode_length = int(episode_length)
    self.dt = float(model.opt.timestep * self.n_frames)
    self.backend = backend
    self._substeps = self.n_frames
    if backend != "mjx":
      self._init_brax(backend)
    self.action_size = int(model.nu)
    self.observation_size = int(
        jax.eval_shape(self._observation, self._data0).shape[-1])
    self.train_tasks = np.asarray(self._train_tasks(), np.float32)
    self.adapt_tasks = np.asarray(self._adapt_tasks(), np.float32).reshape(
        -1, self.task_param_size)
    self.task_names = tuple(self._task_name(p) for p in self.train_tasks)
    self.adapt_task_names = tuple(self._task_name(p) for p in self.adapt_tasks)

  def _init_brax(self, backend: str) -> None:
    """Steps brax's ``backend`` pipeline instead of MJX, with brax's own settings for it."""
    if backend not in self.BRAX_BACKENDS:
      valid = ", ".join(("mjx",) + tuple(self.BRAX_BACKENDS))
      raise ValueError(f"backend {backend!r} is not offered for {self.name}; valid: {valid}")
    from brax.io import mjcf  # pylint: disable=g-import-not-at-top
    timestep, self._substeps, gear = self.BRAX_BACKENDS[backend]
    sys = mjcf.load_model(self.mj_model).tree_replace({"opt.timestep": timestep})
    self._brax_sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.asarray(gear)))
    self._brax_pipeline = importlib.import_module(f"brax.{backend}.pipeline")
    assert abs(timestep * self._substeps - self.dt) < 1e-9, "the control step dt is kept"

  @staticmethod
  def qpos(data) -> jax.Array:
    """Joint positions of the physics state (``mjx.Data.qpos`` or brax's ``State.q``)."""
    return data.qpos if isinstance(data, mjx.Data) else data.q

  @staticmethod
  def qvel(data) -> jax.Array:
    """Joint velocities of the physics state (``mjx.Data.qvel`` or brax's ``State.qd``)."""
    return data.qvel if isinstance(data, mjx.Data) else data.qd

  @property
  def num_tasks(self) -> int:
    return len(self.train_tasks)

  # ---- the public, pure, jittable API -------------------------------------------------
  def reset(self, key: jax.Array, task_param: jax.Array) -> State:
    """A fresh episode of the task ``task_param`` (shape ``[task_param_size]``)."""
    task_param = self._check(task_param, (self.task_param_size,), "task_param")
    qpos, qvel = self._init_qpos_qvel(key)
    if self.backend == "mjx":
      data = mjx.forward(self.mjx_model, self._data0.replace(qpos=qpos, qvel=qvel))
    else:
      data = self._brax_pipeline.init(self._brax_sys, qpos, qvel)
    zero = jnp.zeros((), jnp.float32)
    metrics = {k: zero for k in self.metric_names()}
    return State(data=data, obs=self._observation(data), reward=zero, done=zero,
                 metrics=metrics, info={"task_param": task_param})

  def step(self, state: State, action: jax.Array) -> State:
    """One control step of ``n_frames`` MJX substeps with ``action`` (``[action_size]``)."""
    action = self._check(action, (self.action_size,), "action")
    if self.backend == "mjx":
      substep = lambda data: mjx.step(self.mjx_model, data)
      data = state.data.replace(ctrl=action)
    else:
      substep = lambda data: self._brax_pipeline.step(self._brax_sys, data, action)
      data = state.data
    # Traced once, unrolled in the compiled code (see WORKSPACE.md: physics settings).
    data, _ = jax.lax.scan(lambda data, _: (substep(data), None), data, None,
                           length=self._substeps, unroll=self._substeps)
    reward, metrics = self._reward(state.data, data, action, state.info["task_param"])
    done = self._terminated(data).astype(jnp.float32)
    return state.replace(data=data, obs=self._observation(data), reward=reward,
                         done=done, metrics=metrics)

  def metric_names(self) -> tuple[str, ...]:
    """Names of ``state.metrics``; ``velocity`` is the one the reward tracks."""
    out = jax.eval_shape(lambda: self._reward(
        self._data0, self._data0, jnp.zeros(self.action_size),
        jnp.zeros(self.task_param_size))[1])
    return tuple(out)

  def velocity_target(self, task_param) -> float | None:
    """The velocity a task asks for (evaluation reports |velocity - target|), or None."""
    del task_param
    return None

  # ---- helpers for families ------------------------------------------------------------
  @staticmethod
  def _check(x, shape, what) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    if x.shape != shape:
      raise ValueError(f"{what} must have shape {shape} per env, got {x.shape} "
                       f"(vmap over the leading axis for a batch)")
    return x

  def _uniform_noise(self, key, qpos0, nv):
    """Gym's reset for Hopper/Walker2d: qpos, qvel += U(-s, s)."""
    k1, k2 = jax.random.split(key)
    s = self.reset_noise_scale
    qpos = qpos0 + jax.random.uniform(k1, qpos0.shape, minval=-s, maxval=s)
    qvel = jax.random.uniform(k2, (nv,), minval=-s, maxval=s)
    return qpos, qvel

  def _uniform_gaussian_noise(self, key, qpos0, nv):
    """Gym's reset for HalfCheetah/Ant: qpos += U(-s, s), qvel += s * N(0, 1)."""
    k1, k2 = jax.random.split(key)
    s = self.reset_noise_scale
    qpos = qpos0 + jax.random.uniform(k1, qpos0.shape, minval=-s, maxval=s)
    qvel = s * jax.random.normal(k2, (nv,))
    return qpos, qvel

  def _task_name(self, task_param: np.ndarray) -> str:
    return "_".join(f"{n}{v:g}" for n, v in zip(self.task_param_names, task_param))

  # ---- what a family defines -------------------------------------------------------------
  @abc.abstractmethod
  def _train_tasks(self) -> np.ndarray:
    """The training task parameters, one row a task."""

  @abc.abstractmethod
  def _adapt_tasks(self) -> np.ndarray:
    """The held-out adaptation task parameters (fixed, never drawn at run time)."""

  @abc.abstractmethod
  def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gym's randomised initial joint positions and velocities."""

  @abc.abstractmethod
  def _observation(self, data: mjx.Data) -> jax.Array:
    """The Gym observation of ``data``."""

  @abc.abstractmethod
  def _reward(self, data_before: mjx.Data, data: mjx.Data, action: jax.Array,
              task_param: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(reward, metrics) of the transition ``data_before -> data`` under ``action``."""

  @abc.abstractmethod
  def _terminated(self, data: mjx.Data) -> jax.Array:
    """Whether the episode ends in ``data`` (bool scalar)."""
