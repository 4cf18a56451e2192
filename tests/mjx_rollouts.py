"""One compiled random-action rollout per MJX family and backend, shared by the env tests
of a file, and the EAR reference's rewards recomputed from positions and actions."""
import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from earjax import envs

STEPS = 205  # past the 200-step time limit, so every env auto-resets once
FAMILIES = ("halfcheetah_vel", "ant_dir", "hopper_vel", "walker_vel", "halfcheetah_run_jump")


def rollout(name, backend="mjx"):
  """205 random-action steps of one env per training task, as numpy arrays (computed once
  per family and backend).  The
  substeps are a rolled loop here (``unroll_substeps=False``: the same physics, compiled
  ~2.4x faster; the unrolled step is what training and the benchmarks compile)."""
  return _rollout(name, backend)


@functools.cache
def _rollout(name, backend):
  env = envs.make(name, backend=backend, unroll_substeps=False)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks)

  @jax.jit
  def run(key):
    key, reset_key = jax.random.split(key)
    state = batch.reset(jax.random.split(reset_key, len(tasks)), tasks)

    def body(state, key):
      actions = jax.random.uniform(key, (len(tasks), env.action_size), minval=-1, maxval=1)
      nxt = batch.step(state, actions)
      return nxt, dict(qpos_before=env.qpos(state.data), qvel_before=env.qvel(state.data),
                       steps_before=state.info["steps"], qpos=env.qpos(nxt.data), obs=nxt.obs,
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


def check_reward(name, backend="mjx"):
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


def check_rollout_and_auto_reset(name):
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


def check_fresh_episodes_step_like_mujoco(name):
  """The first control step of every fresh episode (the reset state is qpos/qvel alone,
  not forwarded: ``MjxFamilyEnv._physics_reset``) lands where MuJoCo's own C ``mj_step``
  takes the same qpos, qvel and action (float64, fresh ``MjData``: zero warm start)."""
  env, out = rollout(name)
  fresh = (out["steps_before"] == 0) & (out["done"] == 0)
  assert fresh[0].all() and fresh[1:].any(), "the first step and auto-resets start episodes"
  model = env.mj_model
  data = mujoco.MjData(model)
  for t, i in zip(*np.nonzero(fresh)):
    mujoco.mj_resetData(model, data)
    data.qpos, data.qvel, data.ctrl = (out["qpos_before"][t, i], out["qvel_before"][t, i],
                                       out["action"][t, i])
    mujoco.mj_step(model, data, nstep=env.n_frames)
    np.testing.assert_allclose(out["qpos"][t, i], data.qpos, rtol=0, atol=1e-5,
                               err_msg=f"{name}: step {t}, env {i}")
