"""Test-suite set-up: the persistent compilation cache (outside the repo), CPU only."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from earjax.compilation_cache import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
