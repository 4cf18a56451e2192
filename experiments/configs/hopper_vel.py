"""Hopper-Vel: 10 velocity targets linspace(0.2, 2.0, 10), 5000 epochs (about 10M env steps).

The cpu presets train the targets 0.2, 0.8, 1.4, 2.0 m/s (task_ids 0, 3, 6, 9);
``cpu_meta`` 100 + 30 targets drawn from U(0.2, 2.0), the paper's range (the meta-RL
references have no such family).
"""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  return family_config("hopper_vel", preset, epochs=5000, cpu_task_ids=(0, 3, 6, 9),
                       meta_tasks={"task_interval": (0.2, 2.0)})
