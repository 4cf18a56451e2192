"""HalfCheetah-Vel: 10 velocity targets 1..10 m/s, 4000 epochs (about 8M env steps).

``cpu`` trains the targets 1, 2, 3, 4 m/s (task_ids 0-3).
"""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  config = family_config("halfcheetah_vel", preset)
  config.num_epochs = 4000
  if preset == "cpu":
    config.task_ids = (0, 1, 2, 3)
    config.num_epochs = 1000
  return config
