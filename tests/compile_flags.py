"""XLA's cheap compile settings, for the test suite only.

Compiling is most of the suite's CPU time (an MJX epoch is ~20 s of XLA on this box, and
the suite compiles ~160 programs).  LLVM at -O0 without its expensive passes, and XLA's
older loop emitters for fusions instead of the fusion emitters, about halve it (the
suite on this box, cold caches: 998 s before, 509 s after;
benchmarks/results/test_suite_time.json) and leave the semantics alone: no fast math,
the same HLO ops; the programs only run slower, which tests of a few steps do not
notice.  ``conftest.py`` adds them to ``XLA_FLAGS`` before JAX
starts, so every test and every child process a test starts compiles with them;
``production_xla_flags`` takes them out again for the tests that are about the
production compiler itself (``test_xla_cpu.py``).  The CLI, the benchmarks and
``make run`` never see them.
"""
CHEAP_COMPILE = ("--xla_backend_optimization_level=0",
                 "--xla_llvm_disable_expensive_passes=true",
                 "--xla_cpu_use_fusion_emitters=false")


def with_cheap_compile(flags: str) -> str:
  """``flags`` (an ``XLA_FLAGS`` value) with the cheap settings added."""
  return " ".join(flags.split() + [f for f in CHEAP_COMPILE if f not in flags.split()])


def production_xla_flags(flags: str) -> str:
  """``flags`` without the cheap settings."""
  return " ".join(f for f in flags.split() if f not in CHEAP_COMPILE)
