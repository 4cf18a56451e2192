"""The functional env of one task family, and its MuJoCo XLA implementation.

One env instance serves every task of its family: the task parameter is part of the env
state (``state.info["task_param"]``), so ``jax.vmap(env.step)`` over a batch that holds
different task parameters steps every task of the family at once.

``TaskFamilyEnv`` is the interface every family has (pure ``reset``/``step``, the public
``reward`` of a transition under any task, task sets and names); a family supplies its
physics through ``_physics_reset``/``_physics_step``.  ``MjxFamilyEnv`` is that physics for
the MuJoCo families: MJX (JAX implementation) on the MJX-tuned MJCF models that brax
ships, the ``n_frames`` substeps of one control step a fully unrolled ``lax.scan`` (on CPU
~30x faster under ``vmap`` than a rolled loop, traced once; see WORKSPACE.md).
"""
from __future__ import annotations

import abc
import contextlib
import copy
import functools
import importlib
import importlib.util
import io
import os
import re
from typing import Any, ClassVar

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import mujoco
import numpy as np

from earjax.envs import readings as readings_lib


def assets_dir() -> str:
  """brax's MJCF assets, found without importing brax (its import costs seconds)."""
  spec = importlib.util.find_spec("brax")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("the MuJoCo families load brax's MJCF assets: pip install brax")
  return os.path.join(spec.submodule_search_locations[0], "envs", "assets")


@functools.cache
def _mjx():
  """``mujoco.mjx``, imported when an MJX env is first built: the import takes ~2 s (most
  of it MuJoCo Warp's modules, imported whenever Warp is installed), which the pure-JAX
  and host families never need.  It prints "Failed to import warp" where the ``warp``
  extra is absent; that line is noise unless ``impl=warp`` is asked, which says so."""
  with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # pylint: disable=g-import-not-at-top
  return mjx


def _load_model(xml_file: str) -> mujoco.MjModel:
  """Compiles one of brax's MJCF assets.

  MuJoCo 4 deprecates the ``settotalmass`` compiler attribute (HalfCheetah's asset has
  it) and logs a warning to ``MUJOCO_LOG.TXT`` in the working directory; the same
  scaling is applied here the way the warning asks, through ``mj_setTotalmass``.
  """
  with open(os.path.join(assets_dir(), xml_file)) as f:
    xml = f.read()
  match = re.search(r'\s*settotalmass="([^"]+)"', xml)
  if match:
    xml = xml.replace(match.group(0), "")
  model = mujoco.MjModel.from_xml_string(xml)
  if match:
    mujoco.mj_setTotalmass(model, float(match.group(1)))
    mujoco.mj_setConst(model, mujoco.MjData(model))
  return model


# Goal-oriented success, earjax's choice (the EAR paper reports returns; TSAC's sparse
# reward and the success rates every agent reports are defined here): a velocity task is
# met on a step whose velocity is within 10 % of its target (at least 0.1 m/s).  Each
# family's ``reward`` returns the step's indicator as the metric ``success`` (0 or 1).
# The velocity families carry it as their setting ``success_velocity_fraction``
# (``with_velocity_success``).
SUCCESS_VELOCITY_FRACTION = 0.1


def with_velocity_success(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` (a velocity family's ``default_config``) with ``success_velocity_fraction``:
  a step meets its velocity task within that fraction of the target (at least of 1)."""
  config.success_velocity_fraction = SUCCESS_VELOCITY_FRACTION
  return config


# The meta-RL references' task protocol for a velocity family (PEARL's oyster,
# ``rlkit/envs/half_cheetah_vel.py`` and ``launch_experiment.py``: 130 targets drawn from
# U(0, 3) after ``np.random.seed(1337)``, the first 100 trained, the last 30 held out):
# ``task_interval`` (low, high) draws ``num_train_tasks`` + ``num_test_tasks`` targets
# that way with ``task_seed``; () keeps the family's own targets.
SAMPLED_TASKS = {"task_interval": (), "num_train_tasks": 100, "num_test_tasks": 30,
                 "task_seed": 1337}


def with_sampled_tasks(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` (a one-parameter family's ``default_config``) with ``SAMPLED_TASKS``."""
  for key, value in SAMPLED_TASKS.items():
    config[key] = value
  return config


def sampled_tasks(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray] | None:
  """(train [n, 1], held-out [m, 1]) targets drawn from ``config.task_interval`` as the
  references do (``SAMPLED_TASKS``), or None where the family keeps its own."""
  interval = tuple(config.get("task_interval", ()))
  if not interval:
    return None
  if (len(interval) != 2 or not all(isinstance(v, (int, float)) for v in interval)
      or not interval[0] < interval[1]):
    raise ValueError(f"task_interval must be () or (low, high) with low < high, got "
                     f"{interval!r}")
  train = check_positive_int("num_train_tasks", config.num_train_tasks)
  test = check_positive_int("num_test_tasks", config.num_test_tasks)
  targets = np.random.RandomState(config.task_seed).uniform(
      interval[0], interval[1], size=(train + test,))
  return targets[:train, None], targets[train:, None]


def velocity_success(velocity: jax.Array, target: jax.Array, fraction: float) -> jax.Array:
  """1.0 where |velocity - target| <= fraction max(1, |target|), else 0.0."""
  tolerance = fraction * jnp.maximum(1.0, jnp.abs(target))
  return (jnp.abs(velocity - target) <= tolerance).astype(jnp.float32)


@struct.dataclass
class State:
  """One env's state; every field gets a leading axis under ``vmap``.  ``data`` is the
  physics state (``mjx.Data``, brax's pipeline state, or a family's own struct)."""
  data: Any
  obs: jax.Array
  reward: jax.Array
  done: jax.Array
  metrics: dict[str, jax.Array]
  info: dict[str, Any]


def check_positive_int(option: str, value) -> int:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{option} must be a positive integer, got {value!r}")
  return int(value)


def configured(family: str, defaults: ml_collections.ConfigDict,
               config: ml_collections.ConfigDict | dict | None = None,
               **overrides) -> ml_collections.ConfigDict:
  """``defaults`` (a family's ``default_config()``) with the keys of ``config`` and then
  ``overrides`` replaced; a key the family does not have is a one-line ValueError, as is
  a value of another type than the default's (an int where a float is declared passes)."""
  out = ml_collections.ConfigDict(defaults.to_dict())
  given = dict(config.items() if config is not None else ())
  given.update(overrides)
  unknown = sorted(set(given) - set(out))
  if unknown:
    raise ValueError(f"unknown option(s) {', '.join(unknown)} for env {family!r}; valid "
                     f"options: {', '.join(out)}")
  for key, value in given.items():
    want = type(out[key])
    if want is tuple and isinstance(value, list):   # a saved config.json's tuples
      value = tuple(value)
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          if want is float else
          isinstance(value, (int, np.integer)) and not isinstance(value, bool)
          if want is int else isinstance(value, want))
    if not ok:
      raise ValueError(f"env option {key} of {family} must be of type {want.__name__}, "
                       f"got {value!r}")
    out[key] = value
  return out


class TaskFamilyEnv(abc.ABC):
  """A task family: pure ``reset``/``step`` over (physics state, task parameter).

  Subclasses set ``name``, ``task_param_size``, ``task_param_names``, ``observation_size``,
  ``action_size``, ``dt`` and implement the task sets, ``_physics_reset``,
  ``_physics_step``, ``_observation``, ``reward`` and ``_terminated``.
  """
  name: ClassVar[str]
  task_param_size: ClassVar[int]
  task_param_names: ClassVar[tuple[str, ...]]
  # Physics implementations the family offers, its default first.
  BACKENDS: ClassVar[tuple[str, ...]] = ("jax",)
  observation_size: int
  action_size: int
  dt: float
  # Whether gradients flow through ``step`` (MJX's Warp implementation has none).
  differentiable: bool = True

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """The family's settings, each declared here once (MuJoCo Playground's
    ``default_config``): a training config's ``env`` section is this, and
    ``envs.make(name, config)`` takes it.  ``episode_length``: control steps before an
    episode is truncated."""
    return ml_collections.ConfigDict({"episode_length": 200})

  def __init__(self, config: ml_collections.ConfigDict | None = None, **overrides):
    """The family with ``default_config()`` updated by ``config`` then ``overrides``."""
    self.config = configured(self.name, self.default_config(), config, **overrides)
    self.episode_length = check_positive_int("episode_length", self.config.episode_length)
    train, adapt = sampled_tasks(self.config) or (self._train_tasks(), self._adapt_tasks())
    self.train_tasks = np.asarray(train, np.float32)
    self.adapt_tasks = np.asarray(adapt, np.float32).reshape(-1, self.task_param_size)
    self.task_names = tuple(self.task_name(p) for p in self.train_tasks)
    self.adapt_task_names = tuple(self.task_name(p) for p in self.adapt_tasks)

  @property
  def num_tasks(self) -> int:
    return len(self.train_tasks)

  # ---- the public, pure, jittable API -------------------------------------------------
  def reset(self, key: jax.Array, task_param: jax.Array) -> State:
    """A fresh episode of the task ``task_param`` (shape ``[task_param_size]``)."""
    task_param = self._check(task_param, (self.task_param_size,), "task_param")
    data = self._physics_reset(key)
    zero = jnp.zeros((), jnp.float32)
    metrics = {k: zero for k in self.metric_names()}
    return State(data=data, obs=self._observation(data), reward=zero, done=zero,
                 metrics=metrics, info={"task_param": task_param})

  def step(self, state: State, action: jax.Array) -> State:
    """One control step with ``action`` (``[action_size]``)."""
    action = self._check(action, (self.action_size,), "action")
    data = self._physics_step(state.data, action)
    reward, metrics = self.reward(state.data, data, action, state.info["task_param"])
    done = self._terminated(data).astype(jnp.float32)
    return state.replace(data=data, obs=self._observation(data), reward=reward,
                         done=done, metrics=metrics)

  def select(self, pred: jax.Array, new_data, data):
    """``new_data`` where ``pred`` (one env's bool, traced) else ``data``: the
    auto-reset's merge of a fresh episode's physics state into a stepped one."""
    return jax.tree.map(lambda new, old: jnp.where(pred, new, old), new_data, data)

  def with_worlds(self, worlds: int) -> "TaskFamilyEnv":
    """This env for batches of up to ``worlds`` envs stepped together (vmapped): only
    an implementation with batch-wide buffers (MJX Warp's contacts) needs it; here the
    env itself."""
    del worlds
    return self

  def metric_names(self) -> tuple[str, ...]:
    """Names of ``state.metrics``; ``velocity`` is the one the reward tracks, ``success``
    the step's goal indicator (0 or 1)."""
    data = jax.eval_shape(self._physics_reset, jax.random.PRNGKey(0))
    out = jax.eval_shape(lambda d: self.reward(d, d, jnp.zeros(self.action_size),
                                               jnp.zeros(self.task_param_size))[1], data)
    return tuple(out)

  def velocity_target(self, task_param) -> float | None:
    """The velocity a task asks for, or None."""
    del task_param
    return None

  def readings(self) -> tuple[readings_lib.Reading, ...]:
    """What evaluation reads of this family's episodes beside return, length and success
    (``earjax.evaluation``): the forward velocity against ``velocity_target`` where the
    family's metrics have a ``velocity``."""
    if "velocity" not in self.metric_names():
      return ()
    return (readings_lib.velocity(self.velocity_target),)

  def task_name(self, task_param: np.ndarray) -> str:
    """A task's name, e.g. ``vel2`` (used in metrics keys and on the command line)."""
    return "_".join(f"{n}{v:g}" for n, v in zip(self.task_param_names, task_param))

  @abc.abstractmethod
  def reward(self, data_before, data, action: jax.Array,
             task_param: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(reward, metrics) of the transition ``data_before -> data`` under ``action`` for
    the task ``task_param``: any task, not only the env's own (interpolation scores a
    rollout under both source tasks).  ``metrics`` has at least ``velocity`` and
    ``success`` (the goal-oriented indicator of the step, 0 or 1)."""

  @staticmethod
  def qpos(data) -> jax.Array:
    """Positions of the physics state (``mjx.Data.qpos``, brax's ``State.q``, ...)."""
    return data.q if hasattr(data, "q") else data.qpos

  @staticmethod
  def qvel(data) -> jax.Array:
    """Velocities of the physics state (``mjx.Data.qvel``, brax's ``State.qd``, ...)."""
    return data.qd if hasattr(data, "qd") else data.qvel

  # ---- helpers for families ------------------------------------------------------------
  @staticmethod
  def _check(x, shape, what) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    if x.shape != shape:
      raise ValueError(f"{what} must have shape {shape} per env, got {x.shape} "
                       f"(vmap over the leading axis for a batch)")
    return x

  # ---- what a family defines -------------------------------------------------------------
  @abc.abstractmethod
  def _train_tasks(self) -> np.ndarray:
    """The training task parameters, one row a task."""

  @abc.abstractmethod
  def _adapt_tasks(self) -> np.ndarray:
    """The held-out adaptation task parameters (fixed, never drawn at run time)."""

  @abc.abstractmethod
  def _physics_reset(self, key: jax.Array):
    """A randomised initial physics state."""

  @abc.abstractmethod
  def _physics_step(self, data, action: jax.Array):
    """The physics state one control step later."""

  @abc.abstractmethod
  def _observation(self, data) -> jax.Array:
    """The observation of ``data``."""

  @abc.abstractmethod
  def _terminated(self, data) -> jax.Array:
    """Whether the episode ends in ``data`` (bool scalar)."""


class MjxFamilyEnv(TaskFamilyEnv):
  """A MuJoCo family stepped by MJX (or one of brax's pipelines, ``BRAX_BACKENDS``).

  Subclasses set ``xml_file``, ``n_frames`` and ``reset_noise_scale`` and implement
  ``_init_qpos_qvel``; their observation, reward and termination read qpos/qvel only (the
  MJX reset state is not forwarded: ``_physics_reset``).
  """
  xml_file: ClassVar[str]
  n_frames: ClassVar[int]
  reset_noise_scale: ClassVar[float]

  IMPLS = ("jax", "warp")
  BACKENDS = ("mjx",)
  # brax pipelines a family offers besides MJX: name -> (timestep, n_frames, gear), the
  # settings brax itself runs that pipeline with (the control step dt is kept).
  BRAX_BACKENDS: ClassVar[dict[str, tuple[float, int, tuple[float, ...]]]] = {}

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """The episode length and the physics settings:

    - ``solver_iterations``, ``ls_iterations``: the solver budget, 4 Newton iterations
      and the line search capped at 8 (brax's asset asks 50, which converges within 8
      here and costs 3x more; fewer, 1 and 4 as Playground tunes, let MJX diverge to NaN
      under bang-bang actions; WORKSPACE.md);
    - ``unroll_substeps``: the substeps unrolled in the compiled step (fast to run, slow
      to compile) or a rolled loop (compiles several times faster, runs several times
      slower on CPU: for short rollouts such as the env tests);
    - ``impl``: MJX's implementation, ``jax`` or ``warp`` (NVIDIA Warp kernels called
      through XLA's FFI; the ``warp`` extra; no gradients; ``with_worlds`` sizes its
      contact buffers for a batch);
    - ``backend``: ``mjx`` or one of brax's pipelines the family offers
      (``BRAX_BACKENDS``)."""
    config = super().default_config()
    config.solver_iterations = 4
    config.ls_iterations = 8
    config.unroll_substeps = True
    config.impl = "jax"
    config.backend = "mjx"
    return config

  def __init__(self, config: ml_collections.ConfigDict | None = None, **overrides):
    c = configured(self.name, self.default_config(), config, **overrides)
    impl, backend = c.impl, c.backend
    if impl not in self.IMPLS:
      raise ValueError(f"impl must be one of {', '.join(self.IMPLS)}, got {impl!r}")
    if impl == "warp" and backend != "mjx":
      raise ValueError(f"impl=warp is MJX's; backend {backend!r} has no Warp implementation")
    if impl == "warp" and importlib.util.find_spec("warp") is None:
      raise ValueError("impl=warp needs NVIDIA Warp: pip install -e '.[warp]' "
                       "(mujoco-mjx[warp], warp-lang)")
    model = _load_model(self.xml_file)
    self._unroll = self.n_frames if c.unroll_substeps else 1
    model.opt.iterations = check_positive_int("solver_iterations", c.solver_iterations)
    model.opt.ls_iterations = check_positive_int("ls_iterations", c.ls_iterations)
    self.mj_model = model
    mjx = _mjx()
    self.mjx_model = mjx.put_model(model)
    self._data0 = mjx.make_data(self.mjx_model)
    self.impl = impl
    if impl == "warp":
      # MJX's JAX data holds the most contacts and constraint rows one world can have
      # (its arrays are static); Warp's holds ``naconmax`` contacts for all the worlds
      # stepped together and ``njmax`` rows per world.
      self._contacts_per_world = max(1, self._data0._impl.contact.dist.shape[0])
      self._njmax = max(1, self._data0._impl.efc_J.shape[0])
      self.mjx_model = mjx.put_model(model, impl="warp")
      self.differentiable = False
      self._data0 = self._warp_data(1)
    self.dt = float(model.opt.timestep * self.n_frames)
    self.backend = backend
    self._substeps = self.n_frames
    if backend != "mjx":
      self._init_brax(backend)
      self._unroll = self._substeps if c.unroll_substeps else 1
    self.action_size = int(model.nu)
    self.observation_size = int(jax.eval_shape(self._observation, self._data0).shape[-1])
    super().__init__(c)

  @property
  def substeps(self) -> int:
    """Physics substeps of one control step (``n_frames``, or the brax pipeline's)."""
    return self._substeps

  def _warp_data(self, worlds: int):
    return _mjx().make_data(self.mj_model, impl="warp", njmax=self._njmax,
                         naconmax=self._contacts_per_world * worlds)

  def with_worlds(self, worlds: int) -> "MjxFamilyEnv":
    """Under ``impl=warp``, a copy whose contact buffer holds ``worlds`` envs' contacts
    (a vmapped Warp step runs every world in one call, their contacts in one buffer of
    ``naconmax``); the env itself otherwise."""
    if self.impl != "warp":
      return self
    env = copy.copy(self)
    env._data0 = self._warp_data(check_positive_int("worlds", worlds))  # pylint: disable=protected-access
    return env

  def select(self, pred, new_data, data):
    """MJX's ``Data.where``: Warp's contact and constraint buffers are shared by the
    batch's worlds, not per env, and are kept as they are."""
    if self.backend == "mjx":
      return data.where(pred, new_data)
    return super().select(pred, new_data, data)

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

  def _physics_reset(self, key):
    """The initial qpos/qvel in MJX's zero data, not forwarded: ``mjx.step`` recomputes
    every derived quantity from qpos/qvel before it integrates (and ``mjx.forward`` leaves
    the solver's warm start alone), so the step from this state equals the step from its
    ``mjx.forward``, and the families' observations, rewards and terminations read only
    qpos/qvel.  Skipping it drops one forward pass per env and control step from the
    auto-reset (``AutoResetBatch`` computes a fresh reset at every step) and one MJX
    forward from every compiled program that resets."""
    qpos, qvel = self._init_qpos_qvel(key)
    if self.backend == "mjx":
      return self._data0.replace(qpos=qpos, qvel=qvel)
    return self._brax_pipeline.init(self._brax_sys, qpos, qvel)

  def _physics_step(self, data, action):
    """``n_frames`` substeps, traced once (unrolled in the compiled code by default)."""
    if self.backend == "mjx":
      step = _mjx().step
      substep = lambda data: step(self.mjx_model, data)
      data = data.replace(ctrl=action)
    else:
      substep = lambda data: self._brax_pipeline.step(self._brax_sys, data, action)
    data, _ = jax.lax.scan(lambda data, _: (substep(data), None), data, None,
                           length=self._substeps, unroll=self._unroll)
    return data

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

  @abc.abstractmethod
  def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gym's randomised initial joint positions and velocities."""
