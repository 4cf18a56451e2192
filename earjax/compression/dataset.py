"""The policy dataset the autoencoder compresses: novelty search over Θ (arXiv 2509.22566).

The paper's recipe, as far as it is known (``shared/METHOD_NOTES.md``): two policies are as
far apart as their actions on a shared set of sampled states (L2); a candidate's novelty is
its mean distance to its k nearest neighbours among the archive and the other candidates;
the most novel fraction of each generation (the paper keeps 10 %) joins the archive.

One generation (``NoveltySearch.generation``, one jitted program, the archive donated):
1. candidates: freshly initialised θ (the paper filters randomly initialised parameter
   vectors) and, once the archive holds policies, Gaussian mutations of archive members
   (``mutation_fraction``, ``mutation_std``: earjax's choice, classic novelty search);
2. descriptors: each candidate's actions on the probe states, flattened;
3. novelty (``knn_novelty``) and the top ``generation_size`` kept;
4. the kept policies rolled out in one vmapped call (``acting.rollout``), one episode each,
   scored on every task of the family at once (``score_params``), and
   ``states_per_policy`` of their visited states kept for the autoencoder's loss.

Probe states (earjax's choice, ``probe_source``): ``visited`` samples states visited by
``probe_policies`` random policies; ``box`` draws them uniformly from the box those states
span (the paper appears to sample a bounded state box).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Optional
import zipfile

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

from earjax import acting
from earjax.compression.policies import PolicySpace
from earjax.envs.base import TaskFamilyEnv

PROBE_SOURCES = ("visited", "box")


@dataclasses.dataclass(frozen=True)
class NoveltySearchConfig:
  """The dataset's settings (defaults: ``experiments/configs/compression.py``)."""
  size: int                # policies in the dataset
  generation_size: int     # policies kept per generation
  keep_fraction: float     # kept / candidates per generation (the paper: 0.1)
  k: int                   # nearest neighbours of the novelty score
  num_probe_states: int    # states the descriptors act on
  probe_source: str        # PROBE_SOURCES
  probe_policies: int      # random policies whose visits give the probe states
  mutation_fraction: float  # candidates mutated from the archive (once it is not empty)
  mutation_std: float      # std of a mutation in θ
  states_per_policy: int   # visited states kept per policy for the autoencoder

  def __post_init__(self):
    for name in ("size", "generation_size", "k", "num_probe_states", "probe_policies",
                 "states_per_policy"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"dataset.{name} must be a positive integer, "
                         f"got {getattr(self, name)!r}")
    if self.size % self.generation_size:
      raise ValueError(f"dataset.size ({self.size}) must be a multiple of "
                       f"dataset.generation_size ({self.generation_size})")
    if not 0.0 < self.keep_fraction <= 1.0:
      raise ValueError(f"dataset.keep_fraction must be in (0, 1], got {self.keep_fraction}")
    if not 0.0 <= self.mutation_fraction <= 1.0:
      raise ValueError("dataset.mutation_fraction must be in [0, 1], "
                       f"got {self.mutation_fraction}")
    if self.probe_source not in PROBE_SOURCES:
      raise ValueError(f"dataset.probe_source must be one of {', '.join(PROBE_SOURCES)}, "
                       f"got {self.probe_source!r}")
    if self.k >= self.candidates:
      raise ValueError(f"dataset.k ({self.k}) must be below the candidates per generation "
                       f"({self.candidates})")

  @property
  def candidates(self) -> int:
    """Candidates per generation: ``generation_size / keep_fraction``."""
    return int(round(self.generation_size / self.keep_fraction))

  @property
  def generations(self) -> int:
    return self.size // self.generation_size


@dataclasses.dataclass
class PolicyDataset:
  """N policies θ with their behaviour: descriptors (actions on the probe states), one
  episode's return under every task of the family, mean forward velocity, novelty when
  kept and generation; plus the probe states and the visited states."""
  env_name: str
  hidden: tuple[int, ...]
  task_names: tuple[str, ...]
  task_params: np.ndarray   # [S, p]
  params: np.ndarray        # [N, D]
  descriptors: np.ndarray   # [N, K * action_size]
  returns: np.ndarray       # [N, S]
  velocity: np.ndarray      # [N]
  novelty: np.ndarray       # [N]
  generation: np.ndarray    # [N]
  probe_states: np.ndarray  # [K, obs]
  states: np.ndarray        # [N * states_per_policy, obs]

  ARRAYS = ("task_params", "params", "descriptors", "returns", "velocity", "novelty",
            "generation", "probe_states", "states")

  def __post_init__(self):
    n = len(self.params)
    if n == 0:
      raise ValueError("the policy dataset is empty (no policies)")
    for name in ("descriptors", "returns", "velocity", "novelty", "generation"):
      if len(getattr(self, name)) != n:
        raise ValueError(f"dataset field {name} has {len(getattr(self, name))} rows, "
                         f"params has {n}")

  @property
  def size(self) -> int:
    return len(self.params)

  def space(self) -> PolicySpace:
    return PolicySpace(self.probe_states.shape[1],
                       self.descriptors.shape[1] // self.probe_states.shape[0], self.hidden)

  def save(self, path: str) -> None:
    """One ``.npz`` (written to a temporary name, then renamed: never half-written)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    meta = json.dumps({"env_name": self.env_name, "hidden": list(self.hidden),
                       "task_names": list(self.task_names)})
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=np.asarray(meta), **{k: getattr(self, k) for k in self.ARRAYS})
    os.replace(tmp, path)

  @classmethod
  def load(cls, path: str) -> "PolicyDataset":
    if not os.path.exists(path):
      raise FileNotFoundError(f"no policy dataset at {path} (build one with "
                              "experiments.compress --stages=dataset)")
    try:
      with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in cls.ARRAYS}
    except (KeyError, ValueError, zipfile.BadZipFile) as e:
      raise ValueError(f"{path} is not a policy dataset of this version "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    return cls(env_name=meta["env_name"], hidden=tuple(meta["hidden"]),
               task_names=tuple(meta["task_names"]), **arrays)


def knn_novelty(queries: jax.Array, reference: jax.Array, valid: jax.Array, k: int,
                self_offset: Optional[int] = None, chunk: int = 512) -> jax.Array:
  """Mean L2 distance of each query [Q, F] to its ``k`` nearest valid rows of
  ``reference`` [R, F] (``valid`` [R] bool).  ``self_offset``: query i is reference row
  ``self_offset + i`` and is not its own neighbour.  Queries go in chunks of ``chunk``
  (memory [chunk, R])."""
  ref_sq = jnp.sum(reference**2, -1)
  num = queries.shape[0]
  pad = (-num) % min(chunk, num)
  index = jnp.arange(num + pad)
  padded = jnp.concatenate([queries, jnp.zeros((pad, queries.shape[1]), queries.dtype)])
  size = min(chunk, num)

  def one_chunk(args):
    q, i = args
    d2 = jnp.sum(q**2, -1)[:, None] + ref_sq[None] - 2.0 * q @ reference.T
    mask = valid[None, :]
    if self_offset is not None:
      mask = mask & (jnp.arange(reference.shape[0])[None, :] != (self_offset + i)[:, None])
    d2 = jnp.where(mask, jnp.maximum(d2, 0.0), jnp.inf)
    nearest = -jax.lax.top_k(-d2, k)[0]
    return jnp.mean(jnp.sqrt(nearest), -1)

  out = jax.lax.map(one_chunk, (padded.reshape(-1, size, queries.shape[1]),
                                index.reshape(-1, size)))
  return out.reshape(-1)[:num]


@struct.dataclass
class Archive:
  """The dataset being built, in fixed-size buffers (``count`` rows filled)."""
  params: jax.Array
  descriptors: jax.Array
  returns: jax.Array
  velocity: jax.Array
  novelty: jax.Array
  generation: jax.Array
  states: jax.Array      # [N, states_per_policy, obs]
  count: jax.Array


class NoveltySearch:
  """Builds a ``PolicyDataset`` of ``env``'s policies in ``space`` (module docstring)."""

  def __init__(self, env: TaskFamilyEnv, space: PolicySpace, config: NoveltySearchConfig):
    if space.observation_size != env.observation_size or space.action_size != env.action_size:
      raise ValueError(f"policy space {space.observation_size} -> {space.action_size} does "
                       f"not fit {env.name} ({env.observation_size} -> {env.action_size})")
    self.env, self.space, self.config = env, space, config
    self.task_params = jnp.asarray(env.train_tasks, jnp.float32)
    self.generation = jax.jit(self._generation, donate_argnums=(0,))
    self.probe_states = jax.jit(self._probe_states)

  def _rollout(self, thetas: jax.Array, key: jax.Array) -> acting.Episode:
    """One episode per policy on the family's first task, scored on every task."""
    n = thetas.shape[0]
    return acting.rollout(self.env, self.space.act_fn(), thetas,
                          jnp.broadcast_to(self.task_params[0], (n, self.task_params.shape[1])),
                          jax.random.split(key, n), score_params=self.task_params,
                          keep_states=True)

  @staticmethod
  def _visited(episode: acting.Episode, key: jax.Array, per_policy: int) -> jax.Array:
    """``per_policy`` observations per policy drawn from the steps it was alive at
    (the reset's included): [B, per_policy, obs]."""
    obs = jnp.moveaxis(episode.obs[:-1], 0, 1)                    # [B, T, obs]
    alive = jnp.moveaxis(episode.alive, 0, 1)                     # [B, T]
    logits = jnp.where(alive > 0, 0.0, -jnp.inf)
    keys = jax.random.split(key, obs.shape[0])
    pick = jax.vmap(lambda k, l: jax.random.categorical(k, l, shape=(per_policy,)))(
        keys, logits)
    return jnp.take_along_axis(obs, pick[:, :, None], axis=1)

  def _probe_states(self, key: jax.Array) -> jax.Array:
    c = self.config
    init_key, roll_key, pick_key, box_key = jax.random.split(key, 4)
    thetas = jax.vmap(self.space.init)(jax.random.split(init_key, c.probe_policies))
    visited = self._visited(self._rollout(thetas, roll_key), pick_key,
                            -(-c.num_probe_states // c.probe_policies))
    visited = visited.reshape(-1, self.env.observation_size)[:c.num_probe_states]
    if c.probe_source == "visited":
      return visited
    low, high = visited.min(0), visited.max(0)
    return jax.random.uniform(box_key, visited.shape, minval=low, maxval=high)

  def empty_archive(self) -> Archive:
    c, s = self.config, self.space
    n, tasks = c.size, self.task_params.shape[0]
    return Archive(
        params=jnp.zeros((n, s.num_params)),
        descriptors=jnp.zeros((n, c.num_probe_states * s.action_size)),
        returns=jnp.zeros((n, tasks)), velocity=jnp.zeros(n), novelty=jnp.zeros(n),
        generation=jnp.zeros(n, jnp.int32),
        states=jnp.zeros((n, c.states_per_policy, s.observation_size)),
        count=jnp.zeros((), jnp.int32))

  def _generation(self, archive: Archive, probe_states: jax.Array, key: jax.Array,
                  generation: jax.Array) -> Archive:
    c = self.config
    num = c.candidates
    init_key, parent_key, noise_key, roll_key, pick_key = jax.random.split(key, 5)
    fresh = jax.vmap(self.space.init)(jax.random.split(init_key, num))
    parents = archive.params[jax.random.randint(parent_key, (num,), 0,
                                                jnp.maximum(archive.count, 1))]
    mutants = parents + c.mutation_std * jax.random.normal(noise_key, parents.shape)
    mutate = (jnp.arange(num) < round(c.mutation_fraction * num)) & (archive.count > 0)
    candidates = jnp.where(mutate[:, None], mutants, fresh)
    descriptors = self.space.actions_on(candidates, probe_states).reshape(num, -1)
    filled = jnp.arange(c.size) < archive.count
    novelty = knn_novelty(descriptors, jnp.concatenate([archive.descriptors, descriptors]),
                          jnp.concatenate([filled, jnp.ones(num, bool)]), c.k,
                          self_offset=c.size)
    kept_novelty, kept = jax.lax.top_k(novelty, c.generation_size)
    thetas = candidates[kept]
    episode = self._rollout(thetas, roll_key)
    at = archive.count
    put = lambda buf, rows: jax.lax.dynamic_update_slice_in_dim(buf, rows.astype(buf.dtype),
                                                               at, 0)
    return Archive(
        params=put(archive.params, thetas), descriptors=put(archive.descriptors,
                                                            descriptors[kept]),
        returns=put(archive.returns, episode.scores),
        velocity=put(archive.velocity, episode.velocity),
        novelty=put(archive.novelty, kept_novelty),
        generation=put(archive.generation, jnp.full(c.generation_size, generation)),
        states=put(archive.states, self._visited(episode, pick_key, c.states_per_policy)),
        count=at + c.generation_size)

  def build(self, key: jax.Array,
            progress: Optional[Callable[[int], None]] = None) -> PolicyDataset:
    """The whole dataset; ``progress(policies_added)`` after every generation."""
    probe_key, key = jax.random.split(key)
    probe_states = self.probe_states(probe_key)
    archive = self.empty_archive()
    for generation, gen_key in enumerate(jax.random.split(key, self.config.generations)):
      archive = self.generation(archive, probe_states, gen_key, jnp.int32(generation))
      if progress is not None:
        archive.count.block_until_ready()   # the bar follows the work, not the dispatch
        progress(self.config.generation_size)
    a = jax.device_get(archive)
    return PolicyDataset(
        env_name=self.env.name, hidden=self.space.hidden, task_names=self.env.task_names,
        task_params=np.asarray(self.task_params), params=a.params,
        descriptors=a.descriptors, returns=a.returns, velocity=a.velocity,
        novelty=a.novelty, generation=a.generation,
        probe_states=np.asarray(probe_states),
        states=a.states.reshape(-1, self.space.observation_size))
