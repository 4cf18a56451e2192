"""Test-suite set-up: CPU only, XLA's cheap compile settings (``compile_flags.py``), the
persistent compilation and program caches (outside the repo); the slowest files first
(``file_seconds.py``); the ``programs`` fixture."""
import os

import pytest

from compile_flags import with_cheap_compile
import file_seconds

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = with_cheap_compile(os.environ.get("XLA_FLAGS", ""))

from earjax import program_cache  # noqa: E402
from earjax.compilation_cache import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


def pytest_collection_modifyitems(items):
  """Longest file first (setup.cfg turns off xdist's reorder by test count): the queue
  of files is in this order (xdist hands a worker the next file when few of its tests
  are pending), so the files left for the end are short and the two workers finish
  close together.  The sort is stable and the same on every worker."""
  seconds = file_seconds.load()
  items.sort(key=lambda item: -seconds.get(item.path.name, 0.0))


@pytest.fixture
def programs(tmp_path):
  """A fresh, empty program cache for one test (its functions are traced, whatever the
  suite's cache holds); the suite's is put back after."""
  before = program_cache.directory()
  path = program_cache.enable(str(tmp_path / "programs"))
  yield path
  if before is None:
    program_cache.disable()
  else:
    program_cache.enable(before)


@pytest.fixture(scope="session")
def tiny_ear_run(tmp_path_factory):
  """A finished tiny EAR-SAC run on Point-Vel (``tiny.tiny_config()``), trained once per
  test worker for the tests that only read one (adaptation tools, refusals)."""
  from earjax.training import train_and_evaluate   # pylint: disable=import-outside-toplevel
  from tiny import tiny_config                      # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path_factory.mktemp("tiny_ear_run"))
  train_and_evaluate(tiny_config(), workdir)
  return workdir
