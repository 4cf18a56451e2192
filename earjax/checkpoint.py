"""Checkpoints of the full training state, and the best policy kept apart (orbax).

``DIR/checkpoints/state/<epoch>``: item ``state``, everything a resumed run needs for a
bitwise-equal continuation (the agent's parameters and optimiser states, replay
contents, env states, RNG, counters), and item ``policy``, a copy of the policy
parameters alone, so a policy is loaded without reading the replay.
``DIR/checkpoints/best/<epoch>``: the agent's ``best_items`` (``policy``, and for SAC
agents ``critic``) of the evaluation with the highest mean return.  A restore reads only
the items it asks for.  Orbax writes each checkpoint to a temporary directory and renames
it when complete, so a half-written checkpoint is never listed, hence never loaded.

Every item also stores a CRC-32 per array (``digest``).  A restore first compares the
saved shapes and dtypes with the run's, then checks the digests, so a checkpoint of
another env or network shape, or one whose files were truncated or altered after orbax
committed it, raises ``CheckpointError`` instead of loading partially or silently.
"""
from __future__ import annotations

import os
import time
from typing import Any
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

DIGEST = "digest"
STATE_ITEMS = ("state", "policy")


class CheckpointError(Exception):
  """A checkpoint that cannot be restored into this run."""


def _manager(directory: str, max_to_keep: int | None,
             item_names: tuple[str, ...]) -> ocp.CheckpointManager:
  """A manager of ``item_names`` and of any other item its checkpoints hold (orbax warns
  of items it has no handler for, even when a restore does not ask for them)."""
  found = set()
  if os.path.isdir(directory):
    for step in os.listdir(directory):
      if step.isdigit() and os.path.isdir(os.path.join(directory, step)):
        found.update(n for n in os.listdir(os.path.join(directory, step))
                     if os.path.isdir(os.path.join(directory, step, n))
                     and not n.startswith(("_", ".")))
  item_names = tuple(item_names) + tuple(sorted(found - set(item_names)))
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(
      os.path.abspath(directory), options=options,
      item_handlers={name: ocp.StandardCheckpointHandler() for name in item_names})


def _one_line(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


def digest(tree: Any, like: np.ndarray | None = None) -> np.ndarray:
  """A checksum of each array, in path order: the CRC-32 of its bytes (>= 0) where this
  process holds the whole array, else ``-1 - device_checksum`` (a multi-host job's
  sharded arrays, never gathered to one host).  ``like``: a saved digest whose kind to
  reproduce per array (a CRC of an array sharded over hosts now is computed on the
  array gathered to every host)."""
  leaves = _by_path(tree)
  out = []
  for i, k in enumerate(sorted(leaves)):
    leaf = leaves[k]
    whole = not isinstance(leaf, jax.Array) or leaf.is_fully_addressable
    if (like[i] < 0) if like is not None else not whole:
      out.append(-1 - int(_device_checksum(leaf)))
      continue
    if not whole:
      leaf = multihost_utils.process_allgather(leaf, tiled=True)
    out.append(zlib.crc32(np.ascontiguousarray(jax.device_get(leaf)).tobytes()))
  return np.array(out, np.int64)


@jax.jit
def _device_checksum(x: jax.Array) -> jax.Array:
  """A position-weighted sum of ``x``'s 32-bit words modulo 2^32, computed where the
  shards live (replicated result)."""
  if x.dtype.itemsize != 4:    # bools, 8- and 16-bit types: their values as float32
    x = x.astype(jnp.float32)
  words = jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
  weights = jnp.arange(words.size, dtype=jnp.uint32) * jnp.uint32(2654435761) + 1
  return jnp.sum(words * weights, dtype=jnp.uint32)


def _shapes(tree: Any) -> dict[str, tuple]:
  return {jax.tree_util.keystr(path, simple=True, separator="."):
          (tuple(leaf.shape), np.dtype(leaf.dtype))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _save_args(items: dict[str, Any]) -> ocp.args.Composite:
  saved = {}
  for name, tree in items.items():
    leaves = _by_path(tree)
    saved[name] = ocp.args.StandardSave({**leaves, DIGEST: digest(leaves)})
  return ocp.args.Composite(**saved)


def _restore(manager: ocp.CheckpointManager, epoch: int, targets: dict[str, Any],
             what: str, earlier: str = "") -> dict[str, Any]:
  """``targets`` (item name -> abstract tree) from ``manager``'s ``epoch``, each item
  checked against its saved shapes and its digest; any failure is a one-line
  CheckpointError, ending with ``earlier`` (how to use an earlier checkpoint without
  deleting anything) where the checkpoint itself is bad.  Only the named items are
  read; each lands where its target's sharding says (a checkpoint saved by any device
  or process count is read onto the reader's devices)."""
  path = os.path.join(str(manager.directory), str(epoch))

  def unreadable(e):
    text = _one_line(e)
    if any(word in text for word in ("Topology", "topology", "sharding", "Sharding")):
      # Not the checkpoint's fault: where its arrays were asked to go.
      return CheckpointError(f"{what} checkpoint {path} could not be laid onto this "
                             f"process's devices ({text})")
    return CheckpointError(f"{what} checkpoint {path} is unreadable ({text})" + earlier)

  try:
    metadata = manager.item_metadata(epoch)
    saved = {name: dict(metadata[name]) for name in targets}
  except Exception as e:  # pylint: disable=broad-except
    raise unreadable(e) from e
  wanted = {name: _by_path(tree) for name, tree in targets.items()}
  for name in targets:
    saved[name].pop(DIGEST, None)
    have_shapes, want_shapes = _shapes(saved[name]), _shapes(wanted[name])
    for leaf in sorted(set(have_shapes) | set(want_shapes)):
      if have_shapes.get(leaf) != want_shapes.get(leaf):
        have, want = have_shapes.get(leaf), want_shapes.get(leaf)
        raise CheckpointError(
            f"{what} checkpoint {path} was written for another env, agent or network "
            f"shape: {leaf} is {'absent' if have is None else f'{have[1]}{list(have[0])}'}"
            f", this run needs {'none' if want is None else f'{want[1]}{list(want[0])}'}")
  args = {name: ocp.args.StandardRestore(
      # The digest was saved as a NumPy array and comes back as one (int64 intact).
      {**leaves, DIGEST: jax.ShapeDtypeStruct((len(leaves),), np.int64)})
          for name, leaves in wanted.items()}
  try:
    restored = manager.restore(epoch, args=ocp.args.Composite(**args))
  except Exception as e:  # pylint: disable=broad-except
    raise unreadable(e) from e
  out = {}
  for name, tree in targets.items():
    leaves = dict(restored[name])
    expected = np.asarray(leaves.pop(DIGEST))
    actual = digest(leaves, like=expected)
    if not np.array_equal(expected, actual):
      bad = sorted(leaves)[int(np.argmax(expected != actual))]
      raise CheckpointError(f"{what} checkpoint {path} is corrupted: {bad} does not match "
                            f"its digest" + earlier)
    out[name] = _from_path(tree, leaves)
  return out


class Checkpointer:
  """The state and best-policy checkpoints of one workdir."""

  def __init__(self, workdir: str, max_to_keep: int,
               best_items: tuple[str, ...] = ("policy",)):
    """``best_items``: the names of the best checkpoint's items (the agent's
    ``best_items``; reading needs only the names it restores)."""
    root = self._root = os.path.join(workdir, "checkpoints")
    self._state = _manager(os.path.join(root, "state"), max_to_keep, STATE_ITEMS)
    self._best = _manager(os.path.join(root, "best"), None, best_items)

  def latest_epoch(self) -> int | None:
    return self._state.latest_step()

  def state_path(self, epoch: int) -> str:
    return os.path.join(str(self._state.directory), str(epoch))

  def save(self, epoch: int, state: Any, policy: Any) -> None:
    """Saves the full state (and its ``policy`` parameters apart); then older best
    checkpoints than the newest one up to ``epoch`` go (only now is that newest one
    reachable from a resume)."""
    self._state.save(epoch, args=_save_args({"state": state, "policy": policy}), force=True)
    self._state.wait_until_finished()
    covered = [step for step in self._best.all_steps() if step <= epoch]
    for old in covered:
      if old < max(covered):
        self._best.delete(old)

  def epochs(self) -> list[int]:
    """The epochs of the training checkpoints kept, oldest first."""
    return sorted(self._state.all_steps())

  def earlier_hint(self, epoch: int, flag: str) -> str:
    """How to use a checkpoint older than ``epoch`` with ``flag`` (``--flag=<epoch>``),
    nothing deleted; empty where none is kept."""
    older = [e for e in self.epochs() if e < epoch]
    if not older:
      return ""
    return (f"; to continue from an earlier checkpoint, pass {flag}={older[-1]} "
            f"(kept: {', '.join(map(str, older))})")

  def restore(self, abstract_state: Any, epoch: int | None = None,
              earlier_flag: str = "") -> Any:
    """The state saved at ``epoch`` (default: latest), in the structure of
    ``abstract_state``; a bad checkpoint's error names ``earlier_flag`` with an older
    epoch kept."""
    return self.restore_items({"state": abstract_state}, epoch, earlier_flag)["state"]

  def restore_items(self, targets: dict[str, Any], epoch: int | None = None,
                    earlier_flag: str = "") -> dict:
    """Items (``state``, ``policy``) of the state checkpoint at ``epoch`` (default latest)."""
    epoch = self.latest_epoch() if epoch is None else epoch
    if epoch is None:
      raise CheckpointError(f"no training checkpoint in {self._state.directory}")
    if epoch not in self.epochs():
      raise CheckpointError(f"no training checkpoint of epoch {epoch} in "
                            f"{self._state.directory}; kept: "
                            f"{', '.join(map(str, self.epochs())) or 'none'}")
    earlier = self.earlier_hint(epoch, earlier_flag) if earlier_flag else ""
    return _restore(self._state, epoch, targets, "state", earlier)

  def best_epoch(self) -> int | None:
    return self._best.latest_step()

  def save_best(self, epoch: int, items: dict[str, Any]) -> None:
    """Saves ``items`` as the best so far (a newer best is always a better one)."""
    self._best.save(epoch, args=_save_args(items), force=True)
    self._best.wait_until_finished()

  def set_aside_after(self, epoch: int) -> list[str]:
    """Moves the training and best checkpoints of epochs after ``epoch`` to
    ``checkpoints/superseded/`` (nothing is deleted): a run resumed from an earlier
    checkpoint writes those epochs anew.  Returns where they went."""
    moved = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    managers = (("state", self._state), ("best", self._best))
    if jax.process_index() == 0:   # the checkpoints' directory is the job's, shared
      for kind, manager in managers:
        for step in [step for step in manager.all_steps() if step > epoch]:
          target = os.path.join(self._root, "superseded", f"{kind}_{step}_{stamp}")
          os.makedirs(os.path.dirname(target), exist_ok=True)
          os.rename(os.path.join(str(manager.directory), str(step)), target)
          moved.append(target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("earjax_set_aside_after")
    for _, manager in managers:
      manager.reload()
    return moved

  def drop_best_after(self, epoch: int) -> None:
    """Deletes best checkpoints of epochs after ``epoch``: a resumed run redoes them."""
    for old in self._best.all_steps():
      if old > epoch:
        self._best.delete(old)

  def restore_best(self, targets: dict[str, Any], earlier: str = "") -> dict:
    """The named items (e.g. ``{"policy": abstract}``) of the best checkpoint; a bad
    one's error ends with ``earlier`` (how to read another checkpoint instead)."""
    epoch = self.best_epoch()
    if epoch is None:
      raise CheckpointError(f"no best checkpoint in {self._best.directory}")
    return _restore(self._best, epoch, targets, "best", earlier)

  def close(self) -> None:
    self._state.close()
    self._best.close()


def _by_path(tree: Any) -> dict[str, Any]:
  """{"learner.actor_params...": leaf} of the non-empty leaves (orbax cannot save empty
  arrays, and ``mjx.Data`` has some, e.g. ``act`` of a model without activations)."""
  return {jax.tree_util.keystr(path, simple=True, separator="."): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
          if leaf.size > 0}


def _from_path(abstract_tree: Any, leaves: dict[str, Any]) -> Any:
  """``abstract_tree`` filled from ``_by_path`` leaves, empty leaves re-created."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(abstract_tree)
  filled = []
  for path, leaf in paths:
    name = jax.tree_util.keystr(path, simple=True, separator=".")
    filled.append(leaves[name] if leaf.size > 0 else jnp.zeros(leaf.shape, leaf.dtype))
  return jax.tree_util.tree_unflatten(treedef, filled)


def abstract(tree: Any, sharding: Any = None) -> Any:
  """ShapeDtypeStructs of ``tree`` (restore targets), laid out by ``sharding``: one
  sharding for every leaf, a tree of them matching ``tree``, or None (orbax's choice)."""
  if sharding is None or isinstance(sharding, jax.sharding.Sharding):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, sharding)
