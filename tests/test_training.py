"""The generic trainer as the spec asks: one trace per shape, the warm-up rules, every
registered agent through the same epoch and job, exact resume and extension,
``load_policy`` equal to the training-time policy, the CLI.  (Bad input, preemption,
crashes and stalls: test_reliability.py.)

Every test runs the tiny Point-Vel config (tiny.py): nothing of MJX compiles here.
"""
import ast
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import agents
from earjax import load_policy
from earjax.training import Trainer, train_and_evaluate, trainer_for
from tiny import REPO, cli, leaves, restored_state, tiny_config, tiny_flags


def test_epoch_is_traced_once_and_counts_steps(programs):
  del programs   # empty: this process traces the epoch (once), whatever ran before
  trainer = Trainer.from_config(tiny_config())
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  for _ in range(3):
    state, metrics = trainer.epoch(state)
  assert trainer.epoch_traces == 1
  assert int(state.epoch) == 3
  assert int(state.env_steps) == 3 * 4 * 5          # epochs * envs * steps
  assert int(state.grad_steps) == 2 * 3             # the random epoch makes no update
  assert int(state.replay.size) == 3 * 2 * 5        # per task: epochs * envs * steps
  assert np.isfinite(float(metrics["train/critic_loss"]))
  chex.assert_shape(state.env_state.obs, (4, 2))   # task-major: 2 tasks x 2 envs


def test_no_update_before_the_replay_holds_min_replay_size():
  # 20 transitions (2 tasks x 2 envs x 5 steps) enter per epoch: the release's rule
  # ``min_pool`` lets the first update happen once 50 are in, i.e. in epoch 3.
  trainer = trainer_for(tiny_config(random_epochs=0, min_replay_size=50))
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  grad_steps = []
  for _ in range(4):
    state, _ = trainer.epoch(state)
    grad_steps.append(int(state.grad_steps))
  assert grad_steps == [0, 0, 3, 6]


def test_overlapped_updates_sample_the_replay_of_before_the_collection(programs):
  """``overlap_collection``: epoch 1's updates find the replay empty (its transitions
  are not theirs to read), so they wait for epoch 2; the collection is the same."""
  del programs   # empty: the epochs are traced here
  counts, replays = {}, {}
  for overlap in (False, True):
    trainer = Trainer.from_config(tiny_config(random_epochs=0, min_replay_size=0,
                                              overlap_collection=overlap))
    state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
    counts[overlap] = []
    for epoch in range(2):
      state, _ = trainer.epoch(state)
      counts[overlap].append(int(state.grad_steps))
      if epoch == 0:
        replays[overlap] = jax.device_get(state.replay.data)
    assert trainer.epoch_traces == 1
  assert counts == {False: [3, 6], True: [0, 3]}
  chex.assert_trees_all_equal(replays[False], replays[True])


@pytest.mark.parametrize("agent", agents.names())
def test_every_agent_trains_through_the_generic_job(tmp_path, agent):
  result = train_and_evaluate(tiny_config(agent=agent), str(tmp_path))
  assert result["epoch"] == 2 and np.isfinite(result["eval/return_mean"])
  assert set(result) >= {"eval/velocity_error_mean", "eval/success_rate",
                         "eval/return/vel-1.5", "eval/length/vel1.5", "eval/success/vel1.5"}
  assert any(k.startswith("train/") and k != "train/reward" for k in result)


def test_generic_modules_name_no_method():
  """The trainer, its epochs, the job, the run, evaluation, acting, replay and checkpoints
  import no method package: a method is added by writing earjax/agents/<name>/ alone."""
  generic = ["earjax/acting.py", "earjax/replay.py", "earjax/checkpoint.py",
             "earjax/run.py", "earjax/evaluation.py", "earjax/training/trainer.py",
             "earjax/training/epochs.py", "earjax/training/job.py"]
  for path in generic:
    tree = ast.parse(open(os.path.join(REPO, path)).read())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names]
    assert not [m for m in imported if m and m.startswith("earjax.agents.")
                and m != "earjax.agents.base"], (path, imported)


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
  want = trainer.agent.act(state.learner.actor_params, obs, jnp.arange(2), None,
                           deterministic=True)
  np.testing.assert_allclose(policy(obs, ltes), want, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(ltes), axis=-1), 1.0, rtol=1e-5)
  best_policy, best_ltes = load_policy(straight)
  assert best_ltes.shape == (2, 3) and best_policy(obs, best_ltes).shape == (2, 1)


def test_cli_trains_and_writes_the_run(tmp_path):
  workdir = tmp_path / "cli"
  result = cli(f"--workdir={workdir}", *tiny_flags())
  assert result.returncode == 0, result.stderr[-2000:]
  assert "vel-1.5" in result.stdout and "vel1.5" in result.stdout
  assert json.load(open(workdir / "config.json"))["env_name"] == "point_vel"
  rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["epoch"] for r in rows] == [1, 2]
  for key in ("env_steps", "wall_time", "eval/return/vel-1.5", "eval/velocity/vel1.5"):
    assert key in rows[-1]
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))
  assert os.listdir(workdir / "checkpoints" / "state") and os.listdir(
      workdir / "checkpoints" / "best")
