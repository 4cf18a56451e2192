"""earjax: emergent action representations (EAR) for multi-task RL on MuJoCo XLA."""
import contextlib as _contextlib
import io as _io

# mujoco.mjx prints "Failed to import warp" on import when the optional Warp backend is
# absent; earjax uses MJX's JAX implementation only, so that line is noise.
with _contextlib.redirect_stdout(_io.StringIO()):
  from mujoco import mjx as _mjx  # noqa: F401

from earjax import envs  # noqa: E402
from earjax.policy import load_policy  # noqa: E402

__all__ = ["envs", "load_policy"]
