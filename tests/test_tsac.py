"""TSAC (``earjax.agents.tsac``, T1-T7 of its docstring) on the tiny family: the action
correction, the dual step by hand, the update's multiplier, the sparse reward in the
replay, bad config values."""
import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import agents
from earjax import replay
from earjax.agents import tsac
from earjax.agents.tsac import losses as tsac_losses
from earjax.config import validate
from earjax.training import trainer_for
from experiments.configs import presets
from tiny import assert_resumed_run_equals_straight_one, tiny_config

OBS, ACT, TASKS, BATCH = 5, 2, 3, 4


def tiny_tsac(**tsac_keys):
  config = tiny_config(agent="tsac", **{f"tsac.{k}": v for k, v in tsac_keys.items()})
  return config, agents.get("tsac").make_agent(config, agents.AgentSpec(OBS, ACT, TASKS))


def test_the_final_action_is_the_shared_action_plus_the_scaled_clipped_correction():
  """T2: a = clip(a_sp + beta tanh(mean_acp(s, k, a_sp)), -1, 1) (deterministic), with
  beta large enough that the clip acts."""
  _, agent = tiny_tsac(correction_scale=2.0)
  nets = agent.networks
  params = tsac.learner.policy_params(agent.init(jax.random.PRNGKey(0)))
  obs = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (BATCH, OBS))
  task = jnp.array([0, 1, 2, 1])
  onehot = jax.nn.one_hot(task, TASKS)
  a_sp = np.tanh(nets.sp_apply(params["sp"], obs, onehot)[0])
  correction = np.tanh(nets.acp_apply(params["acp"], obs, onehot, a_sp)[0])
  want = np.clip(a_sp + 2.0 * correction, -1.0, 1.0)
  got = agent.act(params, obs, task, None, deterministic=True)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  assert not np.allclose(got, a_sp)       # the correction changes the action
  chex.assert_shape(got, (BATCH, ACT))
  sampled = agent.act(params, obs, task, jax.random.PRNGKey(2), deterministic=False)
  assert np.all(np.abs(sampled) <= 1.0)


@pytest.mark.parametrize("lagrange, sparse_return, want", [
    (1.0, 30.0, 1.2),    # budget 50 missed by 20: lambda rises by eta * 20
    (1.0, 70.0, 0.8),    # budget exceeded by 20: lambda falls
    (0.1, 70.0, 0.0),    # ... but never below 0
    (0.0, 50.0, 0.0)])   # met exactly: unchanged
def test_dual_step_by_hand(lagrange, sparse_return, want):
  got = tsac_losses.dual_step(jnp.float32(lagrange), jnp.float32(sparse_return),
                              budget=50.0, lagrange_lr=0.01)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_bounded_multiplier_stops_at_its_bound_and_the_budgets_by_hand():
  # An unreachable budget (1,000 missed by 990 at every step) with eta 0.01: +9.9 a step
  # without a bound, clipped at lambda_max = 20 with one.
  lam = jnp.float32(1.0)
  for _ in range(5):
    lam = tsac_losses.dual_step(lam, jnp.float32(10.0), jnp.float32(1000.0), 0.01, 20.0)
  assert float(lam) == 20.0
  assert float(tsac_losses.dual_step(jnp.float32(1.0), jnp.float32(10.0),
                                     jnp.float32(1000.0), 0.01)) == pytest.approx(10.9)
  # b: 0.5 of 1 / (1 - 0.99) = 50; or 1.2 x the SP's own 30 = 36.
  assert float(tsac_losses.budget("max", 0.5, 0.99, jnp.float32(30.0))) == pytest.approx(50.0)
  assert float(tsac_losses.budget("shared_policy", 1.2, 0.99,
                                  jnp.float32(30.0))) == pytest.approx(36.0)


def one_update(agent):
  """One jitted update from a fresh state on a fixed random batch (two successes)."""
  state = agent.init(jax.random.PRNGKey(0))
  keys = jax.random.split(jax.random.PRNGKey(1), 6)
  batch = {"obs": jax.random.normal(keys[0], (BATCH, OBS)),
           "action": jax.random.uniform(keys[1], (BATCH, ACT), minval=-1, maxval=1),
           "reward": jax.random.normal(keys[2], (BATCH,)),
           "next_obs": jax.random.normal(keys[3], (BATCH, OBS)),
           "discount": jnp.ones(BATCH), "success": jnp.array([0.0, 1.0, 0.0, 1.0]),
           "task": jnp.array([0, 1, 2, 0])}
  return jax.jit(agent.update)(state, batch, keys[4])


@pytest.mark.parametrize("budget_fraction", [1.0, 0.0])
def test_the_update_moves_lambda_by_the_budget_gap(budget_fraction):
  """T7 inside the update: lambda' = max(0, lambda + eta (b - J_s)), J_s the step's own
  estimate (``sparse_return``), b = budget_fraction / (1 - gamma): a budget of every step
  succeeding is missed (lambda rises by about eta b); a zero budget is met."""
  config, agent = tiny_tsac(budget_fraction=budget_fraction, lagrange_init=0.5,
                            lagrange_lr=1e-3)
  new, metrics = one_update(agent)
  budget = budget_fraction / (1.0 - config.gamma)
  want = max(0.0, 0.5 + 1e-3 * (budget - float(metrics["sparse_return"])))
  np.testing.assert_allclose(float(new.lagrange), want, rtol=1e-6)
  if budget_fraction == 1.0:
    assert float(new.lagrange) > 0.5 + 0.09
  assert all(bool(v) for v in metrics["finite"].values())


def test_the_shared_policy_budget_is_a_multiple_of_the_sps_own_sparse_value():
  """b = budget_fraction x E[min Q_s(s, a_sp)], the SP's action uncorrected: at 1.0 the
  budget is what the SP already earns, so lambda moves by eta (b - J_s) with both read
  from the step's own estimates, and stays inside [0, lagrange_max]."""
  config, agent = tiny_tsac(budget_reference="shared_policy", budget_fraction=1.5,
                            lagrange_init=0.5, lagrange_lr=1e-3, lagrange_max=0.6)
  new, metrics = one_update(agent)
  np.testing.assert_allclose(float(metrics["budget"]),
                             1.5 * float(metrics["sp_sparse_return"]), rtol=1e-6)
  want = np.clip(0.5 + 1e-3 * (float(metrics["budget"]) - float(metrics["sparse_return"])),
                 0.0, 0.6)
  np.testing.assert_allclose(float(new.lagrange), want, rtol=1e-6)
  assert float(metrics["sp_sparse_return"]) != float(metrics["sparse_return"])


def test_the_replay_keeps_the_sparse_reward_the_agent_asks_for():
  _, agent = tiny_tsac()
  assert agent.data.extra_fields == ("success",)
  trainer = trainer_for(tiny_config(agent="tsac"))   # shared with test_training's job
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  state, _ = trainer.epoch(state)
  stored = np.asarray(state.replay.data["success"])[:, :int(state.replay.size)]
  assert set(np.unique(stored)) <= {0.0, 1.0}


def test_replay_extra_fields_are_stored_and_sampled():
  state = replay.init(2, 4, 3, 1, extra_fields=("success",))
  transitions = {"obs": jnp.zeros((2, 2, 3)), "action": jnp.zeros((2, 2, 1)),
                 "reward": jnp.zeros((2, 2)), "next_obs": jnp.zeros((2, 2, 3)),
                 "discount": jnp.ones((2, 2)), "success": jnp.array([[1.0, 1.0], [0.0, 0.0]])}
  state = replay.insert(state, transitions)
  batch = replay.sample(state, jax.random.PRNGKey(0), 3)
  np.testing.assert_array_equal(batch["success"], [[1.0] * 3, [0.0] * 3])
  with pytest.raises(ValueError, match="exactly the fields"):
    replay.insert(state, {k: v for k, v in transitions.items() if k != "success"})
  with pytest.raises(ValueError, match="clash"):
    replay.init(2, 4, 3, 1, extra_fields=("reward",))


@pytest.mark.parametrize("key, value, line", [
    ("correction_scale", 0.0, "tsac.correction_scale must be a number in (0, 2], got 0.0"),
    ("budget_fraction", 1.5, "tsac.budget_fraction must be a number in [0, 1], got 1.5"),
    ("lagrange_lr", -1.0, "tsac.lagrange_lr must be a number > 0, got -1.0"),
    ("lagrange_init", -0.1, "tsac.lagrange_init must be a number >= 0, got -0.1"),
    ("lagrange_max", 0.0, "tsac.lagrange_max must be a number > 0, got 0.0"),
    ("lagrange_init", 2e6, "tsac.lagrange_init (2000000.0) exceeds tsac.lagrange_max "
                           "(1000000.0)"),
    ("budget_reference", "sp", "tsac.budget_reference must be one of max, shared_policy, "
                               "got 'sp'")])
def test_bad_tsac_values_are_refused_in_one_line(key, value, line):
  assert line in validate(tiny_config(agent="tsac", **{f"tsac.{key}": value}))


def test_the_shared_policy_budget_may_ask_more_than_the_sp_has_but_not_past_twice():
  ok = tiny_config(agent="tsac", **{"tsac.budget_reference": "shared_policy",
                                    "tsac.budget_fraction": 1.5})
  assert validate(ok) == []
  bad = tiny_config(agent="tsac", **{"tsac.budget_reference": "shared_policy",
                                     "tsac.budget_fraction": 2.5})
  assert "tsac.budget_fraction must be a number in [0, 2], got 2.5" in validate(bad)


def test_a_resumed_run_equals_a_straight_one_bitwise_and_the_epoch_is_traced_once(
    tmp_path, programs):
  del programs   # an empty program cache: this process traces
  assert_resumed_run_equals_straight_one(tmp_path, agent="tsac", seed=3)
  # Three jobs (2 epochs, resumed to 4, a straight 4) differ in host-only keys: one trace
  # (seed 3: a Trainer no other test of this process shares).
  assert trainer_for(tiny_config(agent="tsac", seed=3)).epoch_traces == 1


FAMILY_CONFIGS = ("halfcheetah_vel", "ant_dir", "hopper_vel", "walker_vel",
                  "halfcheetah_run_jump", "point_vel", "metaworld_mt10")


@pytest.mark.parametrize("family", FAMILY_CONFIGS)
def test_every_preset_of_every_family_takes_every_agent(family):
  """``--config=experiments/configs/<family>.py:<preset> --config.agent=<agent>`` is a
  valid job for every registered agent (TSAC included) and every preset of the family;
  an unknown preset is refused in one line."""
  module = importlib.import_module(f"experiments.configs.{family}")
  for preset in getattr(module, "PRESETS", presets.PRESETS):
    for agent in agents.names():
      config = module.get_config(preset)
      config.agent = agent
      assert validate(config) == [], (family, preset, agent)
  with pytest.raises(ValueError, match="unknown preset 'gpu'; valid presets: paper, cpu"):
    module.get_config("gpu")
