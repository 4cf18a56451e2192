"""The goal-oriented success of every family (the ``success`` metric of ``env.reward``),
on hand-made states, and the episode success of evaluation (``acting.episode_success``).

Success thresholds are earjax's choice (WORKSPACE.md, "Success"): a velocity within 10 %
of its target (at least 0.1 m/s); Ant-Dir at least 0.5 m/s along the direction, heading
within 15 degrees; Run-Jump's jump tasks the torso 0.4 m above its start.  Only the
positions a reward reads are set (nothing here is compiled, so no MJX program is built).
"""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import acting
from earjax import evaluation
from earjax.envs import readings
from earjax import envs
from earjax.envs import point


def success(env, qpos_before, qpos, task_param):
  before = types.SimpleNamespace(qpos=jnp.asarray(qpos_before, jnp.float32),
                                 qvel=jnp.zeros(1))
  after = types.SimpleNamespace(qpos=jnp.asarray(qpos, jnp.float32), qvel=jnp.zeros(1))
  action = jnp.zeros(env.action_size)
  return float(env.reward(before, after, action, jnp.asarray(task_param, jnp.float32))[1]
               ["success"])


def forward(env, velocity, nq, height=0.0):
  """(qpos before, qpos after) of a step at ``velocity`` along x (and rootz ``height``
  after it, for HalfCheetah)."""
  before = np.zeros(nq)
  after = np.zeros(nq)
  after[0] = velocity * env.dt
  after[1] = height
  return before, after


@pytest.mark.parametrize("name, nq", [("halfcheetah_vel", 9), ("hopper_vel", 6),
                                      ("walker_vel", 9)])
def test_a_velocity_within_ten_percent_of_its_target_succeeds(name, nq):
  env = envs.make(name)
  # target 2: tolerance 0.2; target 0.5: tolerance 0.1 (at least 0.1 m/s).
  for target, velocity, want in [(2.0, 2.19, 1.0), (2.0, 1.81, 1.0), (2.0, 2.21, 0.0),
                                 (2.0, 1.79, 0.0), (0.5, 0.59, 1.0), (0.5, 0.61, 0.0)]:
    before, after = forward(env, velocity, nq)
    assert success(env, before, after, [target]) == want, (target, velocity)


def test_point_vel_success_reads_the_velocity_after_the_step():
  env = envs.make("point_vel")
  before = types.SimpleNamespace(qpos=jnp.zeros(1), qvel=jnp.zeros(1))
  for velocity, want in [(-1.6, 1.0), (-1.4, 1.0), (-1.7, 0.0), (-1.3, 0.0)]:
    after = types.SimpleNamespace(qpos=jnp.zeros(1), qvel=jnp.asarray([velocity]))
    metrics = env.reward(before, after, jnp.zeros(1), jnp.asarray([-1.5]))[1]
    assert float(metrics["success"]) == want, velocity


def test_run_jump_success_needs_every_weighted_term():
  env = envs.make("halfcheetah_run_jump")
  run3, jump5, stand = [1.0, 3.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.0, 1.0]
  cases = [(run3, 3.2, 0.0, 1.0), (run3, 3.4, 0.0, 0.0), (run3, 3.0, 0.5, 1.0),
           (jump5, 0.0, 0.45, 1.0), (jump5, 8.0, 0.45, 1.0), (jump5, 0.0, 0.35, 0.0),
           (stand, 0.05, 0.5, 1.0), (stand, 0.05, 0.2, 0.0), (stand, 0.3, 0.5, 0.0)]
  for task, velocity, height, want in cases:
    before, after = forward(env, velocity, 9, height)
    assert success(env, before, after, task) == want, (task, velocity, height)


def test_ant_dir_success_is_speed_along_the_direction_and_heading():
  env = envs.make("ant_dir")
  # Direction 90 degrees (+y); (x, y) velocities: 0.2 lateral over 1.0 is 11.3 degrees
  # off, 0.3 over 1.0 is 16.7 degrees off; 0.4 along +y is below 0.5 m/s.
  for vx, vy, want in [(0.0, 1.0, 1.0), (0.2, 1.0, 1.0), (-0.2, 1.0, 1.0),
                       (0.3, 1.0, 0.0), (0.0, 0.4, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)]:
    before, after = np.zeros(15), np.zeros(15)
    after[:2] = np.array([vx, vy]) * env.dt
    assert success(env, before, after, [90.0]) == want, (vx, vy)


HELD = acting.SuccessRule("held", 0.8)


def test_an_episode_succeeds_by_holding_its_goal_not_by_touching_it():
  """Hand-counted [T=10, B] indicators: the second half is steps 5..9; 4 of 5 held
  (0.8) passes, 3 of 5 fails; a touch of 3 steps in the first half fails; an episode
  that fell at step 4 (less than half its length) fails; one that ended at step 8
  (Point-Vel's track end) is judged on steps 4..7 of what it ran; any one step passes
  Meta-World's rule."""
  columns = {"held_from_start": ([1] * 10, 10),
             "four_of_five": ([0] * 5 + [1, 1, 0, 1, 1], 10),
             "three_of_five": ([0] * 5 + [1, 0, 1, 0, 1], 10),
             "touch": ([0, 1, 1, 1, 0, 0, 0, 0, 0, 0], 10),
             "fell_at_step_4": ([1] * 4 + [0] * 6, 4),
             "track_end_at_step_8": ([0] * 4 + [1] * 4 + [0] * 2, 8)}
  steps = jnp.asarray([c for c, _ in columns.values()], jnp.float32).T
  alive = jnp.asarray([[1] * n + [0] * (10 - n) for _, n in columns.values()],
                      jnp.float32).T
  np.testing.assert_array_equal(acting.episode_success(steps, alive, HELD),
                                [1, 1, 0, 0, 0, 1])
  np.testing.assert_array_equal(
      acting.episode_success(steps, alive, acting.SuccessRule("any")), [1, 1, 1, 1, 1, 1])


def indicator_in_time(dt, duration, band):
  """The per-step indicator [T, 1] of a trajectory given in seconds: inside ``band``
  (start, end), in seconds, else outside; sampled at control step ``dt``."""
  t = (np.arange(int(round(duration / dt))) + 0.5) * dt
  return jnp.asarray(((t >= band[0]) & (t < band[1])).astype(np.float32))[:, None]


@pytest.mark.parametrize("band, want", [
    ((0.3, 1.6), 1.0),    # reaches the target at 0.3 s and holds it
    ((0.2, 0.5), 0.0),    # touches it for 0.3 s
    ((1.0, 1.6), 0.0),    # holds only the last 0.6 s of the second half's 0.8 s
    ((0.7, 1.5), 1.0),    # holds 0.7 s of the second half's 0.8 s (87.5 %), then leaves
])
def test_hopper_and_halfcheetah_control_steps_give_one_verdict(band, want):
  """The same 1.6 s trajectory sampled at Hopper's 0.008 s (200 steps) and HalfCheetah's
  0.05 s (32 steps) control step: the verdict is a fraction of time, the same for both."""
  hopper, cheetah = (acting.episode_success(x, jnp.ones_like(x), HELD) for x in (
      indicator_in_time(0.008, 1.6, band), indicator_in_time(0.05, 1.6, band)))
  assert float(hopper[0]) == float(cheetah[0]) == want


def test_evaluation_reports_each_tasks_success_rate():
  """Point-Vel's hand-written controller (test_point_vel.py) holds every target: every
  episode succeeds; zero thrust meets none of the targets."""
  env = envs.make("point_vel")
  targets = jnp.asarray(env.train_tasks)

  def holding(task_index, obs, key, stochastic):
    del key, stochastic
    p = targets[task_index]
    return jnp.clip(p * point.DAMPING / point.GAIN + 5.0 * (p - obs[1:]), -1.0, 1.0)

  def idle(task_index, obs, key, stochastic):
    del task_index, obs, key, stochastic
    return jnp.zeros(1)

  for act, want in [(holding, 1.0), (idle, 0.0)]:
    result = jax.jit(lambda key, act=act: evaluation.evaluate(
        env, act, jnp.arange(4), targets, key, episodes=2, success=HELD))(
            jax.random.PRNGKey(0))
    np.testing.assert_array_equal(result["success"], [want] * 4)


def test_the_heading_of_the_displacement_and_its_angle_to_the_direction():
  """Ant-Dir's evaluation (``evaluation.evaluate``): per task, the heading of its episodes'
  summed planar displacement, steps after an episode's end not counted; the angle to the
  task's direction on the circle."""
  # [T = 3, B = 4], task-major: task 0's episodes are columns 0, 1, task 1's 2, 3.
  alive = jnp.asarray([[1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 0, 1]], jnp.float32)
  vx = jnp.asarray([[1, 0, -1, 0], [1, 0, 5, 0], [0, 0, 5, 0]], jnp.float32)
  vy = jnp.asarray([[0, 0, 0, -1], [1, 0, 5, -1], [1, 0, 5, -1]], jnp.float32)
  # Task 0: (2, 2) + (0, 0) -> 45 degrees.  Task 1: (-1, 0) (its episode ended after one
  # step) + (0, -3) -> atan2(-3, -1) = 180 + 71.565 degrees.
  np.testing.assert_allclose(readings.displacement_heading(alive, vx, vy, num_tasks=2),
                             [45.0, 251.565], atol=1e-3)
  # Just below the +x axis still reads [0, 360); no displacement has no heading.
  one = jnp.ones((1, 1))
  assert 0.0 <= float(readings.displacement_heading(one, one, -1e-9 * one, 1)[0]) < 360.0
  assert np.isnan(readings.displacement_heading(one, 0 * one, 0 * one, 1)).all()
  for a, b, want in [(350.0, 0.0, 10.0), (10.0, 350.0, 20.0), (0.0, 180.0, 180.0),
                     (251.565, 270.0, 18.435), (90.0, 90.0, 0.0)]:
    assert readings.angle_difference(a, b) == pytest.approx(want), (a, b)
