"""Ant-Dir: 24 directions, 80 transitions per task a batch, 50k replay per task,
10000 epochs (about 48M env steps).  The cpu presets train 0, 90, 180, 270 degrees."""
from experiments.configs.presets import PRESETS_WITHOUT_META, family_config

PRESETS = PRESETS_WITHOUT_META


def get_config(preset: str = "paper"):
  return family_config("ant_dir", preset, epochs=10000, cpu_task_ids=(0, 6, 12, 18),
                       batch_size_per_task=80, replay_capacity=50_000)
