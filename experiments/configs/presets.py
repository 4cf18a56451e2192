"""Presets shared by the family configs: ``paper`` (the release) and ``cpu`` (small)."""
import ml_collections

from earjax.config import default_config

PRESETS = ("paper", "cpu")


def family_config(env_name: str, preset: str) -> ml_collections.ConfigDict:
  """The release's settings for ``env_name``; ``cpu`` shrinks networks and epochs so
  the run learns on a 2-core CPU in under 30 minutes."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
  config = default_config()
  config.env_name = env_name
  if preset == "cpu":
    config.network.actor_hidden = (256, 256)
    config.network.critic_hidden = (256, 256)
    config.network.state_encoder_hidden = (256,)
    config.network.task_encoder_hidden = (64,)
    config.envs_per_task = 4
    config.env_steps_per_epoch = 50
    config.grad_steps_per_epoch = 100
    config.random_epochs = 5
    config.batch_size = 64
    config.replay_capacity = 50_000
    config.learning_rate = 1e-3
    config.eval_every = 10
    config.checkpoint_every = 20
  return config
