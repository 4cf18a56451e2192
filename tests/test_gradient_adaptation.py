"""Gradient-based LTE adaptation (``earjax.adaptation.gradient``): the labels and starting
points by hand, the ascent on a known function of the sphere, both gradients against
what they are defined as, on Point-Vel (pure JAX, differentiable), the refusal of Warp,
and ``experiments.adapt`` with both methods on the tiny EAR run."""
import json
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import envs
from earjax import skills
from earjax.adaptation import cem
from earjax.adaptation import gradient
from earjax.adaptation import lte as lte_lib
from earjax.networks import deterministic_action, l2_normalize
from earjax.policy import frozen_policy
from tiny import REPO, tiny_networks

TRAIN = np.array([[1.0], [2.0], [3.0], [4.0]])


def test_labels_mix_the_two_nearest_training_tasks():
  labels = gradient.task_labels(TRAIN, np.array([[1.5], [2.25], [4.5], [0.0]]))
  np.testing.assert_allclose(labels, [[0.5, 0.5, 0, 0], [0, 0.75, 0.25, 0],
                                      [0, 0, 0, 1], [1, 0, 0, 0]])
  np.testing.assert_allclose(gradient.task_labels(TRAIN[:1], np.array([[7.0]])), [[1.0]])
  ltes = np.eye(4)
  np.testing.assert_allclose(gradient.nearest_ltes(TRAIN, ltes, np.array([[3.2], [0.0]])),
                             ltes[[2, 0]])


def test_an_episode_that_blows_up_is_left_out_of_its_tasks_step():
  """Task 0's second of three episodes returns NaN (a physics blow-up): its step is the
  mean of the other two episodes' values and derivatives, by hand; task 1's episodes all
  blow up, so it gets no gradient and says so (``grad_finite`` False, 0 episodes used)
  instead of a silent zero step."""
  targets = jnp.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  scale = jnp.asarray([1.0, 2.0, 3.0, 1.0, 1.0, 1.0])            # per episode (row)
  blown = jnp.asarray([False, True, False, True, True, True])

  def objective(rows, key):
    del key
    value = scale * jnp.sum(rows * jnp.repeat(targets, 3, 0), -1)
    value = jnp.where(blown, jnp.nan, value)
    return value, (value, {"velocity": 10 * value})

  start = l2_normalize(jnp.asarray([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]))
  config = gradient.GradientConfig(episodes=3, steps=1, learning_rate=0.1,
                                   max_grad_norm=1e9)
  _, history = gradient.ascend(objective, start, jax.random.PRNGKey(0), config)
  np.testing.assert_array_equal(history["episodes_used"][0], [2, 0])
  np.testing.assert_array_equal(history["grad_finite"][0], [True, False])
  np.testing.assert_allclose(history["best"][0, 0], (1.0 + 3.0) / 2 * 0.6, rtol=1e-6)
  np.testing.assert_allclose(history["best_aux"]["velocity"][0, 0], 10 * 1.2, rtol=1e-6)
  assert np.isnan(history["best"][0, 1])
  # d/du of mean_e scale_e <normalize(u), (1,0,0)> over the two kept episodes, at u = z:
  z = np.asarray(start[0])
  by_hand = 2.0 * (np.eye(3)[0] - z[0] * z)         # (I - z z^T) e_1, |u| = 1
  np.testing.assert_allclose(history["grad_norm"][0, 0], np.linalg.norm(by_hand), rtol=1e-5)
  assert np.isnan(history["grad_norm"][0, 1])


def test_the_gradient_norm_survives_squares_that_overflow_float32():
  x = jnp.asarray([[3e20, 4e20, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
  assert np.isinf(np.asarray(jnp.linalg.norm(x[:1], axis=-1))).all()   # the naive norm
  np.testing.assert_allclose(gradient.safe_norm(x), [5e20, 5.0, 0.0], rtol=1e-6)


def test_ascent_finds_the_maximiser_on_the_sphere_and_keeps_the_best_step():
  targets = cem.random_sphere(jax.random.PRNGKey(3), (4, 3))

  def objective(ltes, key):
    del key
    value = jnp.sum(ltes * targets, -1)          # <Z, target>: maximised at Z = target
    return value, (value, {"velocity": value})

  start = cem.random_sphere(jax.random.PRNGKey(5), (4, 3))
  config = gradient.GradientConfig(episodes=1, steps=60, learning_rate=0.1)
  best, history = jax.jit(lambda k: gradient.ascend(objective, start, k, config))(
      jax.random.PRNGKey(0))
  chex.assert_shape([history["best"], history["lte"], history["grad_norm"]],
                    [(60, 4), (60, 4, 3), (60, 4)])
  assert np.asarray(history["grad_finite"]).all()
  assert np.all(np.sum(np.asarray(best) * np.asarray(targets), -1) > 0.995)
  np.testing.assert_allclose(history["lte"][0], start, atol=1e-6)   # step 0 rolls out Z_0
  at = np.argmax(np.asarray(history["best"]), 0)
  np.testing.assert_allclose(best, np.asarray(history["lte"])[at, np.arange(4)], atol=1e-6)


@pytest.fixture(scope="module")
def point():
  """Point-Vel with 20-step episodes and a random tiny EAR actor."""
  env = envs.make("point_vel", episode_length=20)
  networks = tiny_networks("ear_sac", env.observation_size, env.action_size, 2)
  return env, networks, frozen_policy(networks, networks.actor_init(jax.random.PRNGKey(0)))


def test_the_rollout_gradient_is_the_derivative_of_the_mean_return(point):
  env, _, policy = point
  objective = gradient.rollout_objective(env, policy, np.array([[1.0], [-0.5]]))
  u = cem.random_sphere(jax.random.PRNGKey(7), (2, 3))
  key = jax.random.PRNGKey(1)
  mean_return = lambda u: objective(jnp.repeat(l2_normalize(u), 3, 0), key)[0].mean() * 2
  f = jax.jit(mean_return)
  grad = jax.jit(jax.grad(mean_return))(u)
  direction = cem.random_sphere(jax.random.PRNGKey(2), u.shape)
  eps = 1e-2
  finite = (f(u + eps * direction) - f(u - eps * direction)) / (2 * eps)
  assert float(jnp.sum(grad * direction)) == pytest.approx(float(finite), rel=0.05, abs=1e-3)
  assert float(jnp.abs(grad).max()) > 0


def test_a_truncated_rollout_gradient_is_the_sum_of_its_windows_derivatives(point):
  """``horizon`` h: the state enters steps 0, h, 2h, ... with its gradient stopped.  By
  hand, stepping the env in Python: the derivative of each window's rewards, its first
  state held fixed.  h = 1 is the sum over steps of d r(s_t, pi(s_t, Z)) / dZ; h = the
  episode is the whole gradient."""
  env, _, policy = point
  task_param, key = jnp.array([0.6]), jax.random.PRNGKey(3)
  lte = cem.random_sphere(jax.random.PRNGKey(7), (1, 3))

  def rolled(z, horizon):
    episode = lte_lib.rollout(env, policy, z, task_param[None], key[None], truncate=horizon)
    return episode.ret[0]

  def by_hand(z, horizon):
    reset_key, act_key = jax.random.split(key)
    state, alive, total = env.reset(reset_key, task_param), 1.0, 0.0
    for t in range(env.episode_length):
      if t % horizon == 0:
        state = jax.lax.stop_gradient(state)
      action = policy.act(z[0], state.obs, jax.random.fold_in(act_key, t), False)
      state_next = env.step(state, jnp.clip(action, -1.0, 1.0))
      total = total + alive * state_next.reward
      alive, state = alive * (1.0 - state_next.done), state_next
    return total

  for horizon in (1, 5):
    np.testing.assert_allclose(jax.grad(rolled)(lte, horizon),
                               jax.grad(by_hand)(lte, horizon), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(jax.grad(rolled)(lte, env.episode_length),
                             jax.grad(rolled)(lte, 0), rtol=1e-6)
  assert not np.allclose(jax.grad(rolled)(lte, 1), jax.grad(rolled)(lte, 0))


def test_a_gradient_too_large_for_adams_square_still_moves_the_lte():
  """A finite gradient of norm 1e25 (a 200-step MJX rollout's reached 1e27): clipped to
  ``max_grad_norm`` first, it moves the LTE at every step; unclipped, Adam's second
  moment (its square) overflows and divides the step to zero."""
  targets = cem.random_sphere(jax.random.PRNGKey(3), (2, 3))

  def objective(ltes, key):
    del key
    value = 1e25 * jnp.sum(ltes * targets, -1)
    return value, (value, {"velocity": value})

  start = cem.random_sphere(jax.random.PRNGKey(5), (2, 3))
  config = gradient.GradientConfig(episodes=1, steps=4, learning_rate=0.1)
  _, history = gradient.ascend(objective, start, jax.random.PRNGKey(0), config)
  lte = np.asarray(history["lte"])
  assert np.asarray(history["grad_finite"]).all()
  assert (np.asarray(history["grad_norm"]) > 1e24).all()
  assert (np.linalg.norm(np.diff(lte, axis=0), axis=-1) > 1e-3).all()   # every step moved
  np.testing.assert_allclose(gradient.clip_rows(jnp.array([[3e30, 4e30], [0.3, 0.4]]), 1.0),
                             [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)


def test_the_critic_gradient_reaches_the_lte_through_the_action_alone(point):
  """With a critic linear in the action, Q = <w, a> for both twins, the objective is the
  mean over alive steps of <w, tanh(mean(s_t, Z))> at the visited states held fixed."""
  env, _, policy = point
  task_params, labels = np.array([[1.0]]), np.array([[1.0, 0.0]])
  w = jnp.array([0.7])
  critic = lambda obs, action, label: jnp.stack([action @ w, action @ w])
  objective = gradient.critic_objective(env, policy, critic, task_params, labels)
  lte = cem.random_sphere(jax.random.PRNGKey(7), (1, 3))
  key = jax.random.PRNGKey(4)
  grad = jax.grad(lambda z: objective(jnp.repeat(z, 2, 0), key)[0].mean())(lte)

  def by_hand(z):
    episode = lte_lib.rollout(env, policy, jnp.repeat(lte, 2, 0), jnp.repeat(
        jnp.asarray(task_params, jnp.float32), 2, 0), jax.random.split(key, 2),
                              keep_states=True)
    obs = episode.obs[:-1]
    mean, _ = policy.decode_fn(policy.params, obs, jnp.broadcast_to(z, obs.shape[:2] + (3,)))
    q = deterministic_action(mean) @ w
    return jnp.sum(q * episode.alive) / jnp.sum(episode.alive)
  np.testing.assert_allclose(grad[0], jax.grad(by_hand)(lte[0]), rtol=1e-4, atol=1e-7)


def test_warp_is_refused_in_one_line(point):
  warp_env = envs.make("hopper_vel", impl="warp")
  with pytest.raises(ValueError) as e:
    gradient.rollout_objective(warp_env, point[2], np.array([[1.0]]))
  assert str(e.value) == ("gradient LTE adaptation differentiates through the rollout, and "
                          "hopper_vel with impl=warp has no gradients; use impl=jax")


def test_adapt_runs_both_gradients_on_the_budget_of_cem(tiny_ear_run, tmp_path):
  saved = skills.library(tiny_ear_run)
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.adapt", f"--workdir={tiny_ear_run}",
       "--tasks=1", "--methods=cem,grad_rollout,grad_critic", "--generations=2",
       "--eval_episodes=2", f"--out_dir={tmp_path}", "--nosave_skills"], cwd=REPO,
      capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "results.json") as f:
    result = json.load(f)
  budget = result["methods"]["cem"]["env_steps_per_task"]
  for method in ("grad_rollout", "grad_critic"):
    got = result["methods"][method]
    assert got["env_steps_per_task"] == budget and got["population"] == 90
    rows = got["tasks"]["vel1"]["generations"]
    assert [r["env_steps"] for r in rows] == [budget // 2, budget]
    assert all(np.isfinite(r["best_return"]) for r in rows)
    assert all(r["grad_finite"] and r["grad_norm"] > 0 for r in rows)   # Point-Vel is smooth
    assert all(r["episodes_used"] == 90 for r in rows)
    assert rows[0]["lte_distance"] == 0.0 and rows[1]["lte_distance"] > 0.0
    np.testing.assert_allclose(np.linalg.norm(np.subtract(rows[1]["lte"], rows[0]["lte"])),
                               rows[1]["lte_distance"], rtol=1e-6)
    assert np.isfinite(got["tasks"]["vel1"]["final"]["deterministic"]["return"])
  assert skills.library(tiny_ear_run).keys() == saved.keys()        # --nosave_skills
