"""The training configurations the suite times, as ``earjax`` configs.

``brax_matched``: brax 0.14's SAC setting on HalfCheetah (64 envs, batch 256, 16
gradient steps per env step of the 64-env batch, (256, 256) networks), here one
HalfCheetah-Vel task (10 m/s) with 64 envs, ``env_steps_per_epoch`` E and
``grad_steps_per_epoch`` 16 E, plain SAC MLPs (``agent="ohe_sac"``; ``"ear_sac"`` with
every hidden layer 256 wide is recorded beside it), brax's SAC update order (critic,
actor, alpha) and no policy regularisers.  ``preset``: the ``cpu`` and ``paper``
presets of HalfCheetah-Vel; ``mt10``: those of Meta-World MT10 (host-stepped).  ``tiny``: the smoke-test setting of ``--quick``.
Random epochs and the replay minimum are 0 (but in ``tiny``): the timed epochs are
training epochs.
"""
from __future__ import annotations

import ml_collections

from earjax import config as config_lib
from earjax.config import default_config
from experiments.configs import halfcheetah_vel
from experiments.configs import metaworld_mt10

BRAX_ENVS = 64
BRAX_BATCH = 256
BRAX_UPDATES_PER_ENV_STEP = 16
BRAX_WIDTHS = (256, 256)


# brax's HalfCheetah asset's solver budget (Newton, 4 iterations, 50 line-search
# iterations; read from its compiled model by benchmarks/peers/brax_sac.py).
BRAX_ASSET_SOLVER = (4, 50)


def brax_matched(agent: str = "ohe_sac", backend: str = "default",
                 env_steps_per_epoch: int = 25,
                 solver: tuple[int, int] | None = None) -> ml_collections.ConfigDict:
  """brax's SAC setting; ``agent="ear_sac"`` gives the EAR actor the same widths;
  ``solver`` (iterations, line-search iterations) replaces HalfCheetah-Vel's 4/8."""
  c = default_config("halfcheetah_vel")
  c.env.backend = "mjx" if backend == "default" else backend
  if solver:
    c.env.solver_iterations, c.env.ls_iterations = solver
  c.task_ids = (9,)
  c.envs_per_task = BRAX_ENVS
  c.batch_size_per_task = BRAX_BATCH
  c.env_steps_per_epoch = env_steps_per_epoch
  c.grad_steps_per_epoch = BRAX_UPDATES_PER_ENV_STEP * env_steps_per_epoch
  c.random_epochs = 0
  c.min_replay_size = 0
  c.sac.update_order = "critic_first"
  c.agent = agent
  c.network.actor_hidden = BRAX_WIDTHS
  c.network.critic_hidden = BRAX_WIDTHS
  c.ear_sac.state_encoder_hidden = BRAX_WIDTHS
  c.ear_sac.task_encoder_hidden = BRAX_WIDTHS[:1]
  return c


def preset(name: str, agent: str = "ear_sac") -> ml_collections.ConfigDict:
  """HalfCheetah-Vel's ``cpu`` or ``paper`` preset for ``agent``, without random epochs."""
  c = halfcheetah_vel.get_config(name)
  c.agent = agent
  c.random_epochs = 0
  c.min_replay_size = 0
  return c


def mt10(name: str, agent: str = "ohe_sac") -> ml_collections.ConfigDict:
  """Meta-World MT10's ``cpu`` or ``paper`` preset for ``agent``, without random epochs
  (the timed epochs train)."""
  c = metaworld_mt10.get_config(name)
  c.agent = agent
  c.random_epochs = 0
  c.min_replay_size = 0
  return c


def tiny() -> ml_collections.ConfigDict:
  """Seconds to compile and run: Point-Vel, two tasks, 4 envs, 8-wide networks
  (``--quick``)."""
  c = default_config("point_vel")
  c.task_ids = (0, 3)
  c.envs_per_task = 2
  c.env_steps_per_epoch = 5
  c.grad_steps_per_epoch = 3
  c.random_epochs = 1
  c.min_replay_size = 0
  c.batch_size_per_task = 4
  c.replay_capacity = 40
  c.network.actor_hidden = c.network.critic_hidden = (8,)
  c.ear_sac.state_encoder_hidden = c.ear_sac.task_encoder_hidden = (8,)
  return c


def describe(config: ml_collections.ConfigDict) -> dict:
  """The settings of ``config`` a throughput record carries (read from the config the
  Trainer is built from)."""
  n, e, env = config.network, config.ear_sac, config.env
  return {"env": config.env_name, "backend": config_lib.backend(config),
          "task_ids": list(config.task_ids), "envs_per_task": config.envs_per_task,
          "batch_size_per_task": config.batch_size_per_task,
          "env_steps_per_epoch": config.env_steps_per_epoch,
          "grad_steps_per_epoch": config.grad_steps_per_epoch, "agent": config.agent,
          "actor_hidden": list(n.actor_hidden), "critic_hidden": list(n.critic_hidden),
          "state_encoder_hidden": list(e.state_encoder_hidden),
          "task_encoder_hidden": list(e.task_encoder_hidden),
          "solver": (f"{env.solver_iterations}/{env.ls_iterations}"
                     if "solver_iterations" in env else None)}
