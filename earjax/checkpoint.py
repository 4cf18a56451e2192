"""Checkpoints of the full training state, and the best policy kept apart (orbax).

``DIR/checkpoints/state/<epoch>``: everything a resumed run needs for a bitwise-equal
continuation (parameters with the LTE-producing task encoder, optimizer states, target
critics, temperature, replay contents, env states, RNG, counters).  Orbax writes each
checkpoint to a temporary directory and renames it when complete, so a half-written
checkpoint is never listed, hence never loaded.
``DIR/checkpoints/best/<epoch>``: the actor and critic parameters of the evaluation with
the highest mean return, for adaptation and interpolation.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


class CheckpointError(Exception):
  """A checkpoint that cannot be restored into this run."""


def _manager(directory: str, max_to_keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


class Checkpointer:
  """The state and best-policy checkpoints of one workdir."""

  def __init__(self, workdir: str, max_to_keep: int):
    root = os.path.join(workdir, "checkpoints")
    self._state = _manager(os.path.join(root, "state"), max_to_keep)
    self._best = _manager(os.path.join(root, "best"), 1)

  def latest_epoch(self) -> int | None:
    return self._state.latest_step()

  def save(self, epoch: int, state: Any) -> None:
    self._state.save(epoch, args=ocp.args.StandardSave(_by_path(state)), force=True)
    self._state.wait_until_finished()

  def restore(self, abstract_state: Any, epoch: int | None = None) -> Any:
    """The state saved at ``epoch`` (default: latest), in the structure of ``abstract_state``."""
    epoch = self.latest_epoch() if epoch is None else epoch
    try:
      leaves = self._state.restore(
          epoch, args=ocp.args.StandardRestore(_by_path(abstract_state)))
    except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
      raise CheckpointError(f"checkpoint of epoch {epoch} does not fit this run "
                            f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
    return _from_path(abstract_state, leaves)

  def best_epoch(self) -> int | None:
    return self._best.latest_step()

  def save_best(self, epoch: int, params: Any) -> None:
    for old in self._best.all_steps():
      self._best.delete(old)
    self._best.save(epoch, args=ocp.args.StandardSave(params), force=True)
    self._best.wait_until_finished()

  def restore_best(self, abstract_params: Any | None = None) -> Any:
    epoch = self.best_epoch()
    if epoch is None:
      raise CheckpointError("no best checkpoint yet")
    args = ocp.args.StandardRestore(abstract_params)
    return self._best.restore(epoch, args=args)

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
