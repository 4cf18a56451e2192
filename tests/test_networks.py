"""Networks of every agent on tiny sizes (shapes, init, LTE collection, LTE noise), and
the release's sizes built from the default config."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import agents
from earjax import networks
from earjax.agents.ear_sac import networks as ear_networks
from earjax.config import default_config
from tiny import tiny_networks

OBS, ACT, TASKS, BATCH = 5, 2, 3, 6
TASK_INDEX = jnp.array([0, 1, 2, 0, 1, 2])
ONEHOT = jax.nn.one_hot(TASK_INDEX, TASKS)
OBS_BATCH = jax.random.normal(jax.random.PRNGKey(7), (BATCH, OBS))


def tiny(agent="ear_sac", **network):
  return tiny_networks(agent, OBS, ACT, TASKS, **{"lse_dim": 4, **network})


@pytest.fixture(scope="module")
def ear():
  nets = tiny(lte_noise_std=0.3)
  return nets, nets.actor_init(jax.random.PRNGKey(0))


@pytest.mark.parametrize("agent", ("ear_sac", "ohe_sac", "mhmt_sac"))
def test_shapes_of_every_sac_agent(agent):
  nets = tiny(agent)
  actor_params = nets.actor_init(jax.random.PRNGKey(0))
  critic_params = nets.critic_init(jax.random.PRNGKey(1))
  mean, log_std = nets.actor_apply(actor_params, OBS_BATCH, ONEHOT, jax.random.PRNGKey(2))
  q = nets.critic_apply(critic_params, OBS_BATCH, jnp.zeros((BATCH, ACT)), ONEHOT)
  chex.assert_shape([mean, log_std], (BATCH, ACT))
  chex.assert_shape(q, (networks.NUM_CRITICS, BATCH))
  # Twin critics: one vmapped module, independently initialised members.
  for path, leaf in jax.tree_util.tree_leaves_with_path(critic_params):
    assert leaf.shape[0] == networks.NUM_CRITICS
    if path[-1].key == "kernel":
      assert not np.allclose(leaf[0], leaf[1])
  assert hasattr(nets, "lte_table") == (agent == "ear_sac")


def test_unknown_agent_raises():
  with pytest.raises(ValueError, match="unknown agent 'dqn'; valid agents: ear_sac"):
    agents.get("dqn")


def test_release_default_sizes():
  nets = agents.get("ear_sac").make_networks(default_config(), agents.AgentSpec(17, 6, 10))
  params = jax.eval_shape(nets.actor_init, jax.random.PRNGKey(0))
  shapes = jax.tree.map(lambda x: x.shape, params)
  assert [d["kernel"] for d in shapes["state_encoder"]["MLP_0"].values()] == [
      (17, 400), (400, 400), (400, 16)]
  assert [d["kernel"] for d in shapes["task_encoder"]["MLP_0"].values()] == [
      (10, 400), (400, 3)]
  assert [d["kernel"] for d in shapes["action_decoder"]["MLP_0"].values()] == [
      (19, 400)] + [(400, 400)] * 3 + [(400, 12)]
  critic = jax.eval_shape(nets.critic_init, jax.random.PRNGKey(0))
  assert [d["kernel"].shape for d in critic["ensemble"]["MLP_0"].values()] == [
      (2, 33, 400)] + [(2, 400, 400)] * 3 + [(2, 400, 1)]


def test_initialisers():
  params = networks.MLP((300,), 7).init(jax.random.PRNGKey(0), jnp.zeros((1, 50)))["params"]
  hidden, last = params["Dense_0"], params["Dense_1"]
  bound = 1 / np.sqrt(50)
  assert np.all(np.abs(hidden["kernel"]) <= bound)
  assert np.abs(hidden["kernel"]).max() > 0.95 * bound
  np.testing.assert_array_equal(hidden["bias"], np.float32(0.1))
  for leaf in (last["kernel"], last["bias"]):
    assert np.all(np.abs(leaf) <= 3e-3) and np.abs(leaf).max() > 1e-3


def test_lte_table_is_normalised_and_matches_call(ear):
  nets, params = ear
  table = nets.lte_table(params)
  chex.assert_shape(table, (TASKS, 3))
  np.testing.assert_allclose(np.linalg.norm(table, axis=-1), 1.0, rtol=1e-6)
  clean = nets.actor_apply(params, OBS_BATCH, ONEHOT)
  chex.assert_trees_all_close(nets.decode(params, OBS_BATCH, table[TASK_INDEX]), clean)
  variables = {"params": params, **nets.lte_variables(params)}
  chex.assert_trees_all_close(nets.decode_lte_table(variables, OBS_BATCH, TASK_INDEX),
                              clean)


def test_replaced_lte_table_changes_only_the_ltes(ear):
  nets, params = ear
  table = nets.lte_table(params)
  beta = 0.3
  interpolated = networks.l2_normalize(beta * table[0] + (1 - beta) * table[1])  # Eq. 1
  variables = {"params": params, "lte": {"table": table.at[2].set(interpolated)}}
  mean, _ = nets.decode_lte_table(variables, OBS_BATCH, jnp.full((BATCH,), 2))
  expected, _ = nets.decode(params, OBS_BATCH, jnp.broadcast_to(interpolated, (BATCH, 3)))
  np.testing.assert_allclose(mean, expected, rtol=1e-6)
  with pytest.raises(ValueError, match="lte_variables"):
    nets.decode_lte_table({"params": params}, OBS_BATCH, TASK_INDEX)


def test_gradient_reaches_task_encoder(ear):
  nets, params = ear
  grads = jax.grad(lambda p: jnp.sum(nets.actor_apply(
      p, OBS_BATCH, ONEHOT, jax.random.PRNGKey(3))[0]))(params)
  for name in ("state_encoder", "task_encoder", "action_decoder"):
    assert any(np.abs(g).max() > 0 for g in jax.tree.leaves(grads[name])), name


def test_perturb_lte_matches_algorithm_1():
  lte = networks.l2_normalize(jnp.array([[1.0, 2.0, 2.0], [0.0, 0.0, 3.0]]))
  key = jax.random.PRNGKey(4)
  noise = 0.02 * np.asarray(jax.random.normal(key, (2, 3)))
  expected = (lte + noise) / np.linalg.norm(lte + noise, axis=-1, keepdims=True)
  np.testing.assert_allclose(ear_networks.perturb_lte(lte, key, 0.02), expected, rtol=1e-6)
  np.testing.assert_allclose(ear_networks.perturb_lte(lte, key, 0.02, normalize=False),
                             lte + noise, rtol=1e-6)


def decoder_lte(nets, params, noise_key=None):
  """The LTE the action decoder receives when the actor is applied."""
  received = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, ear_networks.ActionDecoder):
      received.append(args[1])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    nets.actor_apply(params, OBS_BATCH, ONEHOT, noise_key)
  return received[0]


def test_lte_noise_reaches_the_decoder_unless_release_bug_or_disabled(ear):
  nets, params = ear
  key = jax.random.PRNGKey(5)
  clean_lte = nets.lte_table(params)[TASK_INDEX]
  noisy_lte = ear_networks.perturb_lte(clean_lte, key, 0.3)
  assert not np.allclose(clean_lte, noisy_lte)
  np.testing.assert_allclose(decoder_lte(nets, params, key), noisy_lte, rtol=1e-6)
  np.testing.assert_allclose(decoder_lte(nets, params), clean_lte, rtol=1e-6)
  for overrides in (dict(release_noise_bug=True), dict(lte_noise_std=0.0)):
    other = tiny(**overrides)  # same parameter tree, other noise configuration
    np.testing.assert_allclose(decoder_lte(other, params, key), clean_lte, rtol=1e-6)


def test_no_hypersphere_ablation_leaves_ltes_unnormalised():
  nets = tiny(normalize_lte=False, lte_noise_std=0.3)
  params = nets.actor_init(jax.random.PRNGKey(0))
  table = nets.lte_table(params)
  assert not np.allclose(np.linalg.norm(table, axis=-1), 1.0)
  key = jax.random.PRNGKey(6)
  noisy_lte = table[TASK_INDEX] + 0.3 * jax.random.normal(key, (BATCH, 3))
  chex.assert_trees_all_close(nets.actor_apply(params, OBS_BATCH, ONEHOT, key),
                              nets.decode(params, OBS_BATCH, noisy_lte), rtol=1e-6)


def test_log_std_is_clamped():
  decoder = ear_networks.ActionDecoder((4,), ACT)
  lse, lte = jnp.ones((3, 4)), jnp.ones((3, 3))
  params = decoder.init(jax.random.PRNGKey(0), lse, lte)
  for scale in (1e5, -1e5):
    big = jax.tree.map(lambda x: x * scale, params)
    _, log_std = decoder.apply(big, lse, lte)
    assert np.all((log_std >= -20.0) & (log_std <= 2.0))
    assert np.any(np.isin(np.asarray(log_std), [-20.0, 2.0]))


def test_mhmt_heads_are_task_specific():
  nets = tiny("mhmt_sac")
  params = nets.actor_init(jax.random.PRNGKey(0))
  last = params["MLP_0"]["Dense_1"]
  # Perturb the output head of task 1 only: only task-1 samples change.
  kernel = last["kernel"].reshape(8, TASKS, 2 * ACT).at[:, 1].add(1.0).reshape(8, -1)
  changed = {"MLP_0": {**params["MLP_0"], "Dense_1": {**last, "kernel": kernel}}}
  before = nets.actor_apply(params, OBS_BATCH, ONEHOT)[0]
  after = nets.actor_apply(changed, OBS_BATCH, ONEHOT)[0]
  differs = np.any(np.asarray(before != after), axis=-1)
  np.testing.assert_array_equal(differs, np.asarray(TASK_INDEX == 1))


def test_tanh_gaussian_log_prob():
  mean = jnp.array([[0.3, -1.0], [2.0, 0.0]])
  log_std = jnp.array([[-0.5, 0.2], [0.0, -1.0]])
  key = jax.random.PRNGKey(8)
  action, log_prob = networks.sample_tanh_gaussian(mean, log_std, key)
  eps = np.asarray(jax.random.normal(key, (2, 2)), np.float64)
  u = np.asarray(mean, np.float64) + np.exp(np.asarray(log_std, np.float64)) * eps
  expected = np.sum(-0.5 * eps**2 - np.asarray(log_std, np.float64)
                    - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u)**2), axis=-1)
  np.testing.assert_allclose(action, np.tanh(u), rtol=1e-6)
  np.testing.assert_allclose(log_prob, expected, rtol=1e-5)
  np.testing.assert_allclose(networks.deterministic_action(mean), np.tanh(mean), rtol=1e-6)
