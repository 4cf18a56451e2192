"""Checkpoints of the full training state, and the best policy kept apart (orbax).

``DIR/checkpoints/state/<epoch>``: everything a resumed run needs for a bitwise-equal
continuation (parameters with the LTE-producing task encoder, optimizer states, target
critics, temperature, replay contents, env states, RNG, counters).  Orbax writes each
checkpoint to a temporary directory and renames it when complete, so a half-written
checkpoint is never listed, hence never loaded.
``DIR/checkpoints/best/<epoch>``: the actor and critic parameters of the evaluation with
the highest mean return, for adaptation and interpolation.

Every checkpoint also stores a CRC-32 per array (``digest``).  A restore first compares the
saved shapes and dtypes with the run's, then checks the digests, so a checkpoint of
another env or network shape, or one whose files were truncated or altered after orbax
committed it, raises ``CheckpointError`` instead of loading partially or silently.
(Checkpoints written before digests existed restore without that last check.)
"""
from __future__ import annotations

import os
from typing import Any
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

DIGEST = "digest"


class CheckpointError(Exception):
  """A checkpoint that cannot be restored into this run."""


def _manager(directory: str, max_to_keep: int | None) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def _one_line(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


def digest(tree: Any) -> np.ndarray:
  """CRC-32 of each array's bytes, in path order."""
  leaves = _by_path(tree)
  return np.array([zlib.crc32(np.ascontiguousarray(jax.device_get(leaves[k])).tobytes())
                   for k in sorted(leaves)], np.int64)


def _shapes(tree: Any) -> dict[str, tuple]:
  return {jax.tree_util.keystr(path, simple=True, separator="."):
          (tuple(leaf.shape), np.dtype(leaf.dtype))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _restore(manager: ocp.CheckpointManager, epoch: int, target: dict, what: str) -> dict:
  """``target`` (a dict of abstract arrays) from ``manager``'s ``epoch``, checked against
  the saved shapes and, when saved, the digest; any failure is a one-line CheckpointError."""
  path = os.path.join(str(manager.directory), str(epoch))
  try:
    saved = dict(manager.item_metadata(epoch).tree)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f"{what} checkpoint {path} is unreadable ({_one_line(e)}); delete "
                          f"it to fall back to an earlier one") from e
  has_digest = DIGEST in saved
  saved.pop(DIGEST, None)
  saved_shapes, wanted = _shapes(saved), _shapes(target)
  for name in sorted(set(saved_shapes) | set(wanted)):
    if saved_shapes.get(name) != wanted.get(name):
      have, want = saved_shapes.get(name), wanted.get(name)
      raise CheckpointError(
          f"{what} checkpoint {path} was written for another env or network shape: "
          f"{name} is {'absent' if have is None else f'{have[1]}{list(have[0])}'}, this "
          f"run needs {'none' if want is None else f'{want[1]}{list(want[0])}'}")
  if has_digest:
    target = {**target, DIGEST: jax.ShapeDtypeStruct((len(_by_path(target)),), np.int64)}
  try:
    restored = manager.restore(epoch, args=ocp.args.StandardRestore(target))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f"{what} checkpoint {path} is unreadable ({_one_line(e)}); delete "
                          f"it to fall back to an earlier one") from e
  if has_digest:
    expected = np.asarray(restored.pop(DIGEST))
    actual = digest(restored)
    if not np.array_equal(expected, actual):
      names = sorted(_by_path(restored))
      bad = names[int(np.argmax(expected != actual))]
      raise CheckpointError(f"{what} checkpoint {path} is corrupted: {bad} does not match "
                            f"its digest; delete it to fall back to an earlier one")
  return restored


class Checkpointer:
  """The state and best-policy checkpoints of one workdir."""

  def __init__(self, workdir: str, max_to_keep: int):
    root = os.path.join(workdir, "checkpoints")
    self._state = _manager(os.path.join(root, "state"), max_to_keep)
    self._best = _manager(os.path.join(root, "best"), None)

  def latest_epoch(self) -> int | None:
    return self._state.latest_step()

  def state_path(self, epoch: int) -> str:
    return os.path.join(str(self._state.directory), str(epoch))

  def save(self, epoch: int, state: Any) -> None:
    """Saves the full state; then older best checkpoints than the newest one up to
    ``epoch`` go (only now is that newest one reachable from a resume)."""
    leaves = _by_path(state)
    self._state.save(epoch, args=ocp.args.StandardSave({**leaves, DIGEST: digest(leaves)}),
                     force=True)
    self._state.wait_until_finished()
    covered = [step for step in self._best.all_steps() if step <= epoch]
    for old in covered:
      if old < max(covered):
        self._best.delete(old)

  def restore(self, abstract_state: Any, epoch: int | None = None) -> Any:
    """The state saved at ``epoch`` (default: latest), in the structure of ``abstract_state``."""
    epoch = self.latest_epoch() if epoch is None else epoch
    if epoch is None:
      raise CheckpointError(f"no state checkpoint in {self._state.directory}")
    leaves = _restore(self._state, epoch, _by_path(abstract_state), "state")
    return _from_path(abstract_state, leaves)

  def best_epoch(self) -> int | None:
    return self._best.latest_step()

  def save_best(self, epoch: int, params: dict) -> None:
    """Saves ``params`` as the best so far (a newer best is always a better one)."""
    self._best.save(epoch, args=ocp.args.StandardSave({**params, DIGEST: digest(params)}),
                    force=True)
    self._best.wait_until_finished()

  def drop_best_after(self, epoch: int) -> None:
    """Deletes best checkpoints of epochs after ``epoch``: a resumed run redoes them."""
    for old in self._best.all_steps():
      if old > epoch:
        self._best.delete(old)

  def restore_best(self, abstract_params: dict) -> dict:
    epoch = self.best_epoch()
    if epoch is None:
      raise CheckpointError(f"no best checkpoint in {self._best.directory}")
    return _restore(self._best, epoch, abstract_params, "best")

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


def abstract(tree: Any) -> Any:
  """ShapeDtypeStructs of ``tree`` (restore targets)."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
