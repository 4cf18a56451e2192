"""earjax: emergent action representations (EAR) for multi-task RL on MuJoCo XLA."""
from earjax import xla_flags as _xla_flags

# First, before anything creates JAX's CPU backend: the deadlock workaround (xla_flags.py).
XLA_FLAGS_STATUS = _xla_flags.apply()

from earjax import envs  # noqa: E402
from earjax.policy import load_policy  # noqa: E402

__all__ = ["envs", "load_policy"]
