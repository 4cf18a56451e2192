"""Where an evaluation row goes: ``metrics.jsonl``, TensorBoard, Weights & Biases.

``config.logger`` names them (``config.LOGGERS``). ``metrics.jsonl`` is always written:
it is the run's record, which a resume reads back (``job._start``); a failure to write it
stops the job. TensorBoard and W&B get every scalar of the row against ``env_steps`` (one
seed's), a batched run's per-seed values as ``<metric>/seed_<seed>``; if one of them
fails, it is dropped with one warning and training goes on.

W&B (the ``wandb`` extra): one W&B run per earjax run. Its id is kept in the workdir
(``wandb_id``), so a resumed or extended run logs into the same W&B run
(``resume="allow"``); the run carries the whole config. Rows are logged with
``env_steps`` as their x-axis (``define_metric``), not as W&B's step, so nothing is
dropped: the rows a resume recomputes (the epochs after the last checkpoint) and a
rollback's or a ``resume_epoch`` rewind's rows appear again at their env steps, beside
the ones logged before (``metrics.jsonl`` keeps only the latest). The ``wandb`` section's
empty settings leave W&B's own (``WANDB_MODE``, ``WANDB_PROJECT``, ...) in force.
``mode=offline`` writes under ``<workdir>/wandb`` (or ``WANDB_DIR``) without a network;
``wandb sync <that dir>/offline-run-*`` uploads it. A copied workdir keeps the id and
logs into the original's W&B run; a new id in the copy's ``wandb_id`` file gives it a
W&B run of its own.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any
import uuid

import ml_collections

from earjax import config as config_lib
from earjax import files
from earjax.config import ConfigError

METRICS_FILE = "metrics.jsonl"
WANDB_ID_FILE = "wandb_id"
WANDB_PROJECT = "earjax"   # the project when neither the config nor WANDB_PROJECT names one
# Row keys that are not scalars of the run (the step, the per-seed table).
_NOT_SCALARS = ("epoch", "env_steps", "seeds")


def scalars(row: dict[str, Any], first_seed: int) -> dict[str, float]:
  """The row's scalars: its means, and each seed's value as ``<metric>/seed_<seed>``."""
  out = {k: v for k, v in row.items() if k not in _NOT_SCALARS}
  for k, values in row.get("seeds", {}).items():
    out.update({f"{k}/seed_{first_seed + i}": v for i, v in enumerate(values)})
  return out


def read_rows(workdir: str) -> list[dict[str, Any]]:
  """``workdir``'s metrics rows, in order; a torn last line (a run killed mid-write) is
  skipped.  ValueError (one line) where there is no file or no row yet."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    raise ValueError(f"{workdir!r} holds no {METRICS_FILE}")
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  if not rows:
    raise ValueError(f"{workdir!r} has no evaluation yet ({METRICS_FILE} is empty)")
  return rows


def seed_values(row: dict[str, Any], metric: str) -> list[float]:
  """Every seed's ``metric`` in one metrics row (one value for a single-seed run)."""
  values = row["seeds"].get(metric) if "seeds" in row else (
      [row[metric]] if metric in row else None)
  if values is None:
    raise ValueError(f"no {metric!r} in the run's rows")
  return [float(v) for v in values]


class _TensorBoard:
  name = "TensorBoard"

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    self._writer = SummaryWriter(logdir=workdir)

  def write(self, values: dict[str, float], env_steps: int) -> None:
    for k, v in values.items():
      self._writer.add_scalar(k, v, env_steps)
    self._writer.flush()

  def close(self, failed: bool, preempted: bool) -> None:
    del failed, preempted
    self._writer.close()


class _WandB:
  name = "W&B"

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    import wandb  # pylint: disable=import-outside-toplevel
    id_path = os.path.join(workdir, WANDB_ID_FILE)
    if os.path.exists(id_path):
      with open(id_path) as f:
        run_id = f.read().strip()
    else:
      run_id = uuid.uuid4().hex[:8]   # W&B ids: 8 lowercase letters or digits
      files.write_text(id_path, run_id + "\n")
    w, env = config.wandb, os.environ
    try:
      self._run = wandb.init(
          project=w.project or env.get("WANDB_PROJECT") or WANDB_PROJECT,
          entity=w.entity or None, group=w.group or None, mode=w.mode or None,
          name=w.name or env.get("WANDB_NAME") or os.path.basename(os.path.abspath(workdir)),
          id=run_id, resume="allow", dir=env.get("WANDB_DIR") or workdir,
          config=config.to_dict(),
          settings=wandb.Settings(console="off"))   # the progress bar stays the terminal's
    except wandb.errors.Error as e:
      first = (str(e).strip().splitlines() or [type(e).__name__])[0]
      raise ConfigError(f"W&B could not start the run's W&B run ({first}); "
                        f"--config.wandb.mode=offline logs without a network") from e
    self._run.define_metric("env_steps")
    self._run.define_metric("*", step_metric="env_steps")

  def write(self, values: dict[str, float], env_steps: int) -> None:
    self._run.log({**values, "env_steps": env_steps})

  def close(self, failed: bool, preempted: bool) -> None:
    if preempted:
      self._run.mark_preempting()
    self._run.finish(exit_code=1 if failed else 0)


class Loggers:
  """The loggers ``config.logger`` names, for the process that writes the files."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    names = config_lib.logger_names(config.logger)
    self._metrics_path = os.path.join(workdir, METRICS_FILE)
    self._first_seed = config.seed
    self._others = []
    try:
      if "tensorboard" in names:
        self._others.append(_TensorBoard(workdir))
      if "wandb" in names:
        self._others.append(_WandB(config, workdir))
    except BaseException:
      self.close(failed=True)
      raise

  def write(self, row: dict[str, Any]) -> None:
    """Appends ``row`` to metrics.jsonl and gives its scalars to the other loggers; one
    that fails is dropped with a warning."""
    with open(self._metrics_path, "a") as f:
      f.write(json.dumps(row) + "\n")
    values = scalars(row, self._first_seed)
    for logger in list(self._others):
      try:
        logger.write(values, row["env_steps"])
      except Exception as e:  # pylint: disable=broad-except
        self._others.remove(logger)
        print(f"warning: {logger.name} failed ({type(e).__name__}: {e}); it is off for "
              f"the rest of this launch, metrics.jsonl goes on", file=sys.stderr)

  def close(self, failed: bool = False, preempted: bool = False) -> None:
    """Closes every logger, each on its own (one failing does not skip the others)."""
    for logger in self._others:
      try:
        logger.close(failed, preempted)
      except Exception as e:  # pylint: disable=broad-except
        print(f"warning: closing {logger.name} failed ({type(e).__name__}: {e})",
              file=sys.stderr)
    self._others = []
