"""Adapting to a new task by searching the LTE alone (the policy stays frozen).

CEM (Algorithm 2 of Hua, Chen & Xu, ICLR 2023) with the release's defaults, and, beyond
the paper, ``table_es``: an evolution strategy on the sphere that spends its first
generation on Eq. 1 interpolations between every pair of training LTEs and then follows
an antithetic gradient estimate from the best of them.  Both are pure functions of a
``score_fn(candidates [T, N, d], key) -> (scores [T, N], aux)`` that scores every
candidate of every task at once (``rollout_score_fn``: one vmapped MJX rollout each), and
both run all their generations inside one ``lax.scan``, so a whole search is one jit.
"""
from __future__ import annotations

import itertools
from typing import Callable

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from earjax import parallel
from earjax.adaptation import lte as lte_lib
from earjax.envs import TaskFamilyEnv
from earjax.networks import l2_normalize
from earjax.policy import FrozenPolicy

ScoreFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, dict]]


@struct.dataclass
class CEMConfig:
  """Algorithm 2's settings; defaults are the release's."""
  num_elites: int = struct.field(pytree_node=False, default=6)
  samples_per_elite: int = struct.field(pytree_node=False, default=15)  # elite + 14 noisy
  std: float = struct.field(pytree_node=False, default=0.5)
  generations: int = struct.field(pytree_node=False, default=10)

  @property
  def population(self) -> int:
    return self.num_elites * self.samples_per_elite


# The one home of the search defaults: ``ESConfig``, the experiments' flags and the
# other methods' budgets read them from here.
CEM_DEFAULTS = CEMConfig()
# Env steps per task of a default CEM search on 200-step episodes (generations x
# population x 200, i.e. 180,000): the adaptation budget every method gets by default.
DEFAULT_BUDGET = CEM_DEFAULTS.generations * CEM_DEFAULTS.population * 200


@struct.dataclass
class ESConfig:
  """``table_es``: ``population`` candidates per generation (pairs of antithetic
  perturbations of scale ``sigma`` in the tangent plane), a step of angle
  ``step_size * decay**g`` along the estimated gradient.  Population and generations
  default to CEM's (the same budget)."""
  population: int = struct.field(pytree_node=False, default=CEM_DEFAULTS.population)
  sigma: float = struct.field(pytree_node=False, default=0.15)
  step_size: float = struct.field(pytree_node=False, default=0.3)
  decay: float = struct.field(pytree_node=False, default=0.8)
  generations: int = struct.field(pytree_node=False, default=CEM_DEFAULTS.generations)


def random_sphere(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """normalize(N(0, I)): uniform on the unit sphere, ``shape`` = (..., d)."""
  return l2_normalize(jax.random.normal(key, shape))


def cem_candidates(elites: jax.Array, key: jax.Array, config: CEMConfig) -> jax.Array:
  """Algorithm 2's sampling: each elite [..., m, d] kept plus ``samples_per_elite - 1``
  copies perturbed by N(0, std^2), all renormalised to the sphere: [..., m * n, d]."""
  n = config.samples_per_elite
  noise = config.std * jax.random.normal(key, elites.shape[:-1] + (n - 1, elites.shape[-1]))
  samples = jnp.concatenate([elites[..., None, :], elites[..., None, :] + noise], axis=-2)
  return l2_normalize(samples).reshape(elites.shape[:-2] + (-1, elites.shape[-1]))


def top_k(candidates: jax.Array, scores: jax.Array, k: int):
  """The ``k`` best candidates [..., k, d] and their scores [..., k], best first."""
  best, index = jax.lax.top_k(scores, k)
  return jnp.take_along_axis(candidates, index[..., None], axis=-2), best


def cem_generation(score_fn: ScoreFn, elites: jax.Array, key: jax.Array, config: CEMConfig):
  """One CEM generation for every task at once: (new elites, elite scores, aux of all
  candidates, candidates)."""
  sample_key, score_key = jax.random.split(key)
  candidates = cem_candidates(elites, sample_key, config)
  scores, aux = score_fn(candidates, score_key)
  new_elites, elite_scores = top_k(candidates, scores, config.num_elites)
  return new_elites, elite_scores, aux, candidates, scores


def cem(score_fn: ScoreFn, key: jax.Array, num_tasks: int, lte_dim: int,
        config: CEMConfig = CEMConfig()):
  """Algorithm 2 for ``num_tasks`` tasks: ``generations`` generations in one ``lax.scan`` from
  ``num_elites`` random unit vectors.  Returns (best LTE per task [T, d], history), the
  history with per-generation ``best`` / ``elite_mean`` scores [G, T], the ``aux`` of
  the best candidate [G, T] and the ``elites`` [G, T, m, d]."""
  init_key, key = jax.random.split(key)
  elites = random_sphere(init_key, (num_tasks, config.num_elites, lte_dim))

  def generation(elites, key):
    elites, elite_scores, aux, candidates, scores = cem_generation(score_fn, elites, key, config)
    best = jnp.argmax(scores, -1)
    return elites, {"best": elite_scores[:, 0], "elite_mean": elite_scores.mean(-1),
                    "best_aux": jax.tree.map(lambda a: jnp.take_along_axis(
                        a, best[:, None], -1)[:, 0], aux), "elites": elites}

  elites, history = jax.lax.scan(generation, elites, jax.random.split(key, config.generations))
  return elites[:, 0], history


def best_so_far(history) -> jax.Array:
  """The top elite of each task's best generation in ``cem``'s history [T, d]: the LTE
  behind the curve of best scores so far (Algorithm 2 returns the last generation's)."""
  at = jnp.argmax(history["best"], 0)
  return history["elites"][at, jnp.arange(at.shape[0]), 0]


def pair_interpolations(table: np.ndarray, population: int, key: jax.Array) -> jax.Array:
  """``population`` LTEs from Eq. 1 between every pair of rows of ``table`` [K, d] at
  evenly spaced betas (the rows themselves included); random unit vectors fill any gap,
  a random subset is kept if there are too many."""
  table = np.asarray(table, np.float32)
  pairs = list(itertools.combinations(range(len(table)), 2))
  if not pairs:
    points = table
  else:
    per_pair = max(2, population // len(pairs))
    betas = np.linspace(0.0, 1.0, per_pair)
    points = np.concatenate([np.asarray(lte_lib.interpolate(table[i], table[j], betas))
                             for i, j in pairs])
  keep_key, fill_key = jax.random.split(key)
  if len(points) > population:
    points = points[np.asarray(jax.random.permutation(keep_key, len(points)))[:population]]
  fill = random_sphere(fill_key, (population - len(points), table.shape[-1]))
  return jnp.concatenate([jnp.asarray(points), fill])


def tangent(center: jax.Array, x: jax.Array) -> jax.Array:
  """The part of ``x`` orthogonal to the unit vector ``center`` (broadcast on axis -2)."""
  return x - jnp.sum(x * center, -1, keepdims=True) * center


def centered_ranks(scores: jax.Array) -> jax.Array:
  """Ranks mapped to [-0.5, 0.5] along the last axis (fitness shaping)."""
  ranks = jnp.argsort(jnp.argsort(scores, -1), -1)
  return ranks / (scores.shape[-1] - 1) - 0.5


def es_step(score_fn: ScoreFn, center: jax.Array, key: jax.Array, step: jax.Array,
            config: ESConfig):
  """One antithetic ES generation on the sphere for every task: candidates
  normalize(c +- sigma e), e in the tangent plane at c; c moves by the angle ``step``
  along the rank-shaped gradient estimate.  Returns (center, candidates, scores, aux)."""
  sample_key, score_key = jax.random.split(key)
  half = config.population // 2
  eps = tangent(center[:, None], jax.random.normal(
      sample_key, (center.shape[0], half, center.shape[-1])))
  candidates = l2_normalize(jnp.concatenate(
      [center[:, None] + config.sigma * eps, center[:, None] - config.sigma * eps], 1))
  scores, aux = score_fn(candidates, score_key)
  utility = centered_ranks(scores)
  grad = jnp.sum((utility[:, :half] - utility[:, half:])[..., None] * eps, 1)
  direction = l2_normalize(tangent(center, grad))
  center = jnp.cos(step) * center + jnp.sin(step) * direction
  return l2_normalize(center), candidates, scores, aux


def table_es(score_fn: ScoreFn, key: jax.Array, first_generation: jax.Array,
             num_tasks: int, config: ESConfig = ESConfig()):
  """Beyond the paper: generation 0 scores ``first_generation`` [population, d] (Eq. 1
  interpolations between training LTEs, ``pair_interpolations``) on every task; the
  best becomes the centre of ``generations - 1`` ES generations.  Same budget as CEM for the
  same ``population`` and ``generations``.  Returns (best LTE seen per task [T, d], history
  as ``cem``'s, with the mean of the top ``CEM_DEFAULTS.num_elites`` as ``elite_mean``)."""
  if config.population % 2 or first_generation.shape[0] != config.population:
    raise ValueError(f"need an even population equal to the first generation's size, got "
                     f"{config.population} and {first_generation.shape[0]}")
  first_key, key = jax.random.split(key)

  def record(candidates, scores, aux, best, best_score):
    arg = jnp.argmax(scores, -1)
    pick = lambda a: jnp.take_along_axis(a, arg[:, None], -1)[:, 0]
    gen_best = pick(scores)
    best = jnp.where((gen_best > best_score)[:, None], jnp.take_along_axis(
        candidates, arg[:, None, None], 1)[:, 0], best)
    top = jax.lax.top_k(scores, min(CEM_DEFAULTS.num_elites, scores.shape[-1]))[0]
    return best, jnp.maximum(gen_best, best_score), {
        "best": gen_best, "elite_mean": top.mean(-1), "best_aux": jax.tree.map(pick, aux)}

  candidates = jnp.broadcast_to(first_generation, (num_tasks,) + first_generation.shape)
  scores, aux = score_fn(candidates, first_key)
  best, best_score, first = record(candidates, scores, aux, candidates[:, 0],
                                   jnp.full((num_tasks,), -jnp.inf))

  def generation(carry, inputs):
    center, best, best_score = carry
    key, g = inputs
    center, candidates, scores, aux = es_step(score_fn, center, key,
                                              config.step_size * config.decay**g, config)
    best, best_score, out = record(candidates, scores, aux, best, best_score)
    return (center, best, best_score), out

  (_, best, _), history = jax.lax.scan(
      generation, (best, best, best_score),
      (jax.random.split(key, config.generations - 1),
       jnp.arange(config.generations - 1, dtype=jnp.float32)))
  return best, jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, history)


def rollout_score_fn(env: TaskFamilyEnv, policy: FrozenPolicy, task_params: jax.Array,
                     stochastic: bool = False,
                     layout: parallel.Layout | None = None) -> ScoreFn:
  """Scores candidates [T, N, d] by one episode each on task ``task_params[t]`` (one
  vmapped rollout of all T * N, laid over ``layout``'s devices if given: the policy must
  then be replicated on them, ``parallel.replicate``); aux holds each episode's mean
  velocity."""
  task_params = jnp.asarray(task_params, jnp.float32)

  def score(candidates, key):
    num_tasks, n, d = candidates.shape
    inputs = (candidates.reshape(-1, d), jnp.repeat(task_params, n, axis=0),
              jax.random.split(key, num_tasks * n))
    if layout is not None:
      inputs = jax.lax.with_sharding_constraint(inputs, layout.leading)
    episode = lte_lib.rollout(env, policy, *inputs, stochastic=stochastic)
    shape = lambda x: x.reshape(num_tasks, n)
    return shape(episode.ret), {"velocity": shape(episode.velocity)}

  return score


def env_steps_per_generation(num_candidates: int, env: TaskFamilyEnv) -> int:
  """Env steps one generation spends per task: one full episode per candidate."""
  return num_candidates * env.episode_length
