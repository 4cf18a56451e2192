"""The tiny HalfCheetah-Vel run every trainer test uses (one set of compiled shapes), and
the CLI around it."""
import os
import subprocess
import sys

import jax
import numpy as np

from earjax import checkpoint
from earjax.config import default_config
from earjax.training import trainer_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_PRESET = "experiments/configs/halfcheetah_vel.py:cpu"
TINY = {"task_ids": (0, 3), "envs_per_task": 2, "env_steps_per_epoch": 5,
        "grad_steps_per_epoch": 3, "random_epochs": 1, "batch_size": 4,
        "replay_capacity": 40, "eval_every": 1, "eval_episodes": 1,
        "checkpoint_every": 1, "num_epochs": 2,
        "network.actor_hidden": (8,), "network.critic_hidden": (8,),
        "network.state_encoder_hidden": (8,), "network.task_encoder_hidden": (8,)}


def tiny_config(**changes):
  """default_config() with TINY and ``changes`` ("network.kind"-style keys)."""
  config = default_config()
  for key, value in {**TINY, **changes}.items():
    node = config
    *parents, leaf = key.split(".")
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  return config


def tiny_flags(**changes) -> list[str]:
  """CLI flags giving the cpu preset TINY's values (and the default learning rate)."""
  flags = []
  for key, value in {**TINY, "learning_rate": 3e-4, **changes}.items():
    if isinstance(value, tuple):
      value = "(" + ",".join(map(str, value)) + ",)"
    flags.append(f"--config.{key}={value}")
  return flags


def cli_command(*args, config=CPU_PRESET) -> list[str]:
  return [sys.executable, "-m", "experiments.train", f"--config={config}", *args]


def cli(*args, config=CPU_PRESET) -> subprocess.CompletedProcess:
  return subprocess.run(cli_command(*args, config=config), cwd=REPO, capture_output=True,
                        text=True, timeout=600)


def leaves(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def restored_state(workdir, config, epoch=None):
  """(trainer, TrainingState) of ``workdir``'s checkpoint at ``epoch`` (default latest)."""
  trainer = trainer_for(config)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  try:
    abstract = checkpoint.abstract(jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
    return trainer, ckpt.restore(abstract, epoch)
  finally:
    ckpt.close()
