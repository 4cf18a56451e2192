"""Trains EAR-SAC (or a baseline) on one task family; resumes a workdir that has a run.

  python -m experiments.train --config=experiments/configs/halfcheetah_vel.py:cpu \
      --workdir=runs/hcv [--config.seed=1 --config.num_epochs=400 ...]

Exit codes: 0 done, or stopped by SIGTERM/SIGINT after a checkpoint (the same command
resumes); 1 training went non-finite (the message names the epoch, step and network);
2 bad flags, config, workdir or checkpoint, or the workdir in use by another job (one
line per problem, nothing touched); 3 the watchdog ended a stuck epoch; 4 a process of a
multi-host job was lost (one line: which, the epoch reached, the last intact checkpoint;
relaunch every process to resume).
"""
import sys

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from earjax import checkpoint
from earjax import evaluation
from earjax import parallel
from earjax.config import validate
from earjax.training import ConfigError, NonFiniteError, supervisor, train_and_evaluate
from experiments import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. experiments/configs/halfcheetah_vel.py:cpu.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created or resumed).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.start(argv)
  config = cli.load_config(_CONFIG)
  if config.get("num_processes", 1) > 1 and not supervisor.supervised():
    # A multi-host process: its job runs in a child this process watches, so that a
    # lost peer ends it with one line (earjax.training.supervisor).
    problems = validate(config)
    if problems:
      cli.fail(problems)
    sys.exit(supervisor.run("experiments.train", sys.argv[1:], config.process_id,
                            config.peer_timeout_s, _WORKDIR.value))
  try:
    result = train_and_evaluate(config, _WORKDIR.value)
  except (ConfigError, checkpoint.CheckpointError, parallel.DistributedError) as e:
    cli.fail(str(e).splitlines())
  except NonFiniteError as e:
    cli.fail([str(e)], code=1)
  if result and jax.process_index() == 0:
    print(evaluation.table(result))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
