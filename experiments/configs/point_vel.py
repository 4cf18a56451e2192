"""Point-Vel, the tiny pure-JAX family: 4 velocity targets, compiles in about a second.

``paper`` is the release's SAC at its sizes (slow on a CPU for a toy); ``cpu`` learns in
about a minute: a place to debug an agent.
"""
from experiments.configs.presets import family_config


def get_config(preset: str = "cpu"):
  config = family_config("point_vel", preset, epochs=200, cpu_task_ids=(),
                         meta_tasks={"task_interval": (0.0, 1.5)})
  if preset.startswith("cpu"):
    config.network.actor_hidden = (64, 64)
    config.network.critic_hidden = (64, 64)
    config.ear_sac.state_encoder_hidden = (64,)
    config.ear_sac.task_encoder_hidden = (16,)
    config.num_epochs = config.random_epochs + 100
  return config
