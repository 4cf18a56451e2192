"""Walker-Vel: 10 velocity targets linspace(0.2, 2.0, 10), 5000 epochs (about 10M env steps).

``cpu`` trains the targets 0.2, 0.8, 1.4, 2.0 m/s (task_ids 0, 3, 6, 9).
"""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  config = family_config("walker_vel", preset)
  config.num_epochs = 5000
  if preset == "cpu":
    config.task_ids = (0, 3, 6, 9)
    config.num_epochs = 1000
  return config
