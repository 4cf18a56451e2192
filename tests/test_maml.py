"""MAML as the spec asks: the inner-step gradient and the meta-gradient through it against
finite differences, second order differing from first order, returns and baselines by
hand, one trace per meta-iteration, exact resume, bad values refused in one line, and the
inner loop following the target on held-out Point-Vel targets (issue 36's check, fast).

Everything runs on Point-Vel (tiny.py): nothing of MJX compiles here.
"""
import chex
import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import agents
from earjax import comparison as compare
from earjax.adaptation import maml as maml_adaptation
from earjax.agents.maml import losses
from earjax.config import validate
from earjax.training import trainer_for
from tiny import (assert_resumed_run_equals_straight_one, sampled_point_vel, tiny_config,
                  train_with_production_compiler)

MAML = {"agent": "maml", "maml.hidden": (8,), "maml.episodes_per_task": 2,
        "random_epochs": 0}


def maml_config(**changes):
  return tiny_config(**{**MAML, **changes})


def test_discounted_returns_and_advantages_by_hand():
  # rewards 1, 2, 3 then the episode ends (alive 0): G = [1 + .5 * 2 + .25 * 3, 2 + 1.5, 3, 0]
  reward = jnp.array([[1.0, 2.0, 3.0, 9.0]])
  alive = jnp.array([[1.0, 1.0, 1.0, 0.0]])
  np.testing.assert_allclose(losses.discounted_returns(reward, alive, 0.5),
                             [[2.75, 3.5, 3.0, 0.0]])
  episodes = {"obs": jnp.zeros((1, 4, 2)), "action": jnp.zeros((1, 4, 1)),
              "reward": reward, "alive": alive}
  adv = losses.advantages(episodes, gamma=0.5, gae_lambda=1.0)
  assert float(adv[0, 3]) == 0.0
  np.testing.assert_allclose(float((adv * alive).sum()), 0.0, atol=1e-5)   # normalised
  np.testing.assert_allclose(float((jnp.square(adv) * alive).sum() / 3), 1.0, rtol=1e-4)


def test_the_baseline_is_the_ridge_fit_and_falls_back_to_the_first_finite_solve():
  obs = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 1))
  returns = jax.random.normal(jax.random.PRNGKey(1), (2, 5))
  alive = jnp.ones((2, 5)).at[1, 4].set(0.0)
  x = np.asarray(losses.baseline_features(obs), np.float64)      # [E, T, 6]
  rows = x[np.asarray(alive) > 0]
  w = np.linalg.solve(rows.T @ rows + 1e-5 * np.eye(6),
                      rows.T @ np.asarray(returns, np.float64)[np.asarray(alive) > 0])
  np.testing.assert_allclose(losses.linear_baseline(obs, returns, alive),
                             (x @ w) * np.asarray(alive), atol=2e-3)
  nan = float("nan")
  np.testing.assert_array_equal(
      losses.first_finite(jnp.array([[nan, 1.0], [2.0, jnp.inf], [3.0, 4.0], [5.0, 6.0]])),
      [3.0, 4.0])
  np.testing.assert_array_equal(losses.first_finite(jnp.array([[nan, 1.0], [nan, 2.0]])),
                                [nan, 2.0])


def _task_data(key, agent, episodes=3, steps=6):
  """Episodes of one task drawn by the policy, as the losses take them."""
  k1, k2, k3 = jax.random.split(key, 3)
  params = agent.init(k1).params
  obs = jax.random.normal(k2, (episodes, steps, 2))
  action = agent.networks.sample(params, obs, k3)
  reward = -jnp.abs(obs[..., 1] - 1.0) - 0.1 * jnp.square(action[..., 0])
  data = {"obs": obs, "action": action, "reward": reward,
          "alive": jnp.ones((episodes, steps))}
  return params, data, losses.advantages(data, 0.99, 1.0)


def _directional(f, params, direction, eps=1e-2):
  flat, unravel = ravel_pytree(params)
  return (f(unravel(flat + eps * direction)) - f(unravel(flat - eps * direction))) / (2 * eps)


def test_inner_and_meta_gradients_match_finite_differences_and_first_order_differs():
  agent = agents.get("maml").make_agent(maml_config(), agents.AgentSpec(2, 1, 2))
  net = agent.networks
  params, inner, inner_adv = _task_data(jax.random.PRNGKey(0), agent)
  _, outer, outer_adv = _task_data(jax.random.PRNGKey(1), agent)
  direction = jax.random.normal(jax.random.PRNGKey(2), ravel_pytree(params)[0].shape)
  direction = direction / jnp.linalg.norm(direction)

  inner_loss = lambda p: losses.reinforce_loss(net, p, inner, inner_adv)
  grad = ravel_pytree(jax.jit(jax.grad(inner_loss))(params))[0]
  np.testing.assert_allclose(float(grad @ direction),
                             float(_directional(jax.jit(inner_loss), params, direction)),
                             rtol=2e-2)

  lr = 1.0   # a large inner step, so the second-order term is far from negligible
  old = net.log_prob(losses.inner_step(net, params, inner, inner_adv, lr, False),
                     outer["obs"], outer["action"])

  def meta_loss(p, first_order):
    adapted = losses.inner_step(net, p, inner, inner_adv, lr, first_order)
    return losses.surrogate_loss(net, adapted, outer, outer_adv, old)

  meta_grad = jax.jit(jax.grad(meta_loss), static_argnums=1)
  second = float(ravel_pytree(meta_grad(params, False))[0] @ direction)
  first = float(ravel_pytree(meta_grad(params, True))[0] @ direction)
  numeric = float(_directional(jax.jit(lambda p: meta_loss(p, False)), params, direction))
  np.testing.assert_allclose(second, numeric, rtol=1e-2)
  assert abs(first - numeric) > 5 * abs(second - numeric) + 0.02 * abs(numeric)


def test_the_meta_iteration_is_traced_once_and_counts_env_steps(programs):
  del programs
  trainer = trainer_for(maml_config(seed=5))
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  for _ in range(3):
    state, metrics = trainer.epoch(state)
  assert trainer.epoch_traces == 1
  # 2 tasks x 2 episodes x (1 inner + 1 outer) x 200 steps per meta-iteration
  assert int(state.env_steps) == 3 * 2 * 2 * 2 * 200 and int(state.grad_steps) == 3
  assert np.isfinite(float(metrics["train/meta_loss"]))
  chex.assert_shape(state.replay.data["reward"], (2, 1))   # on-policy: no replay


def test_a_meta_batch_draws_that_many_tasks_per_iteration(programs):
  """``maml.meta_batch`` 3 of the run's 2 tasks (with replacement): the meta-iteration's
  episodes are 3 x 2 x 2 x 200 steps, and the update sees 3 task rows (traced here: the
  ``programs`` fixture's program cache is empty)."""
  del programs
  seen = []
  trainer = trainer_for(maml_config(seed=5, **{"maml.meta_batch": 3}))
  update = trainer.agent.update
  object.__setattr__(trainer.agent, "update", lambda state, episodes, task_params, key: (
      seen.append(task_params.shape), update(state, episodes, task_params, key))[1])
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  state, _ = trainer.epoch(state)
  assert seen == [(3, 1)] and int(state.env_steps) == 3 * 2 * 2 * 200
  assert trainer.env_steps_per_epoch == 3 * 2 * 2 * 200


@pytest.mark.parametrize("key, value, line", [
    ("meta_batch", -1, "maml.meta_batch must be an integer >= 0, got -1"),
    ("inner_lr", 0.0, "maml.inner_lr must be a number > 0, got 0.0"),
    ("gae_lambda", 1.5, "maml.gae_lambda must be a number in [0, 1], got 1.5"),
    ("inner_steps", 0, "maml.inner_steps must be a positive integer, got 0"),
    ("hidden", (0,), "maml.hidden must be a non-empty list of positive integers, got (0,)")])
def test_bad_maml_values_are_refused_in_one_line(key, value, line):
  assert validate(maml_config(**{f"maml.{key}": value})) == [line]


def test_a_resumed_run_equals_a_straight_one_bitwise(tmp_path):
  assert_resumed_run_equals_straight_one(tmp_path, **MAML, seed=6)


def test_the_inner_loop_follows_the_target_on_held_out_targets(tmp_path):
  """Issue 36's check, fast: meta-trained for 50 iterations on 16 sampled Point-Vel
  targets (``tiny.sampled_point_vel``), three inner steps of 10 episodes on each of the 5
  held-out targets (3 seeds) move the policy, which ignored the target (slope 0), to
  velocities whose slope against the target is >= 0.7, every target improved
  (``comparison.tracking``; measured 2026-12-07: slope 2.30, every target improved)."""
  workdir = str(tmp_path)
  config = sampled_point_vel("maml", epochs=50)
  config.maml.hidden = (32, 32)
  config.maml.inner_lr = 0.5
  config.maml.episodes_per_task = 10
  train_with_production_compiler(config, workdir)
  env = maml_adaptation.load(workdir).env
  record = compare.run_method("maml", workdir, env.adapt_tasks, env.adapt_task_names,
                              seeds=3, key=jax.random.PRNGKey(0), budget=6000,
                              eval_episodes=3)
  out = compare.tracking(record)
  assert abs(out["slope_before"]) < 0.1 and out["holds"], out
  run = maml_adaptation.load(workdir)
  adapted = maml_adaptation.adapt(run, np.repeat(env.adapt_tasks[:2], 2, axis=0),
                                  jax.random.PRNGKey(0), steps=3, episodes_per_step=10,
                                  eval_episodes=2)
  chex.assert_shape(adapted["eval_return"], (4, 4))
  chex.assert_shape(adapted["sampled_return"], (4, 3))
  np.testing.assert_array_equal(adapted["env_steps"], [0, 2000, 4000, 6000])
  with pytest.raises(ValueError, match="less than one inner step"):
    compare.run_method("maml", workdir, np.array([[1.0]]), ("vel1",), seeds=1,
                       key=jax.random.PRNGKey(0), budget=1999, eval_episodes=1)


def test_a_run_of_another_agent_is_refused_in_one_line(tiny_ear_run):
  with pytest.raises(ValueError, match="MAML.s adaptation needs a run of agent maml; .* trained 'ear_sac'"):
    maml_adaptation.load(tiny_ear_run)
