"""On-device replay with one ring-buffer partition per task and task-balanced sampling.

All tasks step together (one vmapped batch holds every task), so every partition
receives the same number of transitions per insert and one write position serves all
tasks.  Sampling draws the same number of transitions from each task's partition, the
task-balanced batches of multi-task SAC (EAR reference: 128 per task, Algorithm 1).
Every function is pure with static shapes, so it can live inside a jitted training step.
"""
from __future__ import annotations

from flax import struct
import jax
import jax.numpy as jnp
import numpy as np

FIELDS = ("obs", "action", "reward", "next_obs", "discount")   # and any ``extra_fields``


@struct.dataclass
class ReplayState:
  """``data[field]``: [num_tasks, capacity_per_task, ...]; ``discount`` is 0 on
  termination and 1 otherwise (time-limit truncation included).  ``insert_pos`` (int32)
  is the next write slot of every partition, ``size`` (int32) its filled slots."""
  data: dict[str, jax.Array]
  insert_pos: jax.Array
  size: jax.Array

  @property
  def capacity(self) -> int:
    """Slots per task partition."""
    return self.data["reward"].shape[1]

  @property
  def num_tasks(self) -> int:
    return self.data["reward"].shape[0]


def init(num_tasks: int, capacity_per_task: int, obs_size: int, action_size: int,
         extra_fields: tuple[str, ...] = ()) -> ReplayState:
  """An empty buffer of ``capacity_per_task`` transitions for each of ``num_tasks``;
  ``extra_fields`` are scalars per transition kept beside ``FIELDS`` (an agent's
  ``ReplayData.extra_fields``)."""
  if not isinstance(capacity_per_task, (int, np.integer)) or capacity_per_task <= 0:
    raise ValueError(f"capacity_per_task must be a positive int, got {capacity_per_task!r}")
  if num_tasks <= 0:
    raise ValueError(f"num_tasks must be positive, got {num_tasks!r}")
  shape = (num_tasks, capacity_per_task)
  data = {"obs": jnp.zeros(shape + (obs_size,)),
          "action": jnp.zeros(shape + (action_size,)),
          "reward": jnp.zeros(shape),
          "next_obs": jnp.zeros(shape + (obs_size,)),
          "discount": jnp.zeros(shape)}
  clash = set(extra_fields) & set(data)
  if clash:
    raise ValueError(f"extra_fields {sorted(clash)} clash with the replay's own fields")
  data.update({field: jnp.zeros(shape) for field in extra_fields})
  return ReplayState(data=data, insert_pos=jnp.zeros((), jnp.int32),
                     size=jnp.zeros((), jnp.int32))


def insert(state: ReplayState, transitions: dict[str, jax.Array]) -> ReplayState:
  """Writes ``transitions[field]`` of shape [num_tasks, envs_per_task, ...] at the ring
  position of every partition at once, wrapping past the end (slot (pos + i) % capacity).
  """
  if set(transitions) != set(state.data):
    raise ValueError(f"transitions must have exactly the fields "
                     f"{tuple(sorted(state.data))}, got {tuple(sorted(transitions))}")
  chunk = transitions["reward"].shape[1]
  if transitions["reward"].shape[0] != state.num_tasks:
    raise ValueError(f"transitions hold {transitions['reward'].shape[0]} tasks, "
                     f"the buffer {state.num_tasks}")
  if chunk > state.capacity:
    raise ValueError(f"cannot insert {chunk} transitions per task into a capacity of "
                     f"{state.capacity}")
  slots = (state.insert_pos + jnp.arange(chunk)) % state.capacity
  data = {field: state.data[field].at[:, slots].set(
      transitions[field].astype(state.data[field].dtype), unique_indices=True)
          for field in state.data}
  return ReplayState(data=data,
                     insert_pos=(state.insert_pos + chunk) % state.capacity,
                     size=jnp.minimum(state.size + chunk, state.capacity))


def refresh(state: ReplayState, transitions: dict[str, jax.Array],
            fresh: jax.Array) -> ReplayState:
  """A buffer whose capacity is one insert per task (a context buffer,
  ``agents.ContextData``): ``transitions[field]`` [num_tasks, capacity, ...] replace the
  slots where ``fresh`` [num_tasks, capacity] is true; the other slots keep what they
  held.  The buffer counts as full from then on (its first refresh writes every slot)."""
  if set(transitions) != set(state.data):
    raise ValueError(f"transitions must have exactly the fields "
                     f"{tuple(sorted(state.data))}, got {tuple(sorted(transitions))}")
  if fresh.shape != state.data["reward"].shape:
    raise ValueError(f"fresh has shape {fresh.shape}, the buffer "
                     f"{state.data['reward'].shape}")

  def where(old, new):
    mask = fresh.reshape(fresh.shape + (1,) * (old.ndim - 2))
    return jnp.where(mask, new.astype(old.dtype), old)

  return ReplayState(data={f: where(state.data[f], transitions[f]) for f in state.data},
                     insert_pos=state.insert_pos,
                     size=jnp.full((), state.capacity, jnp.int32))


def sample(state: ReplayState, key: jax.Array, batch_per_task: int) -> dict[str, jax.Array]:
  """``batch_per_task`` transitions per task, uniform with replacement over the filled
  slots of that task's partition: fields of shape [num_tasks, batch_per_task, ...] plus
  ``task`` (int32), the task index of each sample.  Requires ``size > 0``."""
  slots = jax.random.randint(key, (state.num_tasks, batch_per_task), 0, state.size)
  task = jnp.broadcast_to(jnp.arange(state.num_tasks, dtype=jnp.int32)[:, None],
                          slots.shape)
  batch = {field: value[task, slots] for field, value in state.data.items()}
  batch["task"] = task
  return batch


def flatten_batch(batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Merges the [num_tasks, batch_per_task] leading axes into one of their product."""
  return {field: value.reshape((-1,) + value.shape[2:]) for field, value in batch.items()}
