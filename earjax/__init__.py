"""earjax: emergent action representations (EAR) for multi-task RL on MuJoCo XLA."""
from earjax import xla_flags as _xla_flags

# First, before anything creates JAX's CPU backend: the deadlock workaround (xla_flags.py).
XLA_FLAGS_STATUS = _xla_flags.apply()

import contextlib as _contextlib  # noqa: E402
import io as _io  # noqa: E402

# mujoco.mjx prints "Failed to import warp" on import when the optional Warp backend is
# absent; earjax uses MJX's JAX implementation only, so that line is noise.
with _contextlib.redirect_stdout(_io.StringIO()):
  from mujoco import mjx as _mjx  # noqa: F401

from earjax import envs  # noqa: E402
from earjax.policy import load_policy  # noqa: E402

__all__ = ["envs", "load_policy"]
