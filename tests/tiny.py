"""The tiny Point-Vel run every algorithm test uses (one set of compiled shapes, compiled
in seconds), tiny networks for unit tests, and the CLI around them."""
import json
import os
import subprocess
import sys

import jax
import numpy as np

from compile_flags import production_xla_flags
from earjax import agents
from earjax import checkpoint
from earjax import envs
from earjax.config import default_config, flatten, set_key
from earjax.training import train_and_evaluate, trainer_for
from experiments.configs import point_vel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_PRESET = "experiments/configs/point_vel.py:cpu"
TINY_NETWORK = {"network.actor_hidden": (8,), "network.critic_hidden": (8,),
                "ear_sac.state_encoder_hidden": (8,), "ear_sac.task_encoder_hidden": (8,)}
TINY = {"env_name": "point_vel", "task_ids": (0, 3), "envs_per_task": 2,
        "env_steps_per_epoch": 5, "grad_steps_per_epoch": 3, "random_epochs": 1,
        "min_replay_size": 0, "batch_size_per_task": 4, "replay_capacity": 40,
        "eval_every": 1, "eval_episodes": 1, "checkpoint_every": 1, "num_epochs": 2,
        **TINY_NETWORK}


def tiny_config(**changes):
  """default_config() with TINY and ``changes`` ("ear_sac.lte_dim"-style keys); another
  family's ``env_name`` brings its ``env`` section."""
  name = changes.get("env_name", TINY["env_name"])
  config = default_config(name if name in envs.names() else TINY["env_name"])
  for key, value in {**TINY, **changes}.items():
    set_key(config, key, value)
  return config


def sampled_point_vel(agent: str, epochs: int):
  """Point-Vel's cpu preset on the references' task protocol: 16 training and 5 held-out
  targets drawn from U(0, 1.5) (``env.task_interval``, as oyster's HalfCheetah-Vel draws
  U(0, 3)), 2 envs per task."""
  config = point_vel.get_config("cpu")
  config.agent = agent
  config.env.task_interval = (0.0, 1.5)
  config.env.num_train_tasks = 16
  config.env.num_test_tasks = 5
  config.envs_per_task = 2
  config.num_epochs = config.random_epochs + epochs
  return config


def tiny_networks(agent="ear_sac", obs=5, act=2, tasks=3, **network):
  """An agent's networks at TINY widths for ``obs``/``act``/``tasks``; ``network``: keys
  of the ``network`` or the ``ear_sac`` section by name (``lte_dim=2``)."""
  config = default_config()
  for key, value in TINY_NETWORK.items():
    set_key(config, key, value)
  for key, value in network.items():
    config["network" if key in config.network else "ear_sac"][key] = value
  return agents.get(agent).make_networks(config, agents.AgentSpec(obs, act, tasks))


def tiny_flags(**changes) -> list[str]:
  """CLI flags that turn the Point-Vel cpu preset into ``tiny_config(**changes)``."""
  return preset_flags(tiny_config(**changes))


def preset_flags(config) -> list[str]:
  """CLI flags that turn the Point-Vel cpu preset into ``config``."""
  want, preset = flatten(config), flatten(point_vel.get_config("cpu"))
  flags = []
  for key, value in want.items():
    if preset[key] == value:
      continue
    if isinstance(value, tuple):
      value = "(" + ",".join(map(str, value)) + ",)"
    flags.append(f"--config.{key}={value}")
  return flags


def cli_command(*args, config=CPU_PRESET) -> list[str]:
  return [sys.executable, "-m", "experiments.train", f"--config={config}", *args]


def cli(*args, config=CPU_PRESET, env=None, timeout=600) -> subprocess.CompletedProcess:
  return subprocess.run(cli_command(*args, config=config), cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def train_with_production_compiler(config, workdir) -> None:
  """``config``'s job (a Point-Vel one) trained by ``experiments.train`` in a child
  process that compiles as the CLI does, without the suite's cheap settings
  (``compile_flags.py``): a test that trains for minutes runs its programs at full
  optimisation (the PEARL fixture: 149 s with the cheap settings beside the other worker)."""
  env = dict(os.environ, XLA_FLAGS=production_xla_flags(os.environ.get("XLA_FLAGS", "")))
  proc = cli(f"--workdir={workdir}", *preset_flags(config), env=env, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]


def leaves(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def restored_state(workdir, config, epoch=None):
  """(trainer, TrainingState) of ``workdir``'s checkpoint at ``epoch`` (default latest)."""
  trainer = trainer_for(config)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    return trainer, ckpt.restore(trainer.abstract_state(trainer.seed_keys(0)), epoch)
  finally:
    ckpt.close()


def assert_resumed_run_equals_straight_one(tmp_path, **changes) -> None:
  """A tiny run (``changes``) of 2 epochs extended to 4 equals a straight 4-epoch run,
  leaf by leaf, bitwise (CPU)."""
  extended, straight = str(tmp_path / "extended"), str(tmp_path / "straight")
  train_and_evaluate(tiny_config(**changes, num_epochs=2), extended)
  train_and_evaluate(tiny_config(**changes, num_epochs=4), extended)
  train_and_evaluate(tiny_config(**changes, num_epochs=4), straight)
  _, a = restored_state(extended, tiny_config(**changes, num_epochs=4))
  _, b = restored_state(straight, tiny_config(**changes, num_epochs=4))
  assert int(np.ravel(a.epoch)[0]) == int(np.ravel(b.epoch)[0]) == 4
  for x, y in zip(leaves(a), leaves(b)):
    np.testing.assert_array_equal(x, y)


def metrics_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for row in rows:
    row.pop("wall_time")
  return rows


def state_epochs(workdir):
  root = os.path.join(workdir, "checkpoints", "state")
  return sorted(int(n) for n in os.listdir(root) if n.isdigit()) if os.path.isdir(root) else []
