"""``config.logger``: metrics.jsonl always, TensorBoard and Weights & Biases beside it.
W&B is tested offline (no network): its run carries the config and every metric, and a
resumed run logs into the same W&B run."""
import glob
import json
import os
import struct

import pytest
from wandb.proto import wandb_internal_pb2

from earjax.config import validate
from earjax.training import loggers
from earjax.training import train_and_evaluate
from tiny import tiny_config


def wandb_records(path: str) -> list:
  """The records of an offline W&B run file (``run-<id>.wandb``): W&B's LevelDB-style
  log, a 7-byte header (":W&B", magic, version), then 32 KiB blocks of chunks, each a
  7-byte header (CRC-32, length, kind: 1 whole, 2 first, 3 middle, 4 last)."""
  with open(path, "rb") as f:
    data = f.read()
  assert data[:4] == b":W&B"
  block, pos, pending, records = 32768, 7, b"", []
  while pos + 7 <= len(data):
    if block - pos % block < 7:   # a block's tail too short for a header is padding
      pos += block - pos % block
      continue
    length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
    pending += data[pos + 7:pos + 7 + length]
    pos += 7 + length
    if kind in (1, 4):
      record = wandb_internal_pb2.Record()
      record.ParseFromString(pending)
      records.append(record)
      pending = b""
  return records


def wandb_run(path: str) -> dict:
  """(run id, config keys, history rows) of an offline W&B run file."""
  out = {"id": None, "config": {}, "history": []}
  for record in wandb_records(path):
    kind = record.WhichOneof("record_type")
    if kind == "run":
      out["id"] = record.run.run_id
      out["config"].update({i.key: json.loads(i.value_json) for i in record.run.config.update})
    elif kind == "config":
      out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
    elif kind == "history":
      out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in record.history.item})
  return out


def test_scalars_are_the_means_and_one_tag_per_seed():
  row = {"epoch": 3, "env_steps": 30, "wall_time": 1.5, "eval/return_mean": -2.0,
         "seeds": {"eval/return_mean": [-1.0, -3.0]}}
  assert loggers.scalars(row, first_seed=7) == {
      "wall_time": 1.5, "eval/return_mean": -2.0, "eval/return_mean/seed_7": -1.0,
      "eval/return_mean/seed_8": -3.0}


@pytest.mark.parametrize("value, line", [
    ("tensorboard", "logger must include jsonl (metrics.jsonl is what a resume reads "
                    "back), got 'tensorboard'"),
    ("jsonl,mlflow", "logger names mlflow: known loggers are jsonl, tensorboard, wandb")])
def test_bad_loggers_are_refused_in_one_line(value, line):
  assert validate(tiny_config(logger=value)) == [line]


def test_a_failing_logger_is_dropped_and_metrics_jsonl_goes_on(tmp_path, capsys):
  class Broken:
    name = "Broken"

    def write(self, values, env_steps):
      raise OSError("disk full")

  out = loggers.Loggers(tiny_config(logger="jsonl"), str(tmp_path))
  out._others.append(Broken())  # pylint: disable=protected-access
  for epoch in (1, 2):
    out.write({"epoch": epoch, "env_steps": 10 * epoch, "eval/return_mean": 0.0})
  with open(tmp_path / loggers.METRICS_FILE) as f:
    assert [json.loads(line)["epoch"] for line in f] == [1, 2]
  assert capsys.readouterr().err.count("warning: Broken failed (OSError: disk full)") == 1


def test_wandb_offline_carries_config_and_metrics_and_a_resume_joins_the_same_run(
    tmp_path, monkeypatch):
  """Offline through W&B's own WANDB_MODE (the config's empty mode leaves it in force)."""
  monkeypatch.setenv("WANDB_MODE", "offline")
  workdir = str(tmp_path / "run")
  changes = {"logger": "jsonl,wandb"}
  train_and_evaluate(tiny_config(**changes, num_epochs=1), workdir)
  train_and_evaluate(tiny_config(**changes, num_epochs=2), workdir)   # resumed, extended
  with open(os.path.join(workdir, loggers.WANDB_ID_FILE)) as f:
    run_id = f.read().strip()
  paths = sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*", "run-*.wandb")))
  runs = [wandb_run(p) for p in paths]
  assert len(runs) == 2 and [r["id"] for r in runs] == [run_id, run_id]
  with open(os.path.join(workdir, loggers.METRICS_FILE)) as f:
    rows = [json.loads(line) for line in f]
  for run, row in zip(runs, rows):   # launch k logged epoch k, every scalar of its row
    assert run["config"]["agent"] == "ear_sac" and run["config"]["num_epochs"] == row["epoch"]
    logged = {k: v for h in run["history"] for k, v in h.items()}
    assert logged["env_steps"] == row["env_steps"]
    assert logged["eval/return_mean"] == pytest.approx(row["eval/return_mean"])
    assert set(loggers.scalars(row, 0)) <= set(logged)
  assert not glob.glob(os.path.join(workdir, "events.out.tfevents.*"))   # not asked for
