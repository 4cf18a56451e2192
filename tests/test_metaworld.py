"""Meta-World MT10 on the host (envpool through io_callback): the task set, the batch's
auto-reset inside jit, seeding, the success flag against a scripted reach, and a run
through the generic job with resume."""
import json
import os

import chex
import envpool
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import envs
from earjax.envs import metaworld
from earjax.training import job
from experiments.configs import metaworld_mt10

# Meta-World's MT10 (metaworld ``_MT10_V3``), in its order.
MT10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
        "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
        "window-close-v3"]


def test_the_task_set_is_mt10_and_envpool_has_every_task():
  env = envs.make("metaworld_mt10")
  assert list(env.task_names) == MT10
  assert (env.observation_size, env.action_size, env.episode_length) == (39, 4, 500)
  assert metaworld.envpool_id("pick-place-v3") == "MetaWorld/PickPlace-v3"
  assert metaworld.envpool_id("button-press-topdown-v3") == "MetaWorld/ButtonPressTopdown-v3"
  assert {metaworld.envpool_id(t) for t in MT10} <= set(envpool.list_all_envs())
  assert envs.backends("metaworld_mt10") == ("envpool",)


def _run(batch, keys, task_params, actions):
  """reset, then one step per row of ``actions`` [T, B, 4], all in one jit."""
  @jax.jit
  def run(keys):
    state = batch.reset(keys, task_params)
    return state, jax.lax.scan(lambda s, a: (batch.step(s, a),) * 2, state, actions)[1]
  return run(keys)


def test_host_batch_steps_inside_jit_and_resets_with_the_terminal_observation():
  batch = envs.make("metaworld_mt10", episode_length=3).batch()
  task_params = jnp.asarray([[0.0], [0.0], [3.0], [9.0]])
  actions = jnp.full((4, 4, 4), 0.5)
  first, states = _run(batch, jax.random.split(jax.random.PRNGKey(0), 4), task_params,
                       actions)
  chex.assert_shape([first.obs, states.info["terminal_obs"][0]], (4, 39))
  chex.assert_shape([states.obs, states.info["terminal_obs"]], (4, 4, 39))
  chex.assert_shape([states.reward, states.done, states.metrics["success"]], (4, 4))
  assert np.isfinite(np.asarray(states.obs)).all()
  # Every env's episode ends at its third step: a time limit, not a termination.
  np.testing.assert_array_equal(states.done, [[0] * 4, [0] * 4, [1] * 4, [0] * 4])
  np.testing.assert_array_equal(states.info["truncation"], states.done)
  np.testing.assert_array_equal(states.info["steps"], [[1] * 4, [2] * 4, [0] * 4, [1] * 4])
  # Before the end, the next observation is the terminal one; at the end, a fresh reset.
  np.testing.assert_array_equal(states.obs[:2], states.info["terminal_obs"][:2])
  assert (np.abs(states.obs[2] - states.info["terminal_obs"][2]).max(1) > 1e-3).all()
  # Fresh goals (the last 3 entries) on every reset, also between the two reach envs.
  goals = np.asarray(first.obs[:, 36:])
  assert np.abs(goals[0] - goals[1]).max() > 1e-4
  assert np.abs(np.asarray(states.obs[2, :, 36:]) - goals).max() > 1e-4
  np.testing.assert_array_equal(states.info["task_param"][0], task_params)


def test_host_batch_is_seeded_by_the_reset_keys():
  batch = envs.make("metaworld_mt10").batch()
  params = jnp.asarray([[1.0], [1.0]])
  actions = jax.random.uniform(jax.random.PRNGKey(1), (5, 2, 4), minval=-1, maxval=1)
  run = lambda seed: _run(batch, jax.random.split(jax.random.PRNGKey(seed), 2), params,
                          actions)[1]
  a, b, c = run(0), run(0), run(1)
  np.testing.assert_array_equal(a.obs, b.obs)
  np.testing.assert_array_equal(a.reward, b.reward)
  assert np.abs(np.asarray(a.obs) - np.asarray(c.obs)).max() > 1e-4


def test_success_flag_is_meta_worlds_reach_criterion():
  """A proportional controller takes the hand to the goal.  Meta-World's reach succeeds
  when the gripper's centre is within 5 cm of the goal, the same bound inside which its
  reward is exactly 10 (10 x in_place, in_place = 1 inside the bound): the flag must be 1
  on exactly those steps, and 0 while the hand (obs[0:3], about 3 cm from that centre)
  is more than 10 cm away."""
  batch = envs.make("metaworld_mt10", episode_length=200).batch()
  state = jax.jit(batch.reset)(jax.random.split(jax.random.PRNGKey(3), 2),
                               jnp.zeros((2, 1)))
  step = jax.jit(batch.step)
  distances, flags, rewards = [], [], []
  for _ in range(60):
    hand, goal = np.asarray(state.obs[:, :3]), np.asarray(state.obs[:, 36:])
    action = np.concatenate([np.clip(10.0 * (goal - hand), -1, 1), -np.ones((2, 1))], 1)
    state = step(state, jnp.asarray(action, jnp.float32))
    distances.append(np.linalg.norm(np.asarray(state.obs[:, 36:] - state.obs[:, :3]), axis=1))
    flags.append(np.asarray(state.metrics["success"]))
    rewards.append(np.asarray(state.reward))
  distances, flags, rewards = map(np.concatenate, (distances, flags, rewards))
  assert flags.any() and (distances > 0.1).any()
  assert (flags[distances > 0.1] == 0).all()
  np.testing.assert_array_equal(flags, np.isclose(rewards, 10.0, rtol=0, atol=1e-6))


def test_a_host_family_refuses_per_env_rollouts():
  env = envs.make("metaworld_mt10")
  with pytest.raises(ValueError, match="stepped on the host"):
    env.reset(jax.random.PRNGKey(0), jnp.zeros(1))


def test_mt10_trains_through_the_generic_job_and_resumes(tmp_path, programs):
  config = metaworld_mt10.get_config("cpu")
  config.update(task_ids=(0, 5), env_steps_per_epoch=10, grad_steps_per_epoch=3,
                batch_size_per_task=8, min_replay_size=0, random_epochs=1, num_epochs=2,
                eval_every=2, eval_episodes=1, checkpoint_every=1)
  config.network.actor_hidden = config.network.critic_hidden = (16,)
  workdir = str(tmp_path / "mt10")
  row = job.train_and_evaluate(config, workdir)
  assert (row["epoch"], row["env_steps"]) == (2, 40)
  assert set(k for k in row if k.startswith("eval/success/")) == {
      "eval/success/reach-v3", "eval/success/drawer-close-v3"}
  assert row["eval/length/reach-v3"] == 500 and "eval/velocity/reach-v3" not in row
  assert os.listdir(programs) == []   # host callbacks are not exportable: plain jit
  config.num_epochs = 3
  row = job.train_and_evaluate(config, workdir)   # resumes at epoch 2, fresh episodes
  assert (row["epoch"], row["env_steps"], row["grad_steps"]) == (3, 60, 6)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(line)["epoch"] for line in f] == [2, 3]


def test_the_lte_tools_and_fine_tuning_refuse_a_host_family_in_one_line():
  env = envs.make("metaworld_mt10")
  with pytest.raises(ValueError, match=r"^fine-tuning needs per-env JAX rollouts; "
                     r"metaworld_mt10 is stepped on the host .*halfcheetah_vel"):
    envs.require_per_env(env, "fine-tuning")
  envs.require_per_env(envs.make("point_vel"), "fine-tuning")   # a JAX family passes
