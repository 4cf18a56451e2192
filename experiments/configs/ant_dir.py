"""Ant-Dir: 24 directions, 80 transitions per task a batch, 50k replay per task,
10000 epochs (about 48M env steps)."""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  config = family_config("ant_dir", preset)
  config.num_epochs = 10000
  config.batch_size = 80
  config.replay_capacity = 50_000
  if preset == "cpu":
    config.task_ids = (0, 6, 12, 18)  # 0, 90, 180, 270 degrees
    config.num_epochs = 1000
  return config
