"""Seeds as a batch axis: env-steps/s summed over the seeds of one vmapped epoch.

  python -m benchmarks.seeds_throughput --out=benchmarks/results/seeds_cpu.json

For each setting (``--settings``: ``brax_matched``, HalfCheetah-Vel's ``cpu`` preset) and
seed count N (``--seeds``, default 1, 2, 4, 8): ``train_throughput.measure`` of the
setting with ``num_seeds`` N (compile, a warm-up, the median of ``--repeats`` epochs);
env-steps/s counts every seed's steps, so the cost of a seed is N / (that rate) against
the one-seed run's 1 / rate.  Random epochs and the replay minimum are 0: the timed
epochs train.
"""
from absl import app
from absl import flags

from benchmarks import common
from benchmarks import settings as settings_lib
from benchmarks import train_throughput

SETTINGS = {"brax_matched": settings_lib.brax_matched,
            "cpu": lambda: settings_lib.preset("cpu")}
_SETTINGS = flags.DEFINE_list("settings", list(SETTINGS), "Settings to time.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "2", "4", "8"], "Seed counts.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed epochs per point (median).")
_OUT = flags.DEFINE_string("out", None, "JSON records file.")


def main(argv):
  del argv
  records = []
  for name in _SETTINGS.value:
    for n in map(int, _SEEDS.value):
      config = SETTINGS[name]()
      config.num_seeds = n
      found = train_throughput.measure(f"{name}/seeds_{n}", config, _REPEATS.value)
      common.print_table(found)
      records += found
      common.write(records, _OUT.value)   # after every point: a stopped run keeps them


if __name__ == "__main__":
  app.run(main)
