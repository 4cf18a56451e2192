"""One fresh process up to its first training epoch, timed part by part (a child of
``compile_time``).

  python -m benchmarks.first_epoch --setting=brax_matched

Prints one JSON line: seconds of the imports, the jitted init (env reset, parameters),
the epoch's compile (``lower(...).compile()``, or its load from the persistent cache in
``$EARJAX_CACHE_DIR``), the first epoch's run, the total from the first line of this
module, persistent-cache hits and peak memory.
"""
import time

_START = time.perf_counter()

import json  # noqa: E402  (the imports are timed)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import jax  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks import settings as settings_lib  # noqa: E402
from earjax.compilation_cache import enable_compilation_cache  # noqa: E402
from earjax.training import Trainer  # noqa: E402

SETTINGS = {"brax_matched": settings_lib.brax_matched, "tiny": settings_lib.tiny,
            "paper": lambda: settings_lib.preset("paper"),
            "cpu": lambda: settings_lib.preset("cpu")}

_SETTING = flags.DEFINE_enum("setting", "brax_matched", list(SETTINGS),
                             "Training configuration.")


def main(argv):
  del argv
  imports_s = time.perf_counter() - _START
  enable_compilation_cache()
  config = SETTINGS[_SETTING.value]()
  trainer = Trainer.from_config(config)
  state, init_s, _ = common.timed_first_call(
      lambda: trainer.init(jax.random.PRNGKey(0), trainer.task_params))
  _, compile_s, _ = common.timed_first_call(lambda: trainer.epoch.compile(state))
  _, run_s, _ = common.timed_first_call(lambda: trainer.epoch(state)[1])
  print(json.dumps({"imports_s": imports_s, "init_s": init_s, "epoch_compile_s": compile_s,
                    "first_epoch_run_s": run_s,
                    "to_first_epoch_s": time.perf_counter() - _START,
                    "cache_hits": common.cache_hits(), "peak_rss_mb": common.peak_rss_mb()}))


if __name__ == "__main__":
  app.run(main)
