"""PGPE in the latent space Z (through the frozen decoder) or in Θ itself, with evosax.

``pgpe_search`` runs evosax's PGPE (symmetric sampling, Adam on the centre, plain SGD on
the per-dimension std clipped to ±``std_max_change`` a step) for ``generations`` in one
jitted ``lax.scan``; every generation's population is scored by one vmapped call
(``rollout_returns``: one deterministic episode per member).  evosax minimises, so it is
told the negated returns.

Settings (``experiments/configs/compression.py``) follow the first author's PGPE defaults
where evosax has them (``shared/METHOD_NOTES.md``, runs/notes_issue12_evosax.md): centre
Adam lr 0.15 decayed linearly to 20 % of it, std lr 0.1, std change clipped to ±20 %,
std init 0.1 (x the search space's scale: the dataset codes' std in Z).  What differs:
evosax lays the ± pairs out in halves rather than interleaved (no effect on the update),
and the first author's running z-scored fitness is not in evosax: earjax shapes fitness
with centred ranks (pgpelib's default, ``fitness_shaping="centered_rank"``) or the
generation's z-score (``"z_score"``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from evosax.algorithms import PGPE
from evosax.core import fitness_shaping
import jax
import jax.numpy as jnp
import optax

from earjax import acting
from earjax.compression.policies import PolicySpace
from earjax.envs.base import TaskFamilyEnv

SHAPINGS = {"centered_rank": fitness_shaping.centered_rank_fitness_shaping_fn,
            "z_score": fitness_shaping.standardize_fitness_shaping_fn}

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]   # (population [P, d], key) -> [P]


@dataclasses.dataclass(frozen=True)
class PGPEConfig:
  population: int          # even: symmetric (±) sampling
  generations: int
  center_lr: float         # Adam's learning rate on the centre at generation 0
  center_lr_end: float     # ... at the last generation, as a fraction of center_lr
  std_init: float          # initial std, times the search space's per-dimension scale
  std_lr: float
  std_max_change: float
  fitness_shaping: str     # SHAPINGS

  def __post_init__(self):
    if int(self.population) < 2 or self.population % 2:
      raise ValueError(f"pgpe.population must be an even integer >= 2 (symmetric "
                       f"sampling), got {self.population!r}")
    if int(self.generations) < 1:
      raise ValueError(f"pgpe.generations must be a positive integer, got "
                       f"{self.generations!r}")
    if self.fitness_shaping not in SHAPINGS:
      raise ValueError(f"pgpe.fitness_shaping must be one of {', '.join(SHAPINGS)}, "
                       f"got {self.fitness_shaping!r}")
    if not 0.0 <= self.center_lr_end <= 1.0:
      raise ValueError(f"pgpe.center_lr_end must be in [0, 1], got {self.center_lr_end!r}")
    for name in ("center_lr", "std_init", "std_lr", "std_max_change"):
      if not getattr(self, name) > 0:
        raise ValueError(f"pgpe.{name} must be positive, got {getattr(self, name)!r}")


def pgpe_search(score_fn: ScoreFn, center: jax.Array, scale: jax.Array, config: PGPEConfig,
                key: jax.Array):
  """Maximises ``score_fn`` from ``center`` [d] with initial std ``std_init * scale``.

  Returns (best member [d], its score, history): per generation the population's ``max``
  and ``mean`` score and the ``best`` score so far (all [generations]), and the final
  ``center`` [d].  Vmap it over keys or tasks for independent searches.
  """
  c = config
  schedule = optax.linear_schedule(c.center_lr, c.center_lr * c.center_lr_end,
                                   max(c.generations - 1, 1))
  es = PGPE(c.population, center, optimizer=optax.adam(schedule),
            fitness_shaping_fn=SHAPINGS[c.fitness_shaping])
  params = es.default_params.replace(std_lr=c.std_lr, std_max_change=c.std_max_change)
  init_key, key = jax.random.split(key)
  state = es.init(init_key, center, params)
  # A dimension without spread (e.g. biases that every policy left at 0) explores at
  # std_init itself: a zero std would make evosax's std update divide by zero.
  scale = jnp.broadcast_to(scale, center.shape)
  state = state.replace(std=c.std_init * jnp.where(scale > 0, scale, 1.0))

  def generation(carry, key):
    state, best_x, best = carry
    ask_key, score_key, tell_key = jax.random.split(key, 3)
    population, state = es.ask(ask_key, state, params)
    scores = score_fn(population, score_key)
    state, _ = es.tell(tell_key, population, -scores, state, params)
    i = jnp.argmax(scores)
    better = scores[i] > best
    best_x = jnp.where(better, population[i], best_x)
    best = jnp.maximum(best, scores[i])
    return (state, best_x, best), {"max": scores[i], "mean": scores.mean(), "best": best}

  (state, best_x, best), history = jax.lax.scan(
      generation, (state, center, jnp.asarray(-jnp.inf)), jax.random.split(key, c.generations))
  history["center"] = state.mean
  return best_x, best, history


def rollout_returns(env: TaskFamilyEnv, space: PolicySpace, thetas: jax.Array,
                    task_param: jax.Array, key: jax.Array) -> jax.Array:
  """One deterministic episode per policy θ [P, D] on ``task_param``: returns [P]."""
  n = thetas.shape[0]
  return acting.rollout(env, space.act_fn(), thetas,
                        jnp.broadcast_to(task_param, (n, task_param.shape[-1])),
                        jax.random.split(key, n)).ret


def env_steps_per_generation(config: PGPEConfig, env: TaskFamilyEnv) -> int:
  """Env steps one generation spends: one full episode per member."""
  return config.population * env.episode_length
