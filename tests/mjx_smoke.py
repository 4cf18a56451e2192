"""One training smoke per MuJoCo family: two epochs of EAR-SAC on two of the family's
tasks through MJX, in the generic trainer.  Algorithm behaviour is tested on Point-Vel;
this checks that every family plugs into the same trainer.

What differs between families is the env (its observation, action and task parameter
sizes, its termination), and the env enters the trainer's ``init`` and ``epoch`` alone:
those two are compiled for every family.  The job around them (evaluation, metrics,
checkpoints) is family-generic but for Ant-Dir's headings; two families
(``halfcheetah_vel``, ``ant_dir``) run it end to end, the others skip its evaluation
program, a third MJX compile (~10 s each).  The substeps are a
rolled loop (``unroll_substeps=False``) to keep the compiles short.  Each family has a
test file of its own (``test_mjx_smoke_<family>.py``) so that the suite's two workers
share them.
"""
import json
import os

import jax
import numpy as np

from earjax.training import train_and_evaluate, trainer_for
from tiny import tiny_config


def smoke_config(name, **changes):
  return tiny_config(env_name=name, task_ids=(0, 1), envs_per_task=1,
                     env_steps_per_epoch=4, grad_steps_per_epoch=2, replay_capacity=8,
                     **{"env.unroll_substeps": False}, **changes)


def check_two_epochs_of_training(name):
  """The trainer's init and two epochs: counters, the replay filled by the family's
  envs, finite learner metrics."""
  trainer = trainer_for(smoke_config(name))
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  for _ in range(2):
    state, metrics = trainer.epoch(state)
  assert [int(state.epoch), int(state.grad_steps)] == [2, 2]
  assert int(state.replay.size) == 8
  train = {k: float(v) for k, v in jax.device_get(metrics).items() if k.startswith("train/")}
  assert "train/reward" in train and len(train) > 1 and np.isfinite(list(train.values())).all()


def check_the_job(name, workdir):
  """``train_and_evaluate``: two epochs, evaluated and checkpointed."""
  result = train_and_evaluate(smoke_config(name), str(workdir))
  assert result["epoch"] == 2 and result["grad_steps"] == 2
  returns = [v for k, v in result.items() if k.startswith("eval/return/")]
  assert len(returns) == 2 and np.isfinite(returns).all()
  assert all(1 <= v <= 200 for k, v in result.items() if k.startswith("eval/length/"))
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["epoch"] for r in rows] == [1, 2]
  assert sorted(os.listdir(workdir / "checkpoints" / "state")) == ["1", "2"]
  return result


def check_seed_batch(name):
  """Two seeds of the family batched: seed 1 of the batch is the run of seed 1 alone
  after two epochs (an MJX family, beside Point-Vel's tests/test_seeds.py)."""
  batched = smoke_config(name)
  batched.num_seeds = 2
  trainer = trainer_for(batched)
  batch = trainer.init(trainer.seed_keys(0), trainer.task_params)
  alone_trainer = trainer_for(smoke_config(name, seed=1))
  alone = alone_trainer.init(jax.random.PRNGKey(1), alone_trainer.task_params)
  for _ in range(2):
    batch, _ = trainer.epoch(batch)
    alone, _ = alone_trainer.epoch(alone)
  for x, y in zip(jax.tree.leaves(jax.tree.map(lambda a: a[1], batch.learner)),
                  jax.tree.leaves(alone.learner)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
