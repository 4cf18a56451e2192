"""One end-to-end training smoke per MuJoCo family: the job (``train_and_evaluate``)
trains two epochs of EAR-SAC on two of the family's tasks through MJX, evaluates and
checkpoints.  Algorithm behaviour is tested on Point-Vel; this checks that every family
plugs into the same trainer.  The substeps are a rolled loop (``unroll_substeps=False``)
to keep the three MJX compiles of each family (init, epoch, evaluation) short.  The
families have a test file each (``test_mjx_smoke_<family>.py``) so that the suite's two
workers share them.
"""
import json
import os

import numpy as np

from earjax.training import train_and_evaluate
from tiny import tiny_config


def check_two_epochs_of_training(name, workdir):
  config = tiny_config(env_name=name, task_ids=(0, 1), envs_per_task=1,
                       env_steps_per_epoch=4, grad_steps_per_epoch=2, replay_capacity=8,
                       unroll_substeps=False)
  result = train_and_evaluate(config, str(workdir))
  assert result["epoch"] == 2 and result["grad_steps"] == 2
  returns = [v for k, v in result.items() if k.startswith("eval/return/")]
  assert len(returns) == 2 and np.isfinite(returns).all()
  assert all(1 <= v <= 200 for k, v in result.items() if k.startswith("eval/length/"))
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["epoch"] for r in rows] == [1, 2]
  assert sorted(os.listdir(workdir / "checkpoints" / "state")) == ["1", "2"]
