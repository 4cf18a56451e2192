"""XLA flags earjax sets before JAX creates its CPU backend (imported first by ``earjax``).

The CPU runtime of jaxlib 0.10.x deadlocks on large env batches: a jitted scan of MJX
steps compiles and then never returns (every XLA worker thread asleep on a futex, CPU at
0 %), e.g. ``ant_dir`` at 256 envs or ``halfcheetah_vel`` at 1024.  Turning off XLA's
concurrency-optimized scheduler for CPU programs removes it (measurements and the
reproducer: WORKSPACE.md, "Large batches on the CPU runtime").  ``apply`` appends
``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS``:

- never overriding the user: a ``XLA_FLAGS`` that already names the flag is left as is;
- only where it can still act: if JAX's backends already exist (a user's script created
  them before importing earjax), nothing is changed and one warning line says so;
- the flag is an option of XLA's CPU compiler only; GPU and TPU programs do not read it.
"""
from __future__ import annotations

import os
import sys
import warnings

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
WORKAROUND = f"{CPU_SCHEDULER_FLAG}=false"


def _backends_exist() -> bool:
  if "jax" not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()


def apply() -> str:
  """Adds the workaround to ``XLA_FLAGS``; returns what happened: ``"applied"``,
  ``"user"`` (the user's own setting of the flag is kept) or ``"too_late"``."""
  current = os.environ.get("XLA_FLAGS", "")
  if CPU_SCHEDULER_FLAG in current:
    return "user"
  if _backends_exist():
    warnings.warn(
        f"earjax: JAX's backends were created before earjax was imported, so XLA_FLAGS "
        f"cannot take {WORKAROUND} (it prevents a deadlock of XLA's CPU runtime at large "
        f"env batches); import earjax first or set it in XLA_FLAGS yourself", stacklevel=3)
    return "too_late"
  os.environ["XLA_FLAGS"] = f"{current} {WORKAROUND}".strip()
  return "applied"
