"""HalfCheetah-Run-Jump: 7 run targets and 3 jump weights, 4000 epochs."""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  config = family_config("halfcheetah_run_jump", preset)
  config.num_epochs = 4000
  if preset == "cpu":
    config.task_ids = (0, 2, 4, 7, 9)  # run 1, 3, 5; jump 1, 10
    config.num_epochs = 1000
  return config
