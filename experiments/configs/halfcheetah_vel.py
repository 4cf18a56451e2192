"""HalfCheetah-Vel: 10 velocity targets 1..10 m/s, 4000 epochs (about 8M env steps).

The cpu presets train the targets 1, 2, 3, 4 m/s (task_ids 0-3); ``cpu_meta`` PEARL's
protocol (oyster: 100 + 30 targets from U(0, 3), control cost 0.05).
"""
from experiments.configs.presets import family_config


def get_config(preset: str = "paper"):
  return family_config("halfcheetah_vel", preset, epochs=4000, cpu_task_ids=(0, 1, 2, 3),
                       meta_tasks={"task_interval": (0.0, 3.0), "ctrl_cost": 0.05})
