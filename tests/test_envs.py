"""The MJX multi-task suite against the EAR reference: rewards recomputed by hand from
the simulator state, terminations, mixed-task batches, auto-reset and bad input.

Each family compiles exactly one function (a vmapped reset plus a scan of auto-reset
steps with one env per training task), shared by all tests of that family.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mujoco import mjx

from earjax import envs


STEPS = 205  # past the 200-step time limit, so every env auto-resets once
FAMILIES = ("halfcheetah_vel", "ant_dir", "hopper_vel", "walker_vel", "halfcheetah_run_jump")


@functools.cache
def rollout(name, backend="mjx"):
  """205 random-action steps of one env per training task, as numpy arrays."""
  env = envs.make(name, backend=backend)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks)

  @jax.jit
  def run(key):
    key, reset_key = jax.random.split(key)
    state = batch.reset(jax.random.split(reset_key, len(tasks)), tasks)

    def body(state, key):
      actions = jax.random.uniform(key, (len(tasks), env.action_size), minval=-1, maxval=1)
      nxt = batch.step(state, actions)
      return nxt, dict(qpos_before=env.qpos(state.data), qpos=env.qpos(nxt.data), obs=nxt.obs,
                       action=actions, reward=nxt.reward, done=nxt.done,
                       truncation=nxt.info["truncation"], steps=nxt.info["steps"],
                       terminal_obs=nxt.info["terminal_obs"], metrics=nxt.metrics,
                       task_param=nxt.info["task_param"])

    _, out = jax.lax.scan(body, state, jax.random.split(key, STEPS))
    return out

  return env, jax.tree.map(np.asarray, run(jax.random.PRNGKey(0)))


def expected_reward(name, env, qpos_before, qpos, action, task):
  """The reward of EAR_REFERENCE.md's table, from positions before/after and the action."""
  v_x = (qpos[..., 0] - qpos_before[..., 0]) / env.dt
  act2 = np.sum(action**2, -1)
  p = task[..., 0]
  if name == "halfcheetah_vel":
    return -np.abs(v_x - p) - 0.1 * act2
  if name == "ant_dir":
    v_y = (qpos[..., 1] - qpos_before[..., 1]) / env.dt
    rad = np.deg2rad(p)
    return v_x * np.cos(rad) + v_y * np.sin(rad) - 0.5 * act2 + 1.0
  if name == "hopper_vel":
    return -np.abs(v_x - p) - 1e-3 * act2 + 1.05
  if name == "walker_vel":
    return -np.abs(v_x - p) - 1e-3 * act2 + 1.0
  c_vel, vel, w_height = task[..., 0], task[..., 1], task[..., 2]
  return -c_vel * np.abs(v_x - vel) + w_height * qpos[..., 1] - 0.1 * act2


@pytest.mark.parametrize("name, backend", [(n, "mjx") for n in FAMILIES]
                         + [("halfcheetah_vel", "spring")])
def test_reward_matches_reference_for_every_task_of_a_mixed_batch(name, backend):
  env, out = rollout(name, backend)
  # Before/after positions are known for steps that did not end an episode (a reset
  # replaces the state); each env is scored with its own task's parameter.
  kept = out["done"] == 0
  assert kept.mean() > 0.5
  want = expected_reward(name, env, out["qpos_before"], out["qpos"], out["action"],
                         out["task_param"])
  np.testing.assert_allclose(out["reward"][kept], want[kept], rtol=1e-4, atol=1e-4)
  velocity = out["metrics"]["velocity"]
  assert velocity.shape == (STEPS, env.num_tasks)
  # Different tasks in one batch really get different rewards.
  assert len(np.unique(np.round(out["reward"][0], 5))) > 1


@pytest.mark.parametrize("name", FAMILIES)
def test_random_rollout_stays_finite_and_auto_reset_keeps_the_task(name):
  env, out = rollout(name)
  for key in ("obs", "reward", "qpos", "terminal_obs"):
    assert np.isfinite(out[key]).all(), key
  assert out["obs"].shape == (STEPS, env.num_tasks, env.observation_size)
  np.testing.assert_array_equal(
      out["task_param"], np.broadcast_to(env.train_tasks, out["task_param"].shape))
  # The time limit: an env that lives 200 steps is truncated at its 200th step.
  truncated = out["truncation"] > 0
  assert (out["done"][truncated] == 1).all()
  alive_whole_episode = out["done"][:199].sum(0) == 0
  assert (out["truncation"][199][alive_whole_episode] == 1).all()
  if name.startswith("halfcheetah"):  # never terminates: every env hits the limit
    assert alive_whole_episode.all() and truncated[199].all()
    assert (truncated.sum(0) == 1).all()
  # The step counter restarts after every end of episode.
  assert (out["steps"][out["done"] > 0] == 0).all()


def test_termination_rules_of_the_reference():
  """Done iff the reference's healthy condition fails, read off the terminal obs."""
  for name in ("hopper_vel", "walker_vel", "ant_dir"):
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
  for name in ("halfcheetah_vel", "halfcheetah_run_jump"):
    _, out = rollout(name)
    assert (out["done"] == out["truncation"]).all(), "HalfCheetah never terminates"


def test_ant_termination_on_crafted_heights():
  env = envs.make("ant_dir")
  data = mjx.make_data(env.mjx_model)  # eager and cheap; the test varies only qpos[2]
  for z, done in ((0.1, True), (0.2, False), (0.55, False), (1.0, False), (1.2, True)):
    assert bool(env._terminated(data.replace(qpos=data.qpos.at[2].set(z)))) == done, z


def test_task_sets_are_the_reference_ones():
  cheetah = envs.make("halfcheetah_vel")
  np.testing.assert_array_equal(cheetah.train_tasks[:, 0], np.arange(1, 11))
  assert cheetah.episode_length == 200 and cheetah.dt == pytest.approx(0.05)
  assert ((cheetah.adapt_tasks >= 0) & (cheetah.adapt_tasks <= 9.9)).all()
  ant = envs.make("ant_dir")
  np.testing.assert_array_equal(ant.train_tasks[:, 0], np.arange(0, 360, 15))
  assert len(ant.adapt_tasks) == 5 and ((ant.adapt_tasks >= 0) & (ant.adapt_tasks < 360)).all()
  for name in ("hopper_vel", "walker_vel"):
    env = envs.make(name)
    np.testing.assert_allclose(env.train_tasks[:, 0], np.linspace(0.2, 2.0, 10), rtol=1e-6)
    assert len(env.adapt_tasks) == 3 and (env.adapt_tasks <= 1.9).all()
  run_jump = envs.make("halfcheetah_run_jump")
  assert run_jump.task_names == tuple(f"run{p}" for p in range(1, 8)) + (
      "jump1", "jump5", "jump10")
  assert run_jump.extra_task_names == ("walk", "stand")
  sizes = {n: (envs.make(n).observation_size, envs.make(n).action_size) for n in FAMILIES}
  assert sizes == {"halfcheetah_vel": (17, 6), "ant_dir": (27, 8), "hopper_vel": (11, 3),
                   "walker_vel": (17, 6), "halfcheetah_run_jump": (17, 6)}


def test_spring_backend_keeps_the_control_step_and_the_observation():
  mjx_env, spring = envs.make("halfcheetah_vel"), envs.make("halfcheetah_vel", backend="spring")
  assert spring.dt == pytest.approx(mjx_env.dt) and spring.backend == "spring"
  assert spring.observation_size == mjx_env.observation_size == 17
  _, out = rollout("halfcheetah_vel", "spring")
  assert np.isfinite(out["obs"]).all() and (out["done"] == out["truncation"]).all()
  with pytest.raises(ValueError, match="backend 'spring' is not offered for hopper_vel; "
                                       "valid: mjx"):
    envs.make("hopper_vel", backend="spring")


def test_unknown_name_and_option_are_rejected():
  with pytest.raises(ValueError, match="unknown env 'cheetah'; valid names: halfcheetah_vel"):
    envs.make("cheetah")
  with pytest.raises(ValueError, match="unknown option.*frame_skip.*valid options"):
    envs.make("hopper_vel", frame_skip=2)
  with pytest.raises(ValueError, match="episode_length must be a positive integer"):
    envs.make("hopper_vel", episode_length=0)


def test_wrong_shapes_fail_at_trace_time_naming_the_expected_shape():
  env = envs.make("hopper_vel")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"task_param must have shape \(1,\)"):
    jax.eval_shape(env.reset, key, jnp.zeros(2))
  with pytest.raises(ValueError, match=r"task_param must have shape \(1,\)"):
    jax.eval_shape(env.reset, key, jnp.zeros(()))  # no silent broadcast of a scalar
  state = jax.eval_shape(env.reset, key, jnp.zeros(1))
  with pytest.raises(ValueError, match=r"action must have shape \(3,\)"):
    jax.eval_shape(env.step, state, jnp.zeros(6))
  batch = envs.AutoResetBatch(env)
  with pytest.raises(ValueError, match=r"expected B keys and task_params \[B, 1\]"):
    jax.eval_shape(batch.reset, jax.random.split(key, 4), jnp.zeros((3, 1)))
  states = jax.eval_shape(batch.reset, jax.random.split(key, 4), jnp.zeros((4, 1)))
  with pytest.raises(ValueError, match=r"actions must have shape \(4, 3\)"):
    jax.eval_shape(batch.step, states, jnp.zeros((4, 2)))
