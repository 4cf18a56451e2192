"""Traced programs kept across processes, so that a relaunch traces nothing.

JAX's persistent compilation cache (``earjax.compilation_cache``) lets a relaunch skip
XLA's compile, but every process still traces its functions in Python and lowers them to
StableHLO before that cache is even asked: for an MJX epoch (the env step in a scan,
the agent's update in another) that is most of a warm relaunch.  ``CachedProgram`` is
``jax.jit`` plus a second cache: while one is enabled (``enable``, done by
``enable_compilation_cache``), a function's lowered program is kept with ``jax.export``
in ``<cache dir>/programs/`` and a relaunch deserialises it and calls it.

An entry is keyed by the function's name, the caller's fingerprint of what the function
closes over (for the trainer: its config and tasks), ``environment_fingerprint`` (every
source file of the ``earjax`` package, the versions of the libraries that trace, the
backend) and the tree structure, shapes and dtypes of the arguments: any edit of earjax,
any other library version or config traces afresh.  Within a process every call of one
signature, hit or miss, runs the same exported program, so results do not depend on
whether the cache was warm.  Arguments spread over several devices (or several
processes) take plain ``jax.jit``, as does everything while no cache is enabled; a
program ``jax.export`` refuses is traced with ``jax.jit`` and said so in one warning.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import logging
import os
import pickle
import tempfile
from typing import Any, Callable, Sequence

import jax

_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "mujoco", "mujoco-mjx", "brax", "numpy")
_directory: str | None = None


def enable(path: str) -> str:
  """Keeps exported programs in ``path`` from now on (for every ``CachedProgram``)."""
  global _directory
  os.makedirs(path, exist_ok=True)
  _directory = path
  return path


def disable() -> None:
  global _directory
  _directory = None


def directory() -> str | None:
  """Where programs are kept; None while disabled."""
  return _directory


def source_digest(root: str) -> str:
  """Hash of the names and contents of every ``.py`` and ``.xml`` file under ``root``."""
  digest = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    for name in sorted(filenames):
      if name.endswith((".py", ".xml")):
        path = os.path.join(dirpath, name)
        digest.update(os.path.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as f:
          digest.update(f.read() + b"\0")
  return digest.hexdigest()


@functools.cache
def environment_fingerprint() -> str:
  """Hash of what tracing depends on besides the function's own arguments: the earjax
  package's source and asset files, the tracing libraries' versions, the backend and
  the JAX options that change a trace."""
  digest = hashlib.sha256(source_digest(os.path.dirname(os.path.abspath(__file__))).encode())
  for library in _LIBRARIES:
    try:
      version = importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
      version = "absent"
    digest.update(f"{library}={version};".encode())
  digest.update(f"{jax.default_backend()};{jax.config.jax_enable_x64};"
                f"{jax.config.jax_default_matmul_precision}".encode())
  return digest.hexdigest()


@dataclasses.dataclass
class _Entry:
  """How one argument signature is run: ``call`` takes the flat argument leaves and
  returns the flat output leaves of ``out_tree`` (an exported program), or, when
  ``out_tree`` is None, takes and returns the structured values (plain ``jax.jit``)."""
  call: Callable
  out_tree: Any = None
  out_avals: Sequence[Any] = ()


class CachedProgram:
  """``jax.jit(fn, donate_argnums)`` whose traced program outlives the process.

  Call it like the jitted function (positional and keyword arguments); ``eval_shape``
  and ``compile`` take the same arguments.  ``fingerprint`` must change whenever what
  ``fn`` closes over changes; None keeps nothing (``jax.jit`` alone: programs that call
  back to the host cannot be exported).
  """

  def __init__(self, fn: Callable, name: str, fingerprint: str | None,
               donate_argnums: Sequence[int] = ()):
    self._fn = fn
    self._name = name
    self._fingerprint = fingerprint
    self._donate_argnums = tuple(donate_argnums)
    self._jit = jax.jit(fn, donate_argnums=self._donate_argnums)
    self._entries: dict[tuple, _Entry] = {}

  def __call__(self, *args, **kwargs):
    entry, leaves = self._entry(args, kwargs)
    if entry.out_tree is None:
      return entry.call(*args, **kwargs)
    return jax.tree.unflatten(entry.out_tree, entry.call(*leaves))

  def eval_shape(self, *args, **kwargs):
    """The outputs' shapes and dtypes (``jax.eval_shape``), from the kept program when
    there is one."""
    entry, _ = self._entry(args, kwargs)
    if entry.out_tree is None:
      return jax.eval_shape(self._fn, *args, **kwargs)
    return jax.tree.unflatten(entry.out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype)
                                               for a in entry.out_avals])

  def compiled_text(self, *args, **kwargs) -> str:
    """The optimised HLO XLA runs for these arguments (collectives, host transfers)."""
    return self._jit.lower(*args, **kwargs).compile().as_text()

  def compile(self, *args, **kwargs) -> None:
    """Traces (or loads) and compiles for these arguments without running; the next
    call with the same signature uses the compiled executable."""
    entry, leaves = self._entry(args, kwargs)
    if entry.out_tree is None:
      entry.call = self._jit.lower(*args, **kwargs).compile()
    else:
      entry.call = entry.call.lower(*leaves).compile()

  def _entry(self, args: tuple, kwargs: dict) -> tuple[_Entry, list]:
    leaves, in_tree = jax.tree.flatten((args, kwargs))
    avals = tuple(str(jax.typeof(x)) for x in leaves)
    if (in_tree, avals) not in self._entries:
      self._entries[in_tree, avals] = self._new_entry(avals, args, kwargs, leaves, in_tree)
    return self._entries[in_tree, avals], leaves

  def _new_entry(self, avals, args, kwargs, leaves, in_tree) -> _Entry:
    if _directory is None or self._fingerprint is None or jax.process_count() > 1 or any(
        isinstance(x, jax.Array) and len(x.sharding.device_set) > 1 for x in leaves):
      return _Entry(call=self._jit)
    # The file's name holds no tree structure (its text names memory addresses: MJX
    # keeps numpy arrays in the tree's static data); the kept one is compared instead.
    key = hashlib.sha256(repr((environment_fingerprint(), self._fingerprint,
                               avals)).encode()).hexdigest()[:40]
    path = os.path.join(_directory, f"{self._name}-{key}.pkl")
    loaded = _load(path, in_tree)
    if loaded is None:
      try:
        loaded = self._export(leaves, in_tree)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("program cache: %s is not exportable (%s: %s); traced with "
                        "jax.jit", self._name, type(e).__name__, str(e).splitlines()[0])
        return _Entry(call=self._jit)
      _store(path, *loaded, in_tree)
    exported, out_tree = loaded
    donated = []
    for i, arg in enumerate(args):
      if i in self._donate_argnums:
        start = len(jax.tree.leaves((args[:i], {})))
        donated.extend(range(start, start + len(jax.tree.leaves(arg))))
    return _Entry(call=jax.jit(exported.call, donate_argnums=tuple(donated)),
                  out_tree=out_tree, out_avals=exported.out_avals)

  def _export(self, leaves: list, in_tree) -> tuple[Any, Any]:
    """(the ``jax.export.Exported`` of ``fn`` over flat leaves, its output tree)."""
    out_tree = []

    def flat_fn(*flat):
      args, kwargs = jax.tree.unflatten(in_tree, flat)
      out_leaves, tree = jax.tree.flatten(self._fn(*args, **kwargs))
      out_tree.append(tree)
      return tuple(out_leaves)

    exported = jax.export.export(jax.jit(flat_fn))(
        *[jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
          for a in map(jax.typeof, leaves)])
    return exported, out_tree[0]


def _load(path: str, in_tree):
  """(exported, out_tree) kept at ``path`` for arguments of ``in_tree``, or None (absent,
  kept for another tree, or unreadable: traced again)."""
  if not os.path.exists(path):
    return None
  try:
    with open(path, "rb") as f:
      kept = pickle.load(f)
    if kept["in_tree"] != in_tree:
      return None
    return jax.export.deserialize(kept["exported"]), kept["out_tree"]
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("program cache: unreadable %s (%s); tracing again", path, e)
    return None


def _store(path: str, exported, out_tree, in_tree) -> None:
  """Writes atomically (a killed process or a second writer never leaves half a file)."""
  try:
    blob = pickle.dumps({"exported": exported.serialize(), "in_tree": in_tree,
                         "out_tree": out_tree})
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("program cache: %s not kept (%s)", os.path.basename(path), e)
    return
  try:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      f.write(blob)
    os.replace(tmp, path)
  except OSError as e:
    logging.warning("program cache: %s not kept (%s)", os.path.basename(path), e)
