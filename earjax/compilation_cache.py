"""JAX's persistent compilation cache, on by default for the CLI and the tests.

MJX step functions take 15-20 s to compile on a CPU; the cache makes every relaunch with
the same shapes skip that.  The cache lives outside the repository, in
``$EARJAX_CACHE_DIR`` (default ``~/.cache/earjax/jax``).
"""
import os

import jax

ENV_VAR = "EARJAX_CACHE_DIR"


def cache_dir() -> str:
  """The cache directory: ``$EARJAX_CACHE_DIR`` or ``~/.cache/earjax/jax``."""
  return os.environ.get(ENV_VAR) or os.path.join(
      os.path.expanduser("~"), ".cache", "earjax", "jax")


def enable_compilation_cache(path: str | None = None) -> str:
  """Turns on the persistent cache for every compile of this process; returns its path."""
  path = path or cache_dir()
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path
