"""The LTE space as an interface to behaviour: Eq. 1 and rollouts with given LTEs.

``interpolate`` is Eq. 1 of Hua, Chen & Xu (ICLR 2023), Z' = normalize(beta Z_i +
(1 - beta) Z_j).  ``rollout`` runs one 200-step episode of the frozen policy for each of
a batch of (LTE, task parameter, key): everything is vmapped over that batch and scanned
over time, so all interpolated LTEs, or all CEM candidates of all tasks (Algorithm 2),
step in one compiled call.
"""
from __future__ import annotations

from typing import Optional, Sequence

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from earjax.envs import TaskFamilyEnv
from earjax.networks import l2_normalize
from earjax.policy import FrozenPolicy


def check_betas(betas: Sequence[float]) -> np.ndarray:
  """The betas as an array, refusing any outside [0, 1] (Eq. 1 mixes, never extrapolates)."""
  betas = np.asarray(betas, np.float32).reshape(-1)
  bad = [float(b) for b in betas if not 0.0 <= b <= 1.0]
  if bad or betas.size == 0:
    raise ValueError(f"beta must lie in [0, 1], got {bad or 'none'}")
  return betas


def check_lte(lte, lte_dim: int) -> jax.Array:
  """``lte`` as a [..., lte_dim] float array, refusing another last dimension."""
  lte = jnp.asarray(lte, jnp.float32)
  if lte.ndim == 0 or lte.shape[-1] != lte_dim:
    raise ValueError(f"an LTE of this policy has dimension {lte_dim}, got shape "
                     f"{tuple(lte.shape)}")
  return lte


def interpolate(lte_i: jax.Array, lte_j: jax.Array, betas) -> jax.Array:
  """Eq. 1: Z' = normalize(beta Z_i + (1 - beta) Z_j), one row per beta ([len(betas), d]).

  beta = 1 gives Z_i and beta = 0 gives Z_j (both unit vectors already).
  """
  betas = jnp.asarray(check_betas(betas))[:, None]
  lte_i = check_lte(lte_i, np.shape(lte_j)[-1])
  return l2_normalize(betas * lte_i + (1.0 - betas) * jnp.asarray(lte_j))


@struct.dataclass
class Episode:
  """One rollout per batch entry: totals [B] and per-step traces [T, B, ...]."""
  ret: jax.Array             # return under the rollout's own task
  scores: jax.Array          # [B, S] returns under each of ``score_params``
  velocity: jax.Array        # mean forward velocity over the steps alive
  length: jax.Array          # steps alive
  alive: jax.Array           # [T, B], 1 while the episode has not terminated
  metrics: dict              # name -> [T, B]: the env's metrics and ``min_contact``
  obs: Optional[jax.Array]   # [T + 1, B, obs_size] if asked (LSE plots, rendering)
  qpos: Optional[jax.Array]  # [T + 1, B, nq] if asked (rendering)


def min_contact_distance(data) -> jax.Array:
  """The smallest signed distance of MJX's contact candidates (> 0: airborne); +inf
  where the physics state keeps no contacts (brax pipelines)."""
  contact = getattr(getattr(data, "_impl", data), "contact", None)
  if contact is None or contact.dist.size == 0:
    return jnp.full((), jnp.inf)
  return jnp.min(contact.dist)


def rollout(env: TaskFamilyEnv, policy: FrozenPolicy, ltes: jax.Array,
            task_params: jax.Array, keys: jax.Array, stochastic=False, *,
            score_params: Optional[jax.Array] = None, keep_states: bool = False,
            length: Optional[int] = None) -> Episode:
  """One episode per row of ``ltes`` [B, d] on the task ``task_params`` [B, p].

  ``keys`` [B]: each episode's reset noise and its action samples; ``stochastic``
  (bool, or [B] bools, traced) samples the tanh-Gaussian, else a = tanh(mean).  Entry b
  depends on its own inputs alone, so a batch gives the same episodes as one rollout per
  entry.  ``score_params`` [S, p] also scores every step under other tasks (e.g. both
  sources of an interpolation).  Rewards stop accumulating at termination.  Jit it with
  ``env``, ``keep_states`` and ``length`` static (``make_rollout``).
  """
  steps = int(length or env.episode_length)
  score_params = (jnp.zeros((0, env.task_param_size)) if score_params is None
                  else jnp.asarray(score_params, jnp.float32))
  qpos_of = lambda s: env.qpos(s.data)

  def one(lte, task_param, key, stochastic):
    reset_key, act_key = jax.random.split(key)
    state = env.reset(reset_key, task_param)

    def step(carry, t):
      state, alive = carry
      action = policy.act(state.obs, lte, jax.random.fold_in(act_key, t), stochastic)
      nxt = env.step(state, action)
      scores = jax.vmap(lambda p: env._reward(state.data, nxt.data, action, p)[0])(  # pylint: disable=protected-access
          score_params)
      out = {"reward": alive * nxt.reward, "scores": alive * scores, "alive": alive,
             "metrics": dict(nxt.metrics, min_contact=min_contact_distance(nxt.data))}
      if keep_states:
        out["obs"], out["qpos"] = nxt.obs, qpos_of(nxt)
      return (nxt, alive * (1.0 - nxt.done)), out

    _, out = jax.lax.scan(step, (state, jnp.ones(())), jnp.arange(steps))
    if keep_states:
      out["obs"] = jnp.concatenate([state.obs[None], out["obs"]])
      out["qpos"] = jnp.concatenate([qpos_of(state)[None], out["qpos"]])
    return out

  ltes = jnp.asarray(ltes, jnp.float32)
  stochastic = jnp.broadcast_to(jnp.asarray(stochastic, bool), ltes.shape[:1])
  out = jax.vmap(one)(ltes, jnp.asarray(task_params, jnp.float32), keys, stochastic)
  time_major = lambda x: jnp.moveaxis(x, 1, 0)  # [B, T, ...] -> [T, B, ...]
  alive = time_major(out["alive"])
  velocity = time_major(out["metrics"]["velocity"])
  return Episode(
      ret=out["reward"].sum(1), scores=out["scores"].sum(1),
      velocity=(alive * velocity).sum(0) / alive.sum(0), length=alive.sum(0),
      alive=alive,
      metrics={k: time_major(v) for k, v in out["metrics"].items()},
      obs=time_major(out["obs"]) if keep_states else None,
      qpos=time_major(out["qpos"]) if keep_states else None)


def make_rollout(env: TaskFamilyEnv, **static):
  """``rollout`` jitted for ``env`` and the static options (``keep_states``, ``length``):
  ``f(policy, ltes, task_params, keys, stochastic=False, score_params=None)``."""
  return jax.jit(lambda policy, ltes, task_params, keys, stochastic=False, score_params=None:
                 rollout(env, policy, ltes, task_params, keys, stochastic,
                         score_params=score_params, **static))


def task_index(task_names: Sequence[str], task: str) -> int:
  """The index of ``task`` (a name of ``task_names`` or an index into them)."""
  if task in task_names:
    return list(task_names).index(task)
  if task.lstrip("-").isdigit() and 0 <= int(task) < len(task_names):
    return int(task)
  raise ValueError(f"unknown task {task!r}; this run's tasks are "
                   + ", ".join(f"{i}={n}" for i, n in enumerate(task_names)))


def parse_tasks(env: TaskFamilyEnv, spec: str) -> tuple[np.ndarray, tuple[str, ...]]:
  """Task parameters [K, p] and names from ``spec``: "adapt" (the family's held-out
  tasks), or a comma list of task names of the family (training or extra tasks) or of
  parameters, one number per task or ``p1:p2:...`` for multi-parameter families."""
  if spec == "adapt":
    if len(env.adapt_tasks) == 0:
      raise ValueError(f"{env.name} has no held-out adaptation tasks; give a list")
    return env.adapt_tasks, env.adapt_task_names
  known = dict(zip(env.task_names, env.train_tasks))
  known.update(zip(getattr(env, "extra_task_names", ()), getattr(env, "extra_tasks", ())))
  params = []
  for item in (s.strip() for s in spec.split(",")):
    if item in known:
      params.append(np.asarray(known[item], np.float32))
      continue
    try:
      values = [float(x) for x in item.split(":")]
    except ValueError:
      values = []
    if len(values) != env.task_param_size:
      raise ValueError(f"unknown task {item!r} for {env.name}: give a task name ("
                       f"{', '.join(known)}) or {env.task_param_size} number(s) "
                       f"{':'.join(env.task_param_names)}")
    params.append(np.asarray(values, np.float32))
  params = np.stack(params)
  return params, tuple(env._task_name(p) for p in params)  # pylint: disable=protected-access
