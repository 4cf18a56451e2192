"""The trainer as the EAR spec asks: one trace per shape, exact resume and extension,
``load_policy`` equal to the training-time policy, validated configs, the CLI.

Every test uses the same tiny HalfCheetah-Vel config, so the suite compiles the epoch,
the evaluation and the init once (and the persistent cache serves the CLI test).
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import checkpoint, load_policy
from earjax.config import default_config, validate
from earjax.networks import deterministic_action
from earjax.training import ConfigError, Trainer, train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"task_ids": (0, 3), "envs_per_task": 2, "env_steps_per_epoch": 5,
        "grad_steps_per_epoch": 3, "random_epochs": 1, "batch_size": 4,
        "replay_capacity": 40, "eval_every": 1, "eval_episodes": 1,
        "checkpoint_every": 1, "num_epochs": 2,
        "network.actor_hidden": (8,), "network.critic_hidden": (8,),
        "network.state_encoder_hidden": (8,), "network.task_encoder_hidden": (8,)}


def tiny_config(**changes):
  config = default_config()
  for key, value in {**TINY, **changes}.items():
    node = config
    *parents, leaf = key.split(".")
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  return config


def leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def restored_state(workdir, config):
  trainer = Trainer(config)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    abstract = checkpoint.abstract(jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
    return trainer, ckpt.restore(abstract)
  finally:
    ckpt.close()


def test_epoch_is_traced_once_and_counts_steps():
  trainer = Trainer(tiny_config())
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


def test_workdir_of_another_run_is_refused_and_left_alone(tmp_path):
  workdir = str(tmp_path / "run")
  train_and_evaluate(tiny_config(num_epochs=1), workdir)
  before = open(os.path.join(workdir, "config.json")).read()
  with pytest.raises(ConfigError, match="holds a run with env_name='halfcheetah_vel'"):
    train_and_evaluate(tiny_config(env_name="hopper_vel"), workdir)
  with pytest.raises(ConfigError, match=r"network.lte_dim=3, this config has 4"):
    train_and_evaluate(tiny_config(**{"network.lte_dim": 4}), workdir)
  assert open(os.path.join(workdir, "config.json")).read() == before


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": -1.0}, "learning_rate must be a positive number, got -1.0"),
    ({"gamma": 1.5}, "gamma must be in (0, 1], got 1.5"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"network.kind": "mlp"}, "network.kind must be one of ear, ohe, mhmt, got 'mlp'"),
    ({"env_name": "cheetah"}, "env_name must be one of halfcheetah_vel"),
    ({"network.lte_noise_std": -0.1}, "network.lte_noise_std must be a number >= 0"),
    ({"task_ids": (0, 0)}, "task_ids must not repeat a task"),
    ({"replay_capacity": 5}, "replay_capacity (5) must hold one epoch of transitions"),
])
def test_invalid_values_are_named(changes, message):
  problems = validate(tiny_config(**changes))
  assert len(problems) == 1 and problems[0].startswith(message), problems


def test_unknown_key_and_out_of_range_task_are_rejected(tmp_path):
  config = tiny_config()
  config.unlock()
  config.lerning_rate = 1e-3
  assert validate(config) == ["unknown config key 'lerning_rate'"]
  with pytest.raises(ConfigError, match="backend 'spring' is not offered for hopper_vel"):
    train_and_evaluate(tiny_config(env_name="hopper_vel", backend="spring"),
                       str(tmp_path / "x"))
  with pytest.raises(ConfigError, match=r"task_ids \[12\] out of range: halfcheetah_vel has"
                                        r" 10 training tasks"):
    train_and_evaluate(tiny_config(task_ids=(0, 12)), str(tmp_path / "x"))
  assert not os.path.exists(tmp_path / "x")


def cli(*args, config="experiments/configs/halfcheetah_vel.py:cpu"):
  return subprocess.run(
      [sys.executable, "-m", "experiments.train", f"--config={config}", *args],
      cwd=REPO, capture_output=True, text=True, timeout=600)


def tiny_flags():
  flags = []
  for key, value in TINY.items():
    value = ",".join(map(str, value)) if isinstance(value, tuple) else value
    flags.append(f"--config.{key}=({value},)" if isinstance(TINY[key], tuple)
                 else f"--config.{key}={value}")
  return flags + ["--config.learning_rate=0.0003"]


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


@pytest.mark.parametrize("args, config, message", [
    (["--config.learning_rate=-1"], None,
     "error: learning_rate must be a positive number, got -1.0"),
    (["--config.lerning_rate=1"], None,
     "error: unknown config key 'lerning_rate'; did you mean 'learning_rate'?"),
    (["--config.batch_size=abc"], None,
     "error: flag --config.batch_size=abc: invalid literal for int() with base 10: 'abc'"),
    ([], "experiments/configs/halfcheetah_vel.py:gpu",
     "error: flag --config=experiments/configs/halfcheetah_vel.py:gpu: Error whilst parsing "
     "config file: ValueError: unknown preset 'gpu'; valid presets: paper, cpu"),
    ([], "experiments/configs/nope.py", "error: cannot load the config file: [Errno 2] No "
     "such file or directory: 'experiments/configs/nope.py'"),
])
def test_cli_bad_input_gives_one_line_and_exit_2(tmp_path, args, config, message):
  kwargs = {"config": config} if config else {}
  result = cli(f"--workdir={tmp_path / 'bad'}", *args, **kwargs)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [message]
  assert not os.path.exists(tmp_path / "bad")
