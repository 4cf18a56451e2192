"""Trains EAR-SAC (or a baseline) on one task family; resumes a workdir that has a run.

  python -m experiments.train --config=experiments/configs/halfcheetah_vel.py:cpu \
      --workdir=runs/hcv [--config.seed=1 --config.num_epochs=400 ...]

Exit codes: 0 done, or stopped by SIGTERM/SIGINT after a checkpoint (the same command
resumes); 1 training went non-finite (the message names the epoch, step and network);
2 bad flags, config, workdir or checkpoint (one line per problem, nothing touched).
"""
from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from earjax import checkpoint
from earjax import parallel
from earjax.training import ConfigError, NonFiniteError, train_and_evaluate
from experiments import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. experiments/configs/halfcheetah_vel.py:cpu.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created or resumed).")
flags.mark_flags_as_required(["config", "workdir"])


def print_table(result: dict) -> None:
  """The last evaluation, one row per task."""
  tasks = [k.split("/", 2)[2] for k in result if k.startswith("eval/return/")]
  print(f"\nepoch {result['epoch']}, {result['env_steps']} env steps, "
        f"{result['wall_time']:.0f} s")
  width = max([12] + [len(t) + 2 for t in tasks])
  planar = any(k.startswith("eval/heading/") for k in result)   # Ant-Dir
  cell = lambda key, size, digits: ("" if result.get(key) is None
                                    else f"{result[key]:.{digits}f}").rjust(size)
  print(f"{'task':<{width}}{'return':>10}{'length':>8}{'velocity':>10}{'|v - target|':>14}"
        + (f"{'heading':>9}{'|angle|':>9}" if planar else "") + f"{'success':>9}")
  for task in tasks:   # no velocity on Meta-World
    print(f"{task:<{width}}{result[f'eval/return/{task}']:>10.1f}"
          f"{result.get(f'eval/length/{task}', float('nan')):>8.0f}"
          + cell(f"eval/velocity/{task}", 10, 2) + cell(f"eval/velocity_error/{task}", 14, 2)
          + (cell(f"eval/heading/{task}", 9, 0) + cell(f"eval/direction_error/{task}", 9, 0)
             if planar else "")
          + f"{result.get(f'eval/success/{task}', float('nan')):>9.2f}")
  if "eval/velocity_error_mean" in result:
    print(f"mean |velocity - target|: {result['eval/velocity_error_mean']:.3f}")
  if "eval/direction_error_mean" in result:
    print(f"mean angle to the task's direction: {result['eval/direction_error_mean']:.1f} deg")
  if "eval/success_rate" in result:
    print(f"success rate: {result['eval/success_rate']:.2f}")


def main(argv):
  cli.start(argv)
  try:
    result = train_and_evaluate(cli.load_config(_CONFIG), _WORKDIR.value)
  except (ConfigError, checkpoint.CheckpointError, parallel.DistributedError) as e:
    cli.fail(str(e).splitlines())
  except NonFiniteError as e:
    cli.fail([str(e)], code=1)
  if result and jax.process_index() == 0:
    print_table(result)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
