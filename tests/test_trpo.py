"""MAML's TRPO outer step (earjax/agents/maml/trpo.py) by hand on quadratics, and one
meta-iteration with it: the step's KL within the trust region."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax.agents.maml import trpo
from earjax.config import validate
from earjax.training import trainer_for
from tiny import tiny_config

A = jnp.diag(jnp.array([2.0, 8.0]))
G = jnp.array([1.0, 1.0])
X0 = {"x": jnp.array([0.3, -0.2])}
kl = lambda p: 0.5 * (p["x"] - X0["x"]) @ A @ (p["x"] - X0["x"])


def test_the_full_step_solves_fisher_and_fills_the_trust_region():
  """loss = g.x, KL = 0.5 (x - x0)' A (x - x0): the direction is A^-1 g = (0.5, 0.125),
  g' A^-1 g = 0.625, so the full step is sqrt(2 x 0.01 / 0.625) = 0.178885 times it:
  (0.0894427, 0.0223607), its KL exactly 0.01 (up to the 1e-5 damping), accepted whole."""
  new, info = trpo.step(lambda p: G @ p["x"], kl, X0, trpo.TRPOConfig())
  np.testing.assert_allclose(X0["x"] - new["x"], [0.0894427, 0.0223607], rtol=1e-4)
  np.testing.assert_allclose([info["kl"], info["step_fraction"], info["accepted"]],
                             [0.01, 1.0, 1.0], rtol=1e-3)


def test_the_line_search_shortens_until_the_loss_improves():
  """loss = g.x + c |x - x0|^2: along the full step s (g.s = 0.1118, |s|^2 = 0.0085) a
  fraction f improves iff f < g.s / (c |s|^2); with c = 30 that is 0.4385, so the first of
  1, 0.8, 0.64, ... below it is 0.8^4 = 0.4096."""
  loss = lambda p: G @ p["x"] + 30.0 * jnp.sum(jnp.square(p["x"] - X0["x"]))
  new, info = trpo.step(loss, kl, X0, trpo.TRPOConfig())
  np.testing.assert_allclose(info["step_fraction"], 0.8 ** 4, rtol=1e-5)
  np.testing.assert_allclose(X0["x"] - new["x"], 0.8 ** 4 * np.array([0.0894427, 0.0223607]),
                             rtol=1e-3)


def test_no_acceptable_step_leaves_the_parameters():
  # c = 1e4: improving needs f < 0.0013, below 0.8^14 = 0.044 (the last candidate).
  loss = lambda p: G @ p["x"] + 1e4 * jnp.sum(jnp.square(p["x"] - X0["x"]))
  new, info = trpo.step(loss, kl, X0, trpo.TRPOConfig())
  np.testing.assert_array_equal(new["x"], X0["x"])
  assert float(info["accepted"]) == 0.0 and float(info["kl"]) == 0.0


def test_gaussian_kl_by_hand():
  # KL(N(1, 1) || N(0, 4)) = log 2 + (1 + 1) / 8 - 1/2 = 0.4431472
  np.testing.assert_allclose(trpo.gaussian_kl(jnp.array([1.0]), jnp.array([0.0]),
                                              jnp.array([0.0]), jnp.array([np.log(2.0)])),
                             np.log(2.0) + 0.25 - 0.5, rtol=1e-6)


def test_a_meta_iteration_with_trpo_stays_in_the_trust_region(programs):
  del programs
  config = tiny_config(agent="maml", seed=3, random_epochs=0,
                       **{"maml.hidden": (8,), "maml.episodes_per_task": 2,
                          "maml.outer": "trpo"})
  trainer = trainer_for(config)
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  before = jax.tree.map(np.asarray, state.learner.params)
  state, metrics = trainer.epoch(state)
  assert float(metrics["train/kl"]) <= 0.01 + 1e-6
  moved = any(np.any(a != b) for a, b in zip(jax.tree.leaves(before),
                                               jax.tree.leaves(state.learner.params)))
  assert moved == (float(metrics["train/accepted"]) == 1.0)


@pytest.mark.parametrize("key, value, line", [
    ("outer", "sgd", "maml.outer must be one of adam, trpo, got 'sgd'"),
    ("max_kl", 0.0, "maml.max_kl must be a number > 0, got 0.0"),
    ("backtrack_ratio", 1.0, "maml.backtrack_ratio must be a number in (0, 1), got 1.0"),
    ("cg_iters", 0, "maml.cg_iters must be a positive integer, got 0")])
def test_bad_trpo_values_are_refused_in_one_line(key, value, line):
  assert validate(tiny_config(agent="maml", **{f"maml.{key}": value})) == [line]
