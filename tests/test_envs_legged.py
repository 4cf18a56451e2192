"""The MJX multi-task suite against the EAR reference, legged families (Ant-Dir,
Hopper-Vel, Walker-Vel): rewards recomputed by hand from the simulator state, the
reference's terminations, mixed-task batches, auto-reset, fresh episodes stepped like
MuJoCo's C ``mj_step``.

Each family compiles exactly one function (mjx_rollouts.rollout), used by one test (the
suite distributes tests over two workers).
"""
import numpy as np
import pytest

from mujoco import mjx

from earjax import envs
from mjx_rollouts import (check_fresh_episodes_step_like_mujoco, check_reward,
                          check_rollout_and_auto_reset, rollout)

LEGGED = ("ant_dir", "hopper_vel", "walker_vel")


@pytest.mark.parametrize("name", LEGGED)
def test_reward_auto_reset_and_termination_of_the_reference(name):
  """The reward of every task of a mixed batch, finite rollouts whose auto-reset keeps
  each env's task, fresh episodes stepped like MuJoCo, and done iff the reference's
  healthy condition fails (read off the terminal observation)."""
  check_reward(name)
  check_rollout_and_auto_reset(name)
  check_fresh_episodes_step_like_mujoco(name)
  _, out = rollout(name)
  obs = out["terminal_obs"]
  if name == "hopper_vel":
    healthy = (obs[..., 0] > 0.7) & (np.abs(obs[..., 1]) < 0.2) & (
        np.abs(obs[..., 1:]) < 100).all(-1)
  elif name == "walker_vel":
    healthy = (obs[..., 0] > 0.8) & (obs[..., 0] < 2.0) & (np.abs(obs[..., 1]) < 1.0)
  else:
    healthy = (obs[..., 0] >= 0.2) & (obs[..., 0] <= 1.0)
  terminated = (out["done"] > 0) & (out["truncation"] == 0)
  np.testing.assert_array_equal(terminated, ~healthy, err_msg=name)
  if name != "ant_dir":  # random actions topple the walkers well within 200 steps
    assert terminated.any(), name


def test_ant_termination_on_crafted_heights():
  env = envs.make("ant_dir")
  data = mjx.make_data(env.mjx_model)  # eager and cheap; the test varies only qpos[2]
  for z, done in ((0.1, True), (0.2, False), (0.55, False), (1.0, False), (1.2, True)):
    assert bool(env._terminated(data.replace(qpos=data.qpos.at[2].set(z)))) == done, z
