"""What a family's evaluation reads of its episodes, beside return, length and success.

A family declares its ``readings()`` (``TaskFamilyEnv``): each ``Reading`` says how one
number per task is measured from the evaluation episodes (traced, inside the jitted
evaluation), what the task asks of it (``target``, from the task parameter; None where
the task asks nothing) and how far a value is from that (``error``).
``earjax.evaluation`` turns any family's readings into the metrics (``eval/<name>/<task>``,
``eval/<error_name>/<task>``, ``eval/<error_name>_mean``) and the CLI table.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Reading:
  """``measure(metrics, alive, num_tasks) -> [num_tasks]``: ``metrics`` the episodes'
  per-step env metrics [T, B] and ``alive`` [T, B] (1 while the episode runs), episodes
  task-major (B = num_tasks x episodes); ``target(task_param) -> float | None``;
  ``error(value, target) -> float`` (>= 0); ``digits`` for the table."""
  name: str
  error_name: str
  measure: Callable[[dict, jax.Array, int], jax.Array]
  target: Callable[[np.ndarray], float | None]
  error: Callable[[float, float], float]
  digits: int = 2


def _mean_velocity(metrics, alive, num_tasks):
  """Per task, the mean over its episodes of the velocity averaged over the steps alive."""
  per_episode = (alive * metrics["velocity"]).sum(0) / alive.sum(0)   # step 0 is alive
  return per_episode.reshape(num_tasks, -1).mean(1)


def velocity(target: Callable[[np.ndarray], float | None]) -> Reading:
  """The forward velocity (the env's ``velocity`` metric, mean over the steps alive) and
  |velocity - target|."""
  return Reading("velocity", "velocity_error", _mean_velocity, target,
                 lambda value, want: abs(value - want))


def displacement_heading(alive: jax.Array, x_velocity: jax.Array, y_velocity: jax.Array,
                         num_tasks: int) -> jax.Array:
  """Per task, the heading in degrees [0, 360) of its episodes' summed displacement
  (the planar velocity [T, B] summed over the steps alive; B task-major): the release's
  "heading of the final position" (EAR_REFERENCE, interpolation), over all episodes;
  NaN where the episodes did not move at all (no heading)."""
  total = lambda v: (alive * v).sum(0).reshape(num_tasks, -1).sum(1)
  dx, dy = total(x_velocity), total(y_velocity)
  heading = jnp.degrees(jnp.arctan2(dy, dx)) % 360.0
  heading = jnp.where(heading >= 360.0, 0.0, heading)   # float32: -1e-6 % 360 == 360
  return jnp.where((dx == 0.0) & (dy == 0.0), jnp.nan, heading)


def angle_difference(a, b):
  """|a - b| in degrees on the circle, in [0, 180]."""
  return abs((a - b + 180.0) % 360.0 - 180.0)


def heading(target: Callable[[np.ndarray], float | None]) -> Reading:
  """The heading of the displacement (``displacement_heading`` of the ``x_velocity`` and
  ``y_velocity`` metrics) and its angle to the task's direction."""
  return Reading(
      "heading", "direction_error",
      lambda metrics, alive, num_tasks: displacement_heading(
          alive, metrics["x_velocity"], metrics["y_velocity"], num_tasks),
      target, angle_difference, digits=0)
