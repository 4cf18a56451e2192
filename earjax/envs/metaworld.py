"""Meta-World MT10 stepped on the host, for the same agents, replay and jitted epoch.

Meta-World cannot run on MJX (its collision pairs are not supported; Metaworld#450) and
has no JAX port, so its physics stays on the host: ``envpool`` 1.2.5's native C++
Meta-World v3 (its own MuJoCo; ``pip install '.[metaworld]'``).  ``HostBatch`` has the
interface of ``envs.AutoResetBatch`` (``reset``/``step`` of the whole batch, the same
``State`` fields) and calls envpool through ``jax.experimental.io_callback``: the
Trainer's epoch stays one jitted ``lax.scan``, each env step one host call that sends
the batch's actions and returns its transitions; the replay and the gradient steps
never leave the device.  One envpool pool per task (envpool's Meta-World pools hold one
task each), all pools stepped at once (``send``, then ``recv``).

The task set is MT10 (Yu et al. 2019, Meta-World's ``MT10``), v3 versions.  Where it
differs from Meta-World's own benchmark (WORKSPACE.md, "Meta-World MT10"):
- goals and object positions: Meta-World's ``MT10`` gives each task 50 fixed
  variations and picks one per episode; envpool draws fresh positions at every reset
  (Meta-World's ``_freeze_rand_vec = False``), a continuum of variations;
- observations are Meta-World's MT setting (``partially_observable=False``: the goal is
  in the last 3 of the 39 entries); the task's one-hot is the agent's input, not
  appended to the observation;
- ``success`` is envpool's ``info["success"]`` (Meta-World's per-step flag); an
  evaluation episode succeeds if one step does (``success_rule = "any"`` in the MT10
  configs), as Meta-World counts.

A host env cannot be vmapped per env, so the LTE tools (interpolation, CEM) do not run
on it; its state lives in the pools, not in the checkpoint: a resumed run restarts the
episodes in progress (``Trainer.restored``).
"""
from __future__ import annotations

import importlib
from typing import ClassVar

import jax
from jax.experimental import io_callback
import jax.numpy as jnp
import ml_collections
import numpy as np

from earjax.envs.base import State, check_positive_int, configured

# Meta-World's MT10, in its order (metaworld ``_MT10_V3``; the task index is the one-hot's).
MT10 = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
        "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3",
        "window-open-v3", "window-close-v3")
OBSERVATION_SIZE = 39
ACTION_SIZE = 4


def envpool_id(task: str) -> str:
  """envpool's id of a Meta-World task: ``pick-place-v3`` -> ``MetaWorld/PickPlace-v3``."""
  name, version = task.rsplit("-", 1)
  return "MetaWorld/" + "".join(p[:1].upper() + p[1:] for p in name.split("-")) + \
      f"-{version}"


def _envpool():
  try:
    return importlib.import_module("envpool")
  except ImportError as e:
    raise ValueError("metaworld_mt10 needs envpool: pip install '.[metaworld]' (make run "
                     "installs it)") from e


class MetaWorldMT10:
  """MT10's ten tasks as one family on the host; task parameter = the task's index."""
  name: ClassVar[str] = "metaworld_mt10"
  task_param_size: ClassVar[int] = 1
  task_param_names: ClassVar[tuple[str, ...]] = ("task",)
  BACKENDS: ClassVar[tuple[str, ...]] = ("envpool",)
  on_host: ClassVar[bool] = True
  differentiable: ClassVar[bool] = False   # stepped by envpool on the host
  observation_size = OBSERVATION_SIZE
  action_size = ACTION_SIZE
  dt = 0.0125   # Meta-World: MuJoCo timestep 0.0025 s, frame_skip 5

  def with_worlds(self, worlds: int) -> "MetaWorldMT10":
    """The env itself: a host batch holds its own envs (``TaskFamilyEnv.with_worlds``)."""
    del worlds
    return self

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """Meta-World's 500-step episodes."""
    return ml_collections.ConfigDict({"episode_length": 500})

  def __init__(self, config: ml_collections.ConfigDict | None = None, **overrides):
    _envpool()
    self.config = configured(self.name, self.default_config(), config, **overrides)
    self.episode_length = check_positive_int("episode_length", self.config.episode_length)
    self.train_tasks = np.arange(len(MT10), dtype=np.float32)[:, None]
    self.adapt_tasks = np.zeros((0, 1), np.float32)
    self.task_names = MT10
    self.adapt_task_names = ()

  @property
  def num_tasks(self) -> int:
    return len(self.train_tasks)

  def metric_names(self) -> tuple[str, ...]:
    return ("success",)

  def velocity_target(self, task_param) -> None:
    del task_param
    return None

  def readings(self) -> tuple:
    """None beside return, length and success (``TaskFamilyEnv.readings``)."""
    return ()

  def task_name(self, task_param) -> str:
    return MT10[int(np.asarray(task_param).reshape(-1)[0])]

  def batch(self) -> "HostBatch":
    """A new batch of host envs (its own envpool pools)."""
    return HostBatch(self)

  def reset(self, key, task_param):
    raise ValueError(f"{self.name} is stepped on the host in batches (envs.training_batch);"
                     " per-env rollouts (interpolation, CEM, rendering) need an MJX or "
                     "pure-JAX family")

  step = reset


class HostBatch:
  """``AutoResetBatch``'s interface over envpool pools, callable inside ``jax.jit``.

  ``reset(keys, task_params)`` (re)creates the pools, seeded from ``keys[0]``, with env
  i on task ``task_params[i]``; ``step`` steps every env and resets those whose episode
  ended, returning the terminal observation in ``info["terminal_obs"]``.
  """
  on_host = True

  def __init__(self, family: MetaWorldMT10):
    self.env = family
    self.episode_length = family.episode_length
    self._pools: list[tuple[object, np.ndarray]] = []   # (pool, the batch rows it holds)
    self._num_envs = 0

  # ---- inside jit ------------------------------------------------------------------------
  def reset(self, keys: jax.Array, task_params: jax.Array) -> State:
    if task_params.ndim != 2 or keys.shape[0] != task_params.shape[0]:
      raise ValueError(f"expected B keys and task_params [B, 1], got keys {keys.shape} and "
                       f"task_params {task_params.shape}")
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
      keys = jax.random.key_data(keys)
    batch = keys.shape[0]
    obs = io_callback(self._host_reset, jax.ShapeDtypeStruct((batch, OBSERVATION_SIZE),
                                                             jnp.float32),
                      keys, task_params, ordered=True)
    zero = jnp.zeros((batch,), jnp.float32)
    return State(data=jnp.zeros((batch,), jnp.int32), obs=obs, reward=zero, done=zero,
                 metrics={"success": zero},
                 info={"task_param": task_params, "steps": jnp.zeros((batch,), jnp.int32),
                       "truncation": zero, "terminal_obs": obs})

  def step(self, state: State, actions: jax.Array) -> State:
    batch = state.obs.shape[0]
    if actions.shape != (batch, ACTION_SIZE):
      raise ValueError(f"actions must have shape {(batch, ACTION_SIZE)}, got {actions.shape}")
    f32 = lambda *shape: jax.ShapeDtypeStruct((batch,) + shape, jnp.float32)
    out = io_callback(self._host_step,
                      {"obs": f32(OBSERVATION_SIZE), "terminal_obs": f32(OBSERVATION_SIZE),
                       "reward": f32(), "terminated": f32(), "truncated": f32(),
                       "success": f32(), "steps": jax.ShapeDtypeStruct((batch,), jnp.int32)},
                      actions, ordered=True)
    done = jnp.maximum(out["terminated"], out["truncated"])
    truncation = out["truncated"] * (1.0 - out["terminated"])
    info = dict(state.info, steps=jnp.where(done > 0, 0, out["steps"]),
                truncation=truncation, terminal_obs=out["terminal_obs"])
    return state.replace(data=out["steps"], obs=out["obs"], reward=out["reward"], done=done,
                         metrics={"success": out["success"]}, info=info)

  # ---- on the host -----------------------------------------------------------------------
  def _host_reset(self, keys: np.ndarray, task_params: np.ndarray) -> np.ndarray:
    envpool = _envpool()
    tasks = np.asarray(task_params)[:, 0].astype(np.int64)
    if tasks.min() < 0 or tasks.max() >= len(MT10):
      raise ValueError(f"MT10 task indices are 0..{len(MT10) - 1}, got {sorted(set(tasks))}")
    seed = int(np.asarray(keys).reshape(len(tasks), -1)[0, -1])
    self.close()
    self._num_envs = len(tasks)
    obs = np.zeros((len(tasks), OBSERVATION_SIZE), np.float32)
    for task in sorted(set(tasks.tolist())):
      rows = np.flatnonzero(tasks == task)
      pool = envpool.make_gymnasium(
          envpool_id(MT10[task]), num_envs=len(rows), batch_size=len(rows),
          seed=(seed + 7919 * task) % (2 ** 31), num_threads=1,
          partially_observable=False, max_episode_steps=self.episode_length)
      self._pools.append((pool, rows))
      pool_obs, info = pool.reset()
      obs[rows[info["env_id"]]] = pool_obs
    return obs

  def _host_step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
    if len(actions) != self._num_envs:
      raise RuntimeError(f"host envs were reset for {self._num_envs} envs, stepped with "
                         f"{len(actions)} actions")
    actions = np.asarray(actions, np.float32)
    n = self._num_envs
    out = {"obs": np.zeros((n, OBSERVATION_SIZE), np.float32), "reward": np.zeros(n, np.float32),
           "terminated": np.zeros(n, np.float32), "truncated": np.zeros(n, np.float32),
           "success": np.zeros(n, np.float32), "steps": np.zeros(n, np.int32)}
    for pool, rows in self._pools:   # every pool steps at once
      pool.send(actions[rows], np.arange(len(rows), dtype=np.int32))
    for pool, rows in self._pools:
      obs, reward, terminated, truncated, info = pool.recv()
      at = rows[info["env_id"]]
      out["obs"][at], out["reward"][at] = obs, reward
      out["terminated"][at], out["truncated"][at] = terminated, truncated
      out["success"][at], out["steps"][at] = info["success"], info["elapsed_step"]
    out["terminal_obs"] = out["obs"].copy()
    done = (out["terminated"] > 0) | (out["truncated"] > 0)
    for pool, rows in self._pools:   # fresh episodes where one ended, in the same step
      ended = np.flatnonzero(done[rows])
      if len(ended):
        obs, info = pool.reset(ended.astype(np.int32))
        out["obs"][rows[info["env_id"]]] = obs
    return out

  def close(self) -> None:
    for pool, _ in self._pools:
      pool.close()
    self._pools = []


# The families this module registers (``earjax.envs`` finds them at import).
FAMILIES = (MetaWorldMT10,)
