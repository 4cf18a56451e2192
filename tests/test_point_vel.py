"""Point-Vel, the tiny pure-JAX family: its physics, reward and termination by hand, the
auto-reset batch on it, and that it is a real control problem (a hand-written
controller holds every target)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import envs
from earjax.config import validate
from earjax.envs import point
from tiny import tiny_config

STEPS = 260  # past the 200-step limit


@pytest.fixture(scope="module")
def env():
  return envs.make("point_vel")


def run(env, controller, steps=STEPS):
  """``steps`` auto-reset steps of one env per training task under ``controller(obs,
  task_param) -> action``."""
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks)

  @jax.jit
  def go(key):
    state = batch.reset(jax.random.split(key, len(tasks)), tasks)

    def body(state, _):
      action = controller(state.obs, state.info["task_param"])
      nxt = batch.step(state, action)
      return nxt, dict(obs=state.obs, next_obs=nxt.info["terminal_obs"], action=action,
                       reward=nxt.reward, done=nxt.done, truncation=nxt.info["truncation"],
                       velocity=nxt.metrics["velocity"])
    return jax.lax.scan(body, state, None, length=steps)[1]

  return jax.tree.map(np.asarray, go(jax.random.PRNGKey(0)))


def bang_bang(obs, task_param):
  return jnp.where(obs[:, 1:] < task_param, 1.0, -1.0)


def test_task_sets_sizes_and_names(env):
  np.testing.assert_array_equal(env.train_tasks[:, 0], [-1.5, -0.5, 0.5, 1.5])
  np.testing.assert_array_equal(env.adapt_tasks[:, 0], [-1.0, 0.0, 1.0])
  assert env.task_names == ("vel-1.5", "vel-0.5", "vel0.5", "vel1.5")
  assert (env.observation_size, env.action_size, env.dt) == (2, 1, 0.1)
  assert envs.backends("point_vel") == ("jax",) and envs.options("point_vel") == (
      "episode_length", "num_test_tasks", "num_train_tasks", "success_velocity_fraction",
      "task_interval", "task_seed")


def test_sampled_tasks_are_the_references_draw():
  """``task_interval=(0, 3)``: oyster's HalfCheetah-Vel targets (np.random.seed(1337);
  uniform(0, 3, 130): the first 100 train, the last 30 are held out); its first draw is
  0.786 and its 30 held-out targets span 0.08 - 2.98 m/s."""
  env = envs.make("point_vel", None, task_interval=(0.0, 3.0))
  draw = np.random.RandomState(1337).uniform(0.0, 3.0, size=130).astype(np.float32)
  np.testing.assert_array_equal(env.train_tasks[:, 0], draw[:100])
  np.testing.assert_array_equal(env.adapt_tasks[:, 0], draw[100:])
  np.testing.assert_allclose(env.train_tasks[0, 0], 0.786, atol=5e-4)
  np.testing.assert_allclose([env.adapt_tasks.min(), env.adapt_tasks.max()], [0.08, 2.98],
                             atol=5e-3)
  small = envs.make("point_vel", None, task_interval=(0.0, 1.5), num_train_tasks=3,
                    num_test_tasks=2, task_seed=0)
  assert small.num_tasks == 3 and len(small.adapt_tasks) == 2
  config = tiny_config(task_ids=())
  config.env.task_interval = (2.0, 1.0)
  assert validate(config) == ["env.task_interval must be () or (low, high) with low < high, "
                              "got (2.0, 1.0)"]


def test_physics_reward_and_termination_by_hand(env):
  out = run(env, bang_bang)
  x, v = out["obs"][..., 0], out["obs"][..., 1]
  a = out["action"][..., 0]
  v_next = v + 0.1 * (2.0 * a - 1.0 * v)
  x_next = x + 0.1 * v_next
  np.testing.assert_allclose(out["next_obs"][..., 1], v_next, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["next_obs"][..., 0], x_next, rtol=1e-5, atol=1e-5)
  target = env.train_tasks[:, 0]
  np.testing.assert_allclose(out["reward"], -np.abs(v_next - target) - 0.1 * a**2,
                             rtol=1e-5, atol=1e-6)
  terminated = (out["done"] > 0) & (out["truncation"] == 0)
  np.testing.assert_array_equal(terminated, np.abs(x_next) > point.TRACK_HALF_LENGTH)
  # The fast targets leave the 20 m half-track within an episode, the slow ones do not:
  # both ends of an episode occur in one batch.
  assert terminated[:, [0, 3]].any(0).all() and not terminated[:, [1, 2]].any()
  assert out["truncation"][199, [1, 2]].all()


def test_a_hand_written_controller_holds_every_target(env):
  """Feed-forward thrust for the target plus feedback: |v - p| falls below 0.02 after
  30 steps on every task; zero thrust does not."""
  def controller(obs, task_param):
    return jnp.clip(task_param * point.DAMPING / point.GAIN + 5.0 * (task_param - obs[:, 1:]),
                    -1.0, 1.0)

  out = run(env, controller, steps=100)
  error = np.abs(out["velocity"] - env.train_tasks[:, 0])
  assert error[30:].max() < 0.02
  idle = run(env, lambda obs, p: jnp.zeros_like(p), steps=100)
  assert np.abs(idle["velocity"] - env.train_tasks[:, 0])[30:].min() > 0.3
