"""Gradient-based LTE adaptation (beyond the paper): the frozen EAR policy is adapted to a
new task by optimising its LTE alone with gradients, on the tasks and env-step budget of
CEM (Algorithm 2), for the same results file and plot (``experiments.adapt``).

Each task's LTE is Z = normalize(u), u free, moved by Adam; every step rolls out
``episodes`` episodes of every task under its current Z (CEM's population per
generation, so ``steps`` steps spend what ``steps`` generations do) and follows one of two
gradients of the task's reward:

- ``rollout_objective``: d(mean episode return)/dZ through the differentiable rollout
  (MJX or a pure-JAX family), every step recomputed in the backward pass
  (``acting.rollout(remat=True)``).  MJX's Newton solver is reverse-differentiable with
  one iteration only (more are a ``while_loop``), so its env must step with
  ``solver_iterations=1`` (``experiments.adapt`` builds it so); MJX's Warp
  implementation has no gradients and is refused (``require_differentiable``).
- ``critic_objective``: d Q/dZ of the run's twin critics (the minimum of the two, as in
  SAC's actor loss): Q(s, tanh(mean(s, Z)), w) averaged over the states s the current Z
  visits (held fixed; the gradient reaches Z through the action alone).  The critics
  know the training tasks only, by their one-hot labels; a new task's label w is
  earjax's choice (``task_labels``): the mix of the one-hot labels of the two training
  tasks nearest in task-parameter space, weighted by where the new task's parameter
  projects on the segment between theirs (clipped to it), so 1.5 m/s between 1 and 2 m/s
  is 0.5/0.5 and a target beyond the trained range takes the nearest task's label.

The search starts from the LTE of the training task nearest to each new one
(``nearest_ltes``): a gradient is local, where CEM starts from random unit vectors.  The
history's per-step ``best`` and ``elite_mean`` are both the mean return of the step's
episodes under the current Z (all of a step's episodes share one Z; an episode whose
return or derivative is not finite is left out, ``ascend``), and the result is the Z of
the step with the highest of those means.
"""
from __future__ import annotations

from typing import Callable

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from earjax.adaptation import lte as lte_lib
from earjax.envs import TaskFamilyEnv
from earjax.networks import deterministic_action, l2_normalize
from earjax.policy import FrozenPolicy

# objective(rows [K * E, d], key) -> (value to ascend [K * E], (return [K * E],
# aux {name: [K * E]})): one row per episode, the K tasks' LTEs each repeated for its E
# episodes (task-major), every episode's value depending on its own row alone.
Objective = Callable[[jax.Array, jax.Array], tuple[jax.Array, tuple[jax.Array, dict]]]


@struct.dataclass
class GradientConfig:
  """``episodes`` per task and step (CEM's population: 6 x 15), ``steps`` (CEM's
  generations), Adam's ``learning_rate`` on the free vector u of Z = normalize(u)
  (``normalize``; Z = u if not); each task's gradient clipped to L2 norm
  ``max_grad_norm`` before Adam (``clip_rows``); ``horizon``: the rollout gradient's
  truncation window in env steps (``acting.rollout``'s ``truncate``; 0: the whole
  episode)."""
  episodes: int = struct.field(pytree_node=False, default=90)
  steps: int = struct.field(pytree_node=False, default=10)
  learning_rate: float = struct.field(pytree_node=False, default=0.05)
  max_grad_norm: float = struct.field(pytree_node=False, default=1.0)
  horizon: int = struct.field(pytree_node=False, default=0)
  # False for a run of the no-hypersphere ablation: Z = u, off the sphere as it trained.
  normalize: bool = struct.field(pytree_node=False, default=True)


def require_differentiable(env: TaskFamilyEnv) -> None:
  if not getattr(env, "differentiable", True):
    raise ValueError(f"gradient LTE adaptation differentiates through the rollout, and "
                     f"{env.name} with impl={getattr(env, 'impl', '?')} has no gradients; "
                     f"use impl=jax")


def nearest(train_params: np.ndarray, params: np.ndarray) -> np.ndarray:
  """Index of the training task nearest (Euclidean, in task-parameter space) to each row
  of ``params``."""
  distance = np.linalg.norm(np.asarray(params)[:, None] - np.asarray(train_params)[None], axis=-1)
  return np.argmin(distance, axis=1)


def nearest_ltes(train_params: np.ndarray, train_ltes: np.ndarray,
                 params: np.ndarray) -> np.ndarray:
  """The starting LTEs: the training LTE of the nearest training task, per new task."""
  return np.asarray(train_ltes)[nearest(train_params, params)]


def task_labels(train_params: np.ndarray, params: np.ndarray) -> np.ndarray:
  """Critic labels [K, N] of new tasks ``params`` [K, p] over the N training tasks: the
  two nearest training tasks' one-hots mixed by the new parameter's projection on the
  segment between theirs, clipped to [0, 1] (one nearest task: its one-hot)."""
  train = np.asarray(train_params, np.float64)
  labels = np.zeros((len(params), len(train)), np.float32)
  for k, p in enumerate(np.asarray(params, np.float64)):
    order = np.argsort(np.linalg.norm(train - p, axis=-1))
    if len(train) == 1:
      labels[k, order[0]] = 1.0
      continue
    i, j = order[:2]
    segment = train[j] - train[i]
    t = float(np.clip(np.dot(p - train[i], segment) / np.dot(segment, segment), 0.0, 1.0))
    labels[k, i], labels[k, j] = 1.0 - t, t
  return labels


def _repeat(x: jax.Array, n: int) -> jax.Array:
  return jnp.repeat(jnp.asarray(x), n, axis=0)


def _episodes_per_task(rows: jax.Array, task_params: jax.Array) -> int:
  return rows.shape[0] // task_params.shape[0]


def rollout_objective(env: TaskFamilyEnv, policy: FrozenPolicy, task_params,
                      horizon: int = 0) -> Objective:
  """Each episode's return (deterministic actions) under its row's LTE, differentiable
  in the LTE through the rollout (through at most ``horizon`` steps of dynamics if > 0:
  ``acting.rollout``'s ``truncate``)."""
  require_differentiable(env)
  task_params = jnp.asarray(task_params, jnp.float32)

  def objective(rows, key):
    episode = lte_lib.rollout(env, policy, rows,
                              _repeat(task_params, _episodes_per_task(rows, task_params)),
                              jax.random.split(key, rows.shape[0]), remat=True,
                              truncate=horizon)
    return episode.ret, (jax.lax.stop_gradient(episode.ret),
                         {"velocity": jax.lax.stop_gradient(episode.velocity)})

  return objective


def critic_objective(env: TaskFamilyEnv, policy: FrozenPolicy, critic: Callable,
                     task_params, labels) -> Objective:
  """Per episode (deterministic, under its row's Z), min(Q1, Q2)(s, tanh(mean(s, Z)),
  label) averaged over the episode's alive states; ``critic(obs, action, label) ->
  [2, ...]`` (the run's twin critics), ``labels`` [K, N] (``task_labels``)."""
  task_params = jnp.asarray(task_params, jnp.float32)
  labels = jnp.asarray(labels, jnp.float32)

  def objective(rows, key):
    episodes = _episodes_per_task(rows, task_params)
    episode = lte_lib.rollout(env, policy, jax.lax.stop_gradient(rows),
                              _repeat(task_params, episodes),
                              jax.random.split(key, rows.shape[0]), keep_states=True)
    obs = episode.obs[:-1]                                  # [T, K * E, o]: s_t
    steps = obs.shape[0]
    at = lambda x: jnp.broadcast_to(x, (steps,) + x.shape)  # [K * E, ...] -> [T, K * E, ...]
    mean, _ = policy.decode_fn(policy.params, obs, at(rows))
    q = jnp.min(critic(obs, deterministic_action(mean), at(_repeat(labels, episodes))), 0)
    value = (q * episode.alive).sum(0) / episode.alive.sum(0)
    return value, (episode.ret, {"velocity": episode.velocity})

  return objective


def clip_rows(x: jax.Array, max_norm: float) -> jax.Array:
  """``x`` [K, d] with every row longer than ``max_norm`` (L2, ``safe_norm``) scaled down
  to it: a finite gradient of any size gives Adam a step (squares beyond ~1e19 overflow
  its second moment, which then divides the step to zero)."""
  norm = safe_norm(x)[:, None]
  return x * jnp.minimum(1.0, max_norm / jnp.where(norm > 0, norm, 1.0))


def safe_norm(x: jax.Array) -> jax.Array:
  """The L2 norm over the last axis, scaled by the largest entry first so that a finite
  vector whose squares overflow float32 (a rollout gradient can reach 1e20) still gets
  its finite norm."""
  scale = jnp.max(jnp.abs(x), axis=-1, keepdims=True)
  unit = x / jnp.where(scale > 0, scale, 1.0)
  return scale[..., 0] * jnp.linalg.norm(unit, axis=-1)


def ascend(objective: Objective, init_ltes, key: jax.Array,
           config: GradientConfig = GradientConfig()):
  """``config.steps`` Adam steps up ``objective`` for every task at once, in one
  ``lax.scan``.  Returns (the LTE of each task's best step [K, d], history as
  ``cem.cem``'s: ``best``, ``elite_mean`` [G, K] (the step's mean return), ``best_aux``
  [G, K] and ``lte`` [G, K, d], the LTE each step rolled out; and the gradient's
  ``grad_finite`` and ``grad_norm`` [G, K], its L2 norm before clipping, NaN where no
  episode gave a gradient and Adam got zeros; ``episodes_used`` [G, K], the episodes it
  was averaged over).

  Each step rolls out ``config.episodes`` episodes per task, one row of LTEs per
  episode, and takes every episode's own derivative (a vjp to the rows).  An episode
  whose value or derivative is not finite is left out of its task's mean, value and
  gradient alike: MJX with one solver iteration can blow up on an episode (its state,
  and so its return, turns NaN), and over a long horizon the product of the step
  Jacobians can overflow float32; one such episode of 90 no longer zeroes the task's
  whole step.  The step's return and aux are the means over its finite episodes."""
  optimizer = optax.chain(
      optax.stateless(lambda g, _: clip_rows(g, config.max_grad_norm)),
      optax.adam(config.learning_rate))
  u = jnp.asarray(init_ltes, jnp.float32)
  num_tasks, episodes = u.shape[0], config.episodes
  project = l2_normalize if config.normalize else (lambda x: x)
  per_task = lambda x: x.reshape((num_tasks, episodes) + x.shape[1:])

  def masked_mean(x, ok):
    """Mean over each task's episodes where ``ok`` [K, ...]; NaN for a task with none."""
    count = per_task(ok).sum(1).astype(x.dtype)
    total = per_task(jnp.where(ok.reshape(ok.shape + (1,) * (x.ndim - 1)), x, 0.0)).sum(1)
    return total / count.reshape(count.shape + (1,) * (total.ndim - 1))

  def step(carry, key):
    u, opt_state, best, best_return = carry
    lte, project_vjp = jax.vjp(project, u)
    value, rows_vjp, (ret, aux) = jax.vjp(lambda rows: objective(rows, key),
                                          _repeat(lte, episodes), has_aux=True)
    ok = jnp.isfinite(value) & jnp.isfinite(ret)                       # [K * E]
    row_grads = rows_vjp(ok.astype(value.dtype))[0]                    # d value_e / d row_e
    used = ok & jnp.all(jnp.isfinite(row_grads), axis=-1)
    episodes_used = per_task(used).sum(1)
    finite = episodes_used > 0
    grad_lte = jnp.where(finite[:, None], masked_mean(row_grads, used), 0.0)   # [K, d]
    grad = -project_vjp(grad_lte)[0]                                   # descent on -value
    ret = masked_mean(ret, ok)
    aux = jax.tree.map(lambda x: masked_mean(x, ok), aux)
    better = ret > best_return
    best = jnp.where(better[:, None], lte, best)
    updates, opt_state = optimizer.update(grad, opt_state)
    return ((optax.apply_updates(u, updates), opt_state, best,
             jnp.where(better, ret, best_return)),
            {"best": ret, "elite_mean": ret, "best_aux": aux, "lte": lte,
             "grad_finite": finite, "episodes_used": episodes_used,
             "grad_norm": jnp.where(finite, safe_norm(grad), jnp.nan)})

  start = (u, optimizer.init(u), project(u), jnp.full(u.shape[:1], -jnp.inf))
  (_, _, best, _), history = jax.lax.scan(step, start,
                                          jax.random.split(key, config.steps))
  return best, history
