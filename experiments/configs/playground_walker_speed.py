"""MuJoCo Playground's walker (DM Control suite) with the move speed as the task.

Tasks 0, 1, 2, 4, 8 m/s (Playground's WalkerStand, WalkerWalk and WalkerRun are 0, 1 and
8), held out 3 and 6 (``earjax.envs.playground``).  The cpu presets train 1, 2, 4 and 8
m/s (task_ids 1-4) on 250-step episodes (Playground's are 1,000 steps of 25 ms); the
others keep Playground's episode length.  The family has one speed per task but no
meta-RL references, so it has no ``cpu_meta`` preset.
"""
from experiments.configs.presets import family_config

CPU_EPISODE_LENGTH = 250


def get_config(preset: str = "cpu"):
  config = family_config("playground_walker_speed", preset, epochs=5000,
                         cpu_task_ids=(1, 2, 3, 4))
  if preset.startswith("cpu"):
    config.env.episode_length = CPU_EPISODE_LENGTH
  return config
