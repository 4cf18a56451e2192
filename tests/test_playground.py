"""MuJoCo Playground's walker as the earjax family ``playground_walker_speed``: reset and
step under vmap on both MJX implementations, each task's reward equal to Playground's own
env of that speed (WalkerStand, WalkerWalk, WalkerRun) on the same states, and two
epochs of EAR-SAC through the adapter."""
import importlib.util

import chex
import jax
import jax.numpy as jnp
from mujoco_playground import registry
import numpy as np
import pytest

from benchmarks import common
from earjax import envs
from earjax.config import validate
from earjax.envs.playground import WALKER_STAND_HEIGHT, PlaygroundWalkerSpeed
from earjax.training import trainer_for
from tiny import tiny_config

FAMILY = "playground_walker_speed"
# Playground's own walkers and their move speeds (its walker.py: 0, WALK_SPEED, RUN_SPEED).
PLAYGROUND_WALKERS = {"WalkerStand": 0.0, "WalkerWalk": 1.0, "WalkerRun": 8.0}
needs_warp = pytest.mark.skipif(importlib.util.find_spec("warp") is None,
                                reason="MJX's Warp implementation is not installed")


@pytest.fixture(scope="module")
def env():
  return envs.make(FAMILY)


@pytest.fixture(scope="module")
def rollouts():
  """impl -> (env, first state, last state) of 5 envs, one per training task, after 8
  steps of the same random actions, vmapped; each compiled once for the module."""
  cache = {}

  def rollout(impl):
    if impl not in cache:
      env = envs.make(FAMILY, impl=impl)
      keys = jax.random.split(jax.random.PRNGKey(0), 5)
      actions = jax.random.uniform(jax.random.PRNGKey(1), (8, 5, env.action_size),
                                   minval=-1.0, maxval=1.0)

      @jax.jit
      def run(keys, params, actions):
        first = jax.vmap(env.reset)(keys, params)
        step = lambda s, a: (jax.vmap(env.step)(s, a), None)
        return first, jax.lax.scan(step, first, actions)[0]

      cache[impl] = (env, *run(keys, jnp.asarray(env.train_tasks), actions))
    return cache[impl]

  return rollout


def test_the_solver_budget_is_the_mjcfs_unless_given_and_validation_takes_warp():
  """The default is the walker MJCF's budget; gradient adaptation's 1 iteration reaches
  the MJX model Playground steps; ``impl=warp`` passes the config check (the family has no
  ``backend``)."""
  own = envs.make(FAMILY)
  one = envs.make(FAMILY, solver_iterations=1, ls_iterations=3)
  walker = registry.load("WalkerWalk")
  assert own.mj_model.opt.iterations == walker.mj_model.opt.iterations == (
      own.config.solver_iterations)
  assert (one.playground.mjx_model.opt.iterations, one.playground.mjx_model.opt.ls_iterations,
          one.mj_model.opt.iterations) == (1, 3, 1)
  assert one.differentiable and not envs.make(FAMILY, impl="warp").differentiable
  assert validate(tiny_config(env_name=FAMILY, **{"env.impl": "warp"})) == []
  # What the benchmarks record is read off the model Playground steps: 10 substeps of
  # 2.5 ms per 25 ms control step, and the budget given.
  options = common.env_model_options(one)
  assert (options["substeps"], options["iterations"], options["ls_iterations"]) == (10, 1, 3)
  assert options["timestep"] == pytest.approx(0.0025)


def test_the_family_is_playgrounds_walker_with_five_speeds(env):
  walker = registry.load("WalkerWalk")
  assert (env.observation_size, env.action_size) == (24, walker.action_size) == (24, 6)
  assert env.dt == walker.dt == 0.025 and env.episode_length == 1000
  assert env.task_names == ("speed0", "speed1", "speed2", "speed4", "speed8")
  assert env.adapt_task_names == ("speed3", "speed6")


@pytest.mark.parametrize("impl", ["jax", pytest.param("warp", marks=needs_warp)])
def test_reset_and_step_under_vmap_keep_each_envs_task(rollouts, impl):
  env, first, last = rollouts(impl)
  chex.assert_shape([first.obs, last.obs], (5, 24))
  chex.assert_shape([last.reward, last.done, last.metrics["velocity"]], (5,))
  np.testing.assert_array_equal(last.info["task_param"], env.train_tasks)
  assert np.isfinite(np.asarray(last.obs)).all()
  assert np.abs(np.asarray(last.obs) - np.asarray(first.obs)).max() > 0.1   # it moved
  # the observation is Playground's own: the walker's joint velocities are its last 9
  np.testing.assert_array_equal(last.obs[:, -9:], last.data.data.qvel)


@needs_warp
def test_warp_steps_the_same_physics_as_jax(rollouts):
  jax_last, warp_last = rollouts("jax")[2], rollouts("warp")[2]
  np.testing.assert_allclose(warp_last.metrics["velocity"], jax_last.metrics["velocity"],
                             atol=0.05)


def test_each_tasks_reward_is_playgrounds_own_walker_of_that_speed(env, rollouts):
  """On 64 states (a rollout's, with the torso height, uprightness and speed the rewards
  read set across their ranges), the family's reward for speed v equals Playground's
  WalkerStand/Walk/Run reward (v = 0, 1, 8), and success is full reward's two
  conditions."""
  state = jax.tree.map(lambda x: x[0], rollouts("jax")[2])
  walker = registry.load("WalkerWalk")
  torso = walker.mj_model.body("torso").id
  speed_at = walker.mj_model.sensor_adr[walker.mj_model.sensor("torso_subtreelinvel").id]
  rng = np.random.default_rng(0)
  heights = rng.uniform(0.2, 1.6, 64)
  zz = rng.uniform(-1.0, 1.0, 64)
  speeds = rng.uniform(-2.0, 12.0, 64)

  def with_reading(h, z, v):
    physics = state.data.data
    return state.data.replace(data=physics.replace(
        xpos=physics.xpos.at[torso, 2].set(h), xmat=physics.xmat.at[torso, 2, 2].set(z),
        sensordata=physics.sensordata.at[speed_at].set(v)))

  datas = jax.vmap(with_reading)(heights, zz, speeds)
  action = jnp.zeros(env.action_size)
  for name, speed in PLAYGROUND_WALKERS.items():
    own = registry.load(name)
    theirs = jax.vmap(lambda d: own._get_reward(  # pylint: disable=protected-access
        d.data, action, d.info, dict(d.metrics)))(datas)
    ours, metrics = jax.vmap(lambda d: env.reward(d, d, action, jnp.array([speed])))(datas)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_array_equal(metrics["success"], (heights >= WALKER_STAND_HEIGHT)
                                  & ((speed == 0.0) | (speeds >= speed)))
  assert np.ptp(np.asarray(theirs)) > 0.5   # the states span the rewards' range


@pytest.mark.parametrize("impl", ["jax", pytest.param("warp", marks=needs_warp)])
def test_two_epochs_of_ear_sac_through_the_adapter(impl):
  trainer = trainer_for(tiny_config(
      env_name=FAMILY, task_ids=(1, 4), envs_per_task=1, env_steps_per_epoch=4,
      grad_steps_per_epoch=2, replay_capacity=8, **{"env.impl": impl}))
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  for _ in range(2):
    state, metrics = trainer.epoch(state)
  assert [int(state.epoch), int(state.grad_steps), int(state.replay.size)] == [2, 2, 8]
  train = {k: float(v) for k, v in jax.device_get(metrics).items() if k.startswith("train/")}
  assert np.isfinite(list(train.values())).all() and 0.0 <= train["train/reward"] <= 1.0


@needs_warp
def test_a_task_kept_in_state_info_is_written_after_reset_and_every_step():
  """``task_info_key`` (a joystick env's ``command``, here a walker key Playground never
  reads): the task is in Playground's ``info`` from the reset on, and stays there."""

  class WalkerWithInfoTask(PlaygroundWalkerSpeed):
    task_info_key = "target_speed"

  env = WalkerWithInfoTask(impl="warp")   # Warp compiles in seconds; the adapter is the same
  params = jnp.asarray(env.train_tasks[:3])

  @jax.jit
  def run(keys):
    state = jax.vmap(env.reset)(keys, params)
    first = state.data.info["target_speed"]
    for _ in range(2):
      state = jax.vmap(env.step)(state, jnp.zeros((3, env.action_size)))
    return first, state.data.info["target_speed"], state.obs

  first, last, obs = run(jax.random.split(jax.random.PRNGKey(0), 3))
  np.testing.assert_array_equal(first, params)
  np.testing.assert_array_equal(last, params)
  chex.assert_shape(obs, (3, 24))
