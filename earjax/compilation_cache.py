"""JAX's persistent compilation cache and earjax's program cache, on by default for the
CLI and the tests.

MJX step functions take 15-20 s to compile on a CPU; the compilation cache makes every
relaunch with the same shapes skip that, and the program cache (``earjax.program_cache``,
in its ``programs/`` subdirectory) the Python tracing before it.  Both live outside the
repository, in ``$EARJAX_CACHE_DIR`` (default ``~/.cache/earjax/jax``), and so do the
kernels NVIDIA Warp compiles for ``impl=warp`` (``warp/``, unless ``WARP_CACHE_PATH``
names another place): one directory holds every compiled artefact of earjax.
"""
import os

import jax

from earjax import program_cache

ENV_VAR = "EARJAX_CACHE_DIR"


def cache_dir() -> str:
  """The cache directory: ``$EARJAX_CACHE_DIR`` or ``~/.cache/earjax/jax``."""
  return os.environ.get(ENV_VAR) or os.path.join(
      os.path.expanduser("~"), ".cache", "earjax", "jax")


def enable_compilation_cache(path: str | None = None) -> str:
  """Turns on both caches for every compile of this process; returns the path."""
  path = path or cache_dir()
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  program_cache.enable(os.path.join(path, "programs"))
  os.environ.setdefault("WARP_CACHE_PATH", os.path.join(path, "warp"))
  return path
