"""The MJX multi-task suite against the EAR reference, HalfCheetah families and the
spring backend (legged families: test_envs_legged.py): rewards recomputed by hand from
the simulator state, mixed-task batches, auto-reset, fresh episodes stepped like
MuJoCo's C ``mj_step``; task sets and bad input.

Each family and backend compiles exactly one function (mjx_rollouts.rollout), used by
one test (the suite distributes tests over two workers, so a family's checks stay in one
test to compile its rollout once).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import envs
from mjx_rollouts import (FAMILIES, check_fresh_episodes_step_like_mujoco, check_reward,
                          check_rollout_and_auto_reset, rollout)

CHEETAHS = ("halfcheetah_vel", "halfcheetah_run_jump")


@pytest.mark.parametrize("name", CHEETAHS)
def test_reward_auto_reset_and_no_termination_of_the_reference(name):
  """The reward of every task of a mixed batch, finite rollouts whose auto-reset keeps
  each env's task, fresh episodes stepped like MuJoCo, and HalfCheetah never terminating
  (only the time limit ends it)."""
  check_reward(name)
  check_rollout_and_auto_reset(name)
  check_fresh_episodes_step_like_mujoco(name)
  _, out = rollout(name)
  assert (out["done"] == out["truncation"]).all(), "HalfCheetah never terminates"


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
  sampled = ("num_test_tasks", "num_train_tasks")
  assert envs.options("hopper_vel") == ("backend", "episode_length", "impl",
                                        "ls_iterations", *sampled, "solver_iterations",
                                        "success_velocity_fraction", "task_interval",
                                        "task_seed", "unroll_substeps")
  assert envs.options("point_vel") == ("episode_length", *sampled,
                                       "success_velocity_fraction", "task_interval",
                                       "task_seed")
  assert envs.options("hopper_skills") == ("backend", "episode_length", "impl",
                                           "ls_iterations", "solver_iterations",
                                           "unroll_substeps")
  assert sizes == {"halfcheetah_vel": (17, 6), "ant_dir": (27, 8), "hopper_vel": (11, 3),
                   "walker_vel": (17, 6), "halfcheetah_run_jump": (17, 6)}


def test_spring_backend_keeps_the_control_step_the_observation_and_the_reward():
  mjx_env, spring = envs.make("halfcheetah_vel"), envs.make("halfcheetah_vel", backend="spring")
  assert spring.dt == pytest.approx(mjx_env.dt) and spring.backend == "spring"
  assert spring.observation_size == mjx_env.observation_size == 17
  check_reward("halfcheetah_vel", "spring")
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
  with pytest.raises(ValueError, match="^env option solver_iterations of hopper_vel must be "
                                       "of type int, got 2.5$"):
    envs.make("hopper_vel", solver_iterations=2.5)


def test_a_family_takes_its_env_section_and_declares_its_settings_once():
  """``envs.make(name, config)``: the training config's ``env`` section, overrides on
  top; the family's ``default_config`` is the one declaration of its settings."""
  config = envs.default_config("hopper_vel")
  assert dict(config) == {"episode_length": 200, "solver_iterations": 4,
                          "ls_iterations": 8, "unroll_substeps": True, "impl": "jax",
                          "backend": "mjx", "success_velocity_fraction": 0.1,
                          "task_interval": (), "num_train_tasks": 100,
                          "num_test_tasks": 30, "task_seed": 1337}
  assert envs.default_config("ant_dir").success_heading_deg == 15.0
  assert envs.default_config("halfcheetah_run_jump").jump_success_height == 0.4
  config.solver_iterations = 2
  env = envs.make("hopper_vel", config, ls_iterations=3, unroll_substeps=False)
  assert (env.mj_model.opt.iterations, env.mj_model.opt.ls_iterations) == (2, 3)
  assert env.config.solver_iterations == 2 and env.config.episode_length == 200
  assert envs.make("point_vel", {"episode_length": 7}).episode_length == 7
  assert envs.default_config("mountaincar_continuous").episode_length == 999


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
