"""Data parallelism over every device of the job: one mesh with a ``data`` axis.

The epoch is written on global arrays, one program for any number of devices; the
trainer lays its state over the mesh with sharding annotations
(``jax.lax.with_sharding_constraint``) and XLA's SPMD partitioner splits the work and
emits the collectives: the losses are means over a batch laid over the data axis, so
their gradients (hence the parameters, the optimiser states and the temperature, all
replicated) come out of an all-reduce inside the jitted epoch, with no host round trip.
Random draws are the same on any number of devices (``jax_threefry_partitionable``), so
an N-device run samples the transitions and actions a 1-device run samples; only the
order of floating-point sums differs (the all-reduce adds per-device partial sums).

``shard_layout`` says which axis of the env batch, the replay and the SGD batch is laid
over the data axis:

- ``tasks``: device d holds whole tasks (tasks d*K/D .. (d+1)*K/D - 1 of K): their envs,
  their replay partitions, their rows of the task-balanced batch.  Collection, replay
  insertion and sampling stay on the device; the only traffic is the gradient
  all-reduce.  Needs the task count divisible by the device count.
- ``storage``: every task on every device: the env batch, the replay's storage
  (capacity) axis and the SGD batch are split evenly, whatever the task count.  Insertion
  and sampling then cross devices (XLA moves the epoch's transitions and the sampled
  rows).

With one device nothing is annotated: the programs are the single-device ones.
"""
from __future__ import annotations

import socket
import time
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np

DATA = "data"
LAYOUTS = ("tasks", "storage")


class DistributedError(RuntimeError):
  """The multi-host runtime could not start (one line: who, where, how long)."""


def process_problems(config: ml_collections.ConfigDict) -> list[str]:
  """One line per problem of the multi-host keys (their types are checked already)."""
  n, pid, address = config.num_processes, config.process_id, config.coordinator_address
  if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, pid)):
    return []
  if n == 1:
    return []
  out = []
  if pid >= n:
    out.append(f"process_id={pid} is out of range for num_processes={n} (0..{n - 1})")
  host, _, port = str(address).rpartition(":")
  if not host or not port.isdigit():
    out.append(f"coordinator_address must be host:port when num_processes > 1, "
               f"got {address!r}")
  return out


def initialize(config: ml_collections.ConfigDict) -> None:
  """Starts JAX's distributed runtime for a multi-host job (``num_processes`` > 1): every
  process calls it, before anything touches a device, with the coordinator's address
  and its own ``process_id``; ``jax.devices()`` then lists every host's devices.  CPU
  collectives between processes go through gloo.  A process other than 0 that finds no
  coordinator within ``coordinator_timeout_s`` raises ``DistributedError``; process 0
  (the coordinator) waiting that long for an absent process is ended by XLA itself,
  with its own message (not catchable from Python).  A process that sends no heartbeat
  for ``peer_timeout_s`` is lost: XLA then ends every other process (a fatal log and an
  abort, which ``training.supervisor`` turns into one line).  A no-op once the runtime
  runs (a process's later jobs)."""
  if config.num_processes == 1 or jax.distributed.is_initialized():
    return
  who = f"process {config.process_id} of {config.num_processes}"
  deadline = time.monotonic() + config.coordinator_timeout_s
  if config.process_id != 0:
    # XLA's client aborts the process when the coordinator never answers; a plain TCP
    # connection first turns that into one line.
    host, _, port = config.coordinator_address.rpartition(":")
    while True:
      try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
        break
      except OSError as e:
        if time.monotonic() > deadline:
          raise DistributedError(
              f"{who}: no coordinator at {config.coordinator_address} within "
              f"{config.coordinator_timeout_s} s ({e.strerror or e})") from e
        time.sleep(0.2)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      config.coordinator_address, config.num_processes, config.process_id,
      initialization_timeout=max(1, int(deadline - time.monotonic())),
      heartbeat_timeout_seconds=int(config.peer_timeout_s))


def device_count(config: ml_collections.ConfigDict) -> int:
  """The run's device count: ``num_devices``, 0 meaning every device of the job."""
  return int(config.num_devices) or jax.device_count()


def problems(config: ml_collections.ConfigDict, num_tasks: int) -> list[str]:
  """One line per reason the run's batches cannot be laid over its devices."""
  n, available = device_count(config), jax.device_count()
  if n > available:
    return [f"num_devices={n}, but the job has {available} device(s)"]
  if n == 1:
    return []
  if config.num_seeds > 1:   # the devices split the seeds: whole seeds per device
    if config.num_seeds % n:
      return [f"num_seeds ({config.num_seeds}) must be divisible by the device count ({n}): "
              f"the devices split the seeds"]
    return []
  out = []
  batch = num_tasks * config.batch_size_per_task
  if config.shard_layout == "tasks":
    if num_tasks % n:
      out.append(f"shard_layout=tasks needs the task count ({num_tasks}) divisible by the "
                 f"device count ({n}); use shard_layout=storage or another num_devices")
  else:
    envs = num_tasks * config.envs_per_task
    if envs % n:
      out.append(f"the env batch (tasks x envs_per_task = {envs}) is not divisible by "
                 f"the device count ({n})")
    if config.replay_capacity % n:
      out.append(f"replay_capacity ({config.replay_capacity}) is not divisible by the "
                 f"device count ({n})")
  if batch % n:
    out.append(f"the SGD batch (tasks x batch_size_per_task = {batch}) is not divisible "
               f"by the device count ({n})")
  return out


class Layout:
  """Where each array of a run lives on the mesh of ``num_devices`` devices; with
  ``seeds`` (a run of ``num_seeds`` > 1), every leaf's leading seed axis over the data
  axis: whole seeds per device, nothing crosses devices inside an epoch."""

  def __init__(self, num_devices: int, shard_layout: str, seeds: bool = False):
    self.mesh = Mesh(np.array(jax.devices()[:num_devices]), (DATA,))
    self.shard_layout = shard_layout
    self.seeds = seeds
    self.replicated = NamedSharding(self.mesh, P())
    self.leading = NamedSharding(self.mesh, P(DATA))
    self.replay_data = (self.leading if shard_layout == "tasks"
                        else NamedSharding(self.mesh, P(None, DATA)))

  @classmethod
  def for_run(cls, config: ml_collections.ConfigDict) -> "Layout | None":
    """The run's layout; None with one device (nothing is annotated)."""
    n = device_count(config)
    return None if n == 1 else cls(n, config.shard_layout, seeds=config.num_seeds > 1)

  @property
  def num_devices(self) -> int:
    return self.mesh.devices.size

  def state_shardings(self, state: Any) -> Any:
    """A sharding per leaf of a ``TrainingState`` (arrays or ShapeDtypeStructs): the
    env batch (every leaf of ``env_state``, env axis first) and the replay's data laid
    over the data axis (the context buffer's by task with ``tasks``, else replicated: it
    is one epoch small); the learner, the buffers' positions, the RNG and the counters
    replicated.  Seeds: every leaf over the data axis by its seed axis."""
    if self.seeds:
      return jax.tree.map(lambda _: self.leading, state)
    replicate = lambda tree: jax.tree.map(lambda _: self.replicated, tree)
    laid = lambda buffer, sharding: None if buffer is None else buffer.replace(
        data=jax.tree.map(lambda _: sharding, buffer.data),
        insert_pos=self.replicated, size=self.replicated)
    return state.replace(
        learner=replicate(state.learner), replay=laid(state.replay, self.replay_data),
        context=laid(state.context, self.leading if self.shard_layout == "tasks"
                     else self.replicated),
        env_state=jax.tree.map(lambda x: self.leading if x.ndim else self.replicated,
                               state.env_state),
        rng=self.replicated, epoch=self.replicated, env_steps=self.replicated,
        grad_steps=self.replicated)

  def constrain_state(self, state: Any) -> Any:
    return jax.lax.with_sharding_constraint(state, self.state_shardings(state))

  def constrain_batch(self, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The flat SGD batch [tasks x batch_size_per_task, ...] over the data axis."""
    return jax.lax.with_sharding_constraint(batch, self.leading)

  def constrain_per_task(self, tree: Any) -> Any:
    """Arrays with the task axis first (PEARL's context batch): over the data axis with
    the ``tasks`` layout, left to XLA with ``storage``."""
    if self.shard_layout != "tasks":
      return tree
    return jax.lax.with_sharding_constraint(tree, self.leading)


def search_layout() -> "Layout | None":
  """A layout over every device of the job for batched searches (CEM, table-ES): their
  candidates' episodes are laid over the data axis (any count: XLA pads an uneven last
  shard); None with one device."""
  return None if jax.device_count() == 1 else Layout(jax.device_count(), "storage")


def replicate(tree: Any, layout: "Layout | None") -> Any:
  """``tree`` (a policy's parameters) on every device of ``layout`` (as is if None): a
  jitted search whose candidates are laid over the mesh takes its arguments there."""
  return tree if layout is None else jax.device_put(tree, layout.replicated)

