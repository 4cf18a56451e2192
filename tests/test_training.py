"""The trainer as the EAR spec asks: one trace per shape, exact resume and extension,
``load_policy`` equal to the training-time policy, the CLI.  (Bad input, preemption and
crashes: test_reliability.py.)

Every test uses the same tiny HalfCheetah-Vel config (tiny.py), so the suite traces and
compiles the epoch, the evaluation and the init once (the CLI child finds them in the
persistent cache).
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from earjax import load_policy
from earjax.networks import deterministic_action
from earjax.training import train_and_evaluate, trainer_for
from tiny import cli, leaves, restored_state, tiny_config, tiny_flags



def test_epoch_is_traced_once_and_counts_steps():
  trainer = trainer_for(tiny_config())
  state = trainer.init(jax.random.PRNGKey(0))
  for _ in range(3):
    state, metrics = trainer.epoch(state)
  assert trainer.epoch_traces == 1
  assert int(state.epoch) == 3
  assert int(state.env_steps) == 3 * 4 * 5          # epochs * envs * steps
  assert int(state.grad_steps) == 2 * 3             # the random epoch makes no update
  assert int(state.replay.size) == 3 * 2 * 5        # per task: epochs * envs * steps
  assert np.isfinite(float(metrics["train/critic_loss"]))


def test_extended_run_equals_a_straight_run_bitwise(tmp_path):
  extended, straight = str(tmp_path / "extended"), str(tmp_path / "straight")
  train_and_evaluate(tiny_config(num_epochs=2), extended)
  train_and_evaluate(tiny_config(num_epochs=4), extended)   # resumes at epoch 2
  train_and_evaluate(tiny_config(num_epochs=4), straight)
  _, a = restored_state(extended, tiny_config(num_epochs=4))
  _, b = restored_state(straight, tiny_config(num_epochs=4))
  assert int(a.epoch) == int(b.epoch) == 4
  for x, y in zip(leaves(a), leaves(b)):
    np.testing.assert_array_equal(x, y)
  rows = [[json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
          for d in (extended, straight)]
  assert [r["epoch"] for r in rows[0]] == [1, 2, 3, 4]
  for r, s in zip(*rows):
    r.pop("wall_time"), s.pop("wall_time")
    assert r == s
  # load_policy gives the training-time deterministic actions, for the latest and best.
  trainer, state = restored_state(straight, tiny_config(num_epochs=4))
  policy, ltes = load_policy(straight, which="latest")
  obs = jax.random.normal(jax.random.PRNGKey(1), (2, trainer.env.observation_size))
  onehot = jnp.eye(2)
  mean, _ = trainer.networks.actor_apply(state.learner.actor_params, obs, onehot)
  np.testing.assert_allclose(policy(obs, ltes), deterministic_action(mean), atol=1e-6)
  chex_norms = np.linalg.norm(np.asarray(ltes), axis=-1)
  np.testing.assert_allclose(chex_norms, 1.0, rtol=1e-5)
  best_policy, best_ltes = load_policy(straight)
  assert best_ltes.shape == (2, 3) and best_policy(obs, best_ltes).shape == (2, 6)


def test_cli_trains_and_writes_the_run(tmp_path):
  workdir = tmp_path / "cli"
  result = cli(f"--workdir={workdir}", *tiny_flags())
  assert result.returncode == 0, result.stderr[-2000:]
  assert "vel1" in result.stdout and "vel4" in result.stdout
  assert json.load(open(workdir / "config.json"))["env_name"] == "halfcheetah_vel"
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["epoch"] for r in rows] == [1, 2]
  for key in ("env_steps", "wall_time", "eval/return/vel1", "eval/velocity/vel4"):
    assert key in rows[-1]
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))
  assert os.listdir(workdir / "checkpoints" / "state") and os.listdir(
      workdir / "checkpoints" / "best")
