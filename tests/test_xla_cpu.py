"""The CPU build of JAX that earjax pins computes right and does not hang.

- jax-ml/jax#39103: jaxlib 0.10.2 miscompiles a vmapped mat-vec reduction on CPU once the
  batch passes 32,768 rows (the last row's sum of squares comes out 1,065,369,600
  instead of 2^30 = 1,073,741,824; eager is right).  earjax is made of vmapped mat-vecs
  and reductions, so the pinned version must get it right.
- The deadlock of XLA's CPU runtime at large env batches (earjax/xla_flags.py): the
  workaround is in effect in every process that imports earjax, and the reproducer
  finishes in a subprocess with it and hangs without it.
"""
import os
import subprocess
import sys

import jax

import earjax
from compile_flags import production_xla_flags
from earjax import xla_flags


MATVEC_CHECK = """
import jax, jax.numpy as jnp, numpy as np
rows = 32_769
x = np.zeros((rows, 3), np.float32)
x[:, 0] = np.arange(rows)        # row i: (i, 0, 0), so the sum of squares is i^2
f = jax.jit(lambda x: jax.vmap(lambda r: jnp.sum((jnp.eye(3) @ r) ** 2))(x))
got = np.asarray(f(jnp.asarray(x)))
print(repr(float(got[-1])), float(np.max(np.abs(got / np.maximum(np.arange(rows) ** 2, 1) - 1)[1:])))
"""


def production_child(*args, timeout):
  """A Python child with the CLI's XLA flags (the suite's cheap compile settings taken
  out: these tests are about the production compiler)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=production_xla_flags(os.environ["XLA_FLAGS"]))
  return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                        timeout=timeout, env=env)


def test_vmapped_matvec_reduction_is_right_past_32768_rows():
  result = production_child("-c", "import earjax\n" + MATVEC_CHECK, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  last, worst_relative_error = map(float, result.stdout.split())
  assert last == 2.0**30, f"jax {jax.__version__}: last row {last:.0f}, want 2^30"
  assert worst_relative_error <= 1e-6


def test_deadlock_workaround_is_in_effect():
  assert earjax.XLA_FLAGS_STATUS in ("applied", "user")
  assert xla_flags.CPU_SCHEDULER_FLAG in os.environ["XLA_FLAGS"]


def test_deadlock_reproducer_finishes_with_the_workaround():
  """The smallest known reproducer of the CPU runtime's deadlock (tests/
  xla_cpu_deadlock.py, pure JAX) runs in a child with this process's XLA_FLAGS, which
  ``import earjax`` extended (less the suite's cheap compile settings): it must finish.
  Without the workaround it never returns (the child is killed at the timeout and the
  test fails)."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xla_cpu_deadlock.py")
  result = production_child(script, timeout=60)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "ok: ran in" in result.stdout
