"""Where an evaluation row goes: ``metrics.jsonl``, TensorBoard, Weights & Biases.

``config.logger`` names them (``config.LOGGERS``). ``metrics.jsonl`` is always written:
it is the run's record, which a resume reads back (``job._start``). TensorBoard and W&B
get every scalar of the row against ``env_steps`` (one seed's), a batched run's per-seed
values as ``<metric>/seed_<seed>``.

W&B (the ``wandb`` extra): one W&B run per earjax run. Its id is kept in the workdir
(``wandb_id``), so a resumed or extended run logs into the same W&B run
(``resume="allow"``); the run carries the whole config. ``wandb.mode=offline`` writes it
under ``<workdir>/wandb`` without a network (``wandb sync`` uploads it later). Rows a
resume recomputes (epochs after the last checkpoint, bitwise the same) come at steps W&B
has seen and are dropped by it; so are the rows of a rollback (``on_nonfinite``).
"""
from __future__ import annotations

import json
import os
import uuid
from typing import Any

import ml_collections

from earjax import config as config_lib
from earjax import files
from earjax.config import ConfigError

METRICS_FILE = "metrics.jsonl"
WANDB_ID_FILE = "wandb_id"
# Row keys that are not scalars of the run (the step, the per-seed table).
_NOT_SCALARS = ("epoch", "env_steps", "seeds")


def scalars(row: dict[str, Any], first_seed: int) -> dict[str, float]:
  """The row's scalars: its means, and each seed's value as ``<metric>/seed_<seed>``."""
  out = {k: v for k, v in row.items() if k not in _NOT_SCALARS}
  for k, values in row.get("seeds", {}).items():
    out.update({f"{k}/seed_{first_seed + i}": v for i, v in enumerate(values)})
  return out


class _TensorBoard:

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    self._writer = SummaryWriter(logdir=workdir)

  def write(self, values: dict[str, float], step: int) -> None:
    for k, v in values.items():
      self._writer.add_scalar(k, v, step)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class _WandB:

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    import wandb  # pylint: disable=import-outside-toplevel
    id_path = os.path.join(workdir, WANDB_ID_FILE)
    if os.path.exists(id_path):
      with open(id_path) as f:
        run_id = f.read().strip()
    else:
      run_id = uuid.uuid4().hex[:8]   # W&B ids: 8 lowercase letters or digits
      files.write_text(id_path, run_id + "\n")
    w = config.wandb
    try:
      self._run = wandb.init(
          project=w.project, entity=w.entity or None, group=w.group or None,
          name=w.name or os.path.basename(os.path.abspath(workdir)), id=run_id,
          resume="allow", dir=workdir, mode=w.mode, config=config.to_dict(),
          settings=wandb.Settings(console="off"))   # the progress bar stays the terminal's
    except wandb.errors.Error as e:
      first = (str(e).strip().splitlines() or [type(e).__name__])[0]
      raise ConfigError(f"W&B could not start the run's W&B run ({first}); "
                        f"--config.wandb.mode=offline logs without a network") from e

  def write(self, values: dict[str, float], step: int) -> None:
    self._run.log(values, step=step)

  def close(self) -> None:
    self._run.finish()


class Loggers:
  """The loggers ``config.logger`` names, for the process that writes the files."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    names = config_lib.logger_names(config.logger)
    self._metrics_path = os.path.join(workdir, METRICS_FILE)
    self._first_seed = config.seed
    self._others = ([_TensorBoard(workdir)] if "tensorboard" in names else []) + (
        [_WandB(config, workdir)] if "wandb" in names else [])

  def write(self, row: dict[str, Any]) -> None:
    """Appends ``row`` to metrics.jsonl and gives its scalars to the other loggers."""
    with open(self._metrics_path, "a") as f:
      f.write(json.dumps(row) + "\n")
    values = scalars(row, self._first_seed)
    for logger in self._others:
      logger.write(values, row["env_steps"])

  def close(self) -> None:
    for logger in self._others:
      logger.close()
