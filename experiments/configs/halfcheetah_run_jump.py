"""HalfCheetah-Run-Jump: 7 run targets and 3 jump weights, 4000 epochs.

The cpu presets train run 1, 3, 5 and jump 1, 10 (task_ids 0, 2, 4, 7, 9)."""
from experiments.configs.presets import PRESETS_WITHOUT_META, family_config

PRESETS = PRESETS_WITHOUT_META


def get_config(preset: str = "paper"):
  return family_config("halfcheetah_run_jump", preset, epochs=4000,
                       cpu_task_ids=(0, 2, 4, 7, 9))
