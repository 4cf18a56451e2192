"""The LTE space as an interface to behaviour: Eq. 1 and rollouts with given LTEs.

``interpolate`` is Eq. 1 of Hua, Chen & Xu (ICLR 2023), Z' = normalize(beta Z_i +
(1 - beta) Z_j).  ``rollout`` runs one episode of the frozen policy for each of a batch of
(LTE, task parameter, key) through ``acting.rollout`` (the episode runner evaluation uses
too), so all interpolated LTEs, or all CEM candidates of all tasks (Algorithm 2), step in
one compiled call.
"""
from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from earjax import acting
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


def interpolate(lte_i: jax.Array, lte_j: jax.Array, betas, normalize: bool = True) -> jax.Array:
  """Eq. 1: Z' = normalize(beta Z_i + (1 - beta) Z_j), one row per beta ([len(betas), d]).

  beta = 1 gives Z_i and beta = 0 gives Z_j (both unit vectors already).
  ``normalize=False`` (a run of the no-hypersphere ablation, whose LTEs are not unit
  vectors): the straight mix, so that the ends stay the tasks' own LTEs.
  """
  betas = jnp.asarray(check_betas(betas))[:, None]
  lte_i = check_lte(lte_i, np.shape(lte_j)[-1])
  mix = betas * lte_i + (1.0 - betas) * jnp.asarray(lte_j)
  return l2_normalize(mix) if normalize else mix


def linearity(betas, velocities) -> dict:
  """Whether ``velocities`` (one per beta) are monotone in beta, and their R^2 against
  the straight line between the velocities at beta = 0 and beta = 1 (None if the betas
  leave out either end or the two ends move at the same speed)."""
  order = np.argsort(betas)
  b, v = np.asarray(betas, np.float64)[order], np.asarray(velocities, np.float64)[order]
  steps = np.diff(v)
  out = {"monotone": bool(np.all(steps >= 0) or np.all(steps <= 0)), "r2_vs_line": None}
  if b[0] == 0.0 and b[-1] == 1.0 and v[-1] != v[0] and len(b) > 2:
    line = v[0] + b * (v[-1] - v[0])
    out["r2_vs_line"] = float(1.0 - np.sum((v - line) ** 2) / np.sum((v - v.mean()) ** 2))
  return out


def arc_fraction(lte_i, lte_j, betas) -> np.ndarray:
  """Where each Eq. 1 mix beta Z_i + (1 - beta) Z_j points along the arc from Z_j (0) to
  Z_i (1): its angle from Z_j over the angle between the ends.  Normalisation does not
  turn the mix, so this also places the straight mix of the no-hypersphere ablation.
  Eq. 1's beta is not the arc position: the farther apart the ends, the faster the mix
  crosses the arc's middle (ends 90 degrees apart: beta 0.25 is 0.205 of the arc; 160
  degrees apart: 0.059), so velocity vs beta bends into a step where velocity vs arc
  position may be straight.  NaN where the ends point the same way."""
  r_i, r_j = (float(np.linalg.norm(np.asarray(z, np.float64))) for z in (lte_i, lte_j))
  ends = angle(lte_i, lte_j)
  sin, cos = np.sin(ends), np.cos(ends)
  b = np.asarray(check_betas(betas), np.float64)
  mix = np.arctan2(b * r_i * sin, (1.0 - b) * r_j + b * r_i * cos)
  return mix / np.arctan2(r_i * sin, r_i * cos)


def angle(lte_i, lte_j) -> float:
  """The angle between two LTEs (radians, in [0, pi])."""
  z_i, z_j = (np.asarray(z, np.float64) for z in (lte_i, lte_j))
  cos = z_i @ z_j / (np.linalg.norm(z_i) * np.linalg.norm(z_j))
  return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def composition(betas, velocities, peaks, speed_fraction: float = 0.5,
                height_fraction: float = 0.5, min_jump_margin: float = 0.05) -> dict:
  """Jumping while running along an Eq. 1 sweep between a run task and a jump task (the
  run end is the one of beta = 0 and beta = 1 with the higher forward velocity): the
  betas strictly between the ends whose velocity keeps at least ``speed_fraction`` of
  the run end's and whose mean peak height rises above the
  run end's by at least ``height_fraction`` of the jump end's margin over it (issue 15's
  criterion, earjax's reading of the paper's composition).  ``exists`` is None when the
  betas leave out an end or the jump end does not jump: its peak is less than
  ``min_jump_margin`` (metres, earjax's choice) above the run end's, so any mix would
  pass on noise (HalfCheetah's jump1 task stands: its peak is the run gait's)."""
  order = np.argsort(betas)
  b = np.asarray(betas, np.float64)[order]
  v, p = (np.asarray(x, np.float64)[order] for x in (velocities, peaks))
  out = {"run_beta": None, "run_speed": None, "jump_margin": None, "betas": [],
         "exists": None}
  if b[0] != 0.0 or b[-1] != 1.0:
    return out
  run, jump = (-1, 0) if v[-1] >= v[0] else (0, -1)
  margin = p[jump] - p[run]
  out.update(run_beta=float(b[run]), run_speed=float(v[run]), jump_margin=float(margin))
  if margin < min_jump_margin:
    return out
  meets = (v >= speed_fraction * v[run]) & (p - p[run] >= height_fraction * margin)
  out["betas"] = [float(x) for x in b[meets & (b > 0.0) & (b < 1.0)]]   # mixes only
  out["exists"] = bool(out["betas"])
  return out


def rollout(env: TaskFamilyEnv, policy: FrozenPolicy, ltes: jax.Array,
            task_params: jax.Array, keys: jax.Array, stochastic=False, *,
            score_params: Optional[jax.Array] = None, keep_states: bool = False,
            length: Optional[int] = None, remat: bool = False,
            truncate: int = 0) -> acting.Episode:
  """One episode per row of ``ltes`` [B, d] on the task ``task_params`` [B, p] (see
  ``acting.rollout`` for ``keys``, ``stochastic``, ``score_params``, ``keep_states``,
  ``remat``, ``truncate``)."""
  return acting.rollout(env, policy.act, jnp.asarray(ltes, jnp.float32), task_params, keys,
                        stochastic, score_params=score_params, keep_states=keep_states,
                        length=length, remat=remat, truncate=truncate)


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
  return params, tuple(env.task_name(p) for p in params)
