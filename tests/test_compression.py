"""Policy-space compression (earjax.compression) as the issue specifies it: the behavioural
loss by hand, the hypernetwork's parameter tree, PGPE through evosax on a known objective,
the novelty score by hand, the dataset on disk, a decoded policy equal to the original,
the skills families' rewards by hand, MountainCar against gymnasium, bad input (the jobs
and the CLI: test_compression_jobs.py, which the suite runs on its other worker)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import compression
from earjax import envs
from earjax.compression import autoencoder as ae_lib
from earjax.compression import search, store
from earjax.compression.dataset import (NoveltySearch, NoveltySearchConfig, PolicyDataset,
                                        knn_novelty)
from earjax.compression.policies import PolicySpace
from experiments.configs import compression as compression_config
from tiny_policies import ae_config, small_dataset


def tiny_config():
  return compression_config.get_config("tiny")


def linear_theta(space, w, b):
  """θ of a 1 -> 1 linear-tanh policy (ravel order: bias, then kernel)."""
  theta = jnp.array([b, w], jnp.float32)
  np.testing.assert_allclose(space.params(theta)["params"]["Dense_0"]["kernel"], [[w]])
  return theta


def test_behaviour_loss_is_zero_for_a_perfect_decoder_and_positive_otherwise():
  space = PolicySpace(1, 1, hidden=())
  states = jnp.array([[-1.0], [0.0], [2.0]])
  theta = linear_theta(space, 0.0, 0.0)                # acts 0 everywhere
  shifted = linear_theta(space, 0.0, np.arctanh(0.5))  # acts 0.5 everywhere
  sloped = linear_theta(space, 1.0, 0.0)               # acts tanh(s)
  assert ae_lib.behaviour_loss(space, theta[None], theta[None], states) == 0.0
  np.testing.assert_allclose(ae_lib.behaviour_loss(space, theta[None], shifted[None], states),
                             0.25, rtol=1e-6)
  want = np.mean(np.tanh([-1.0, 0.0, 2.0])**2)
  np.testing.assert_allclose(ae_lib.behaviour_loss(space, theta[None], sloped[None], states),
                             want, rtol=1e-6)


@pytest.mark.parametrize("encoder_input", ae_lib.ENCODER_INPUTS)
def test_the_hypernetwork_outputs_the_policy_parameter_tree(encoder_input):
  dataset = small_dataset()
  space = dataset.space()
  compressor, state = ae_lib.train(dataset, ae_config(encoder_input=encoder_input),
                                   jax.random.PRNGKey(0))
  inputs = ae_lib.encoder_inputs(dataset, encoder_input)
  z = compressor.encode(state.params, jnp.asarray(inputs))
  chex.assert_shape(z, (dataset.size, 2))
  thetas = compressor.decode(state.params, z)
  chex.assert_shape(thetas, (dataset.size, space.num_params))
  example = space.module.init(jax.random.PRNGKey(1), jnp.zeros(3))
  chex.assert_trees_all_equal_shapes(space.params(thetas[0]), example)
  chex.assert_shape(space.act(thetas[0], jnp.zeros((7, 3))), (7, 2))


def test_training_lowers_the_behavioural_loss():
  dataset = small_dataset(n=32)
  losses = []
  ae_lib.train(dataset, ae_config(epochs=60, batch_policies=8),
               jax.random.PRNGKey(0), lambda epoch, loss: losses.append(loss))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_pgpe_through_evosax_improves_a_known_objective():
  target = jnp.array([1.0, -2.0, 0.5])
  score = lambda population, key: -jnp.sum((population - target)**2, -1)
  config = search.PGPEConfig(population=16, generations=60, center_lr=0.15,
                             center_lr_end=0.2, std_init=0.5, std_lr=0.1,
                             std_max_change=0.2, fitness_shaping="centered_rank")
  best, best_score, history = jax.jit(
      # A dimension without spread (scale 0) explores at std_init: no NaN from evosax.
      lambda key: search.pgpe_search(score, jnp.zeros(3), jnp.array([1.0, 0.0, 1.0]),
                                     config, key))(jax.random.PRNGKey(0))
  chex.assert_shape(history["best"], (60,))
  assert history["best"][0] < -2.0 < -0.1 < float(best_score)
  np.testing.assert_allclose(best_score, score(best[None], None)[0], rtol=1e-5)
  assert float(jnp.sum((history["center"] - target)**2)) < 0.1
  assert (np.diff(history["best"]) >= 0).all()


def test_novelty_is_the_mean_distance_to_the_k_nearest_by_hand():
  points = jnp.array([[0.0], [1.0], [3.0]])
  valid = jnp.ones(3, bool)
  np.testing.assert_allclose(knn_novelty(points, points, valid, 1, self_offset=0), [1, 1, 2])
  np.testing.assert_allclose(knn_novelty(points, points, valid, 2, self_offset=0),
                             [2.0, 1.5, 2.5])
  np.testing.assert_allclose(knn_novelty(points, points, valid, 2, self_offset=0, chunk=2),
                             [2.0, 1.5, 2.5])
  # Invalid reference rows are never neighbours; without self_offset a query is its own.
  np.testing.assert_allclose(knn_novelty(points[:1], points, jnp.array([True, False, True]),
                                         2), [1.5])


def tiny_search():
  config = tiny_config()
  env = envs.make(config.env_name)
  space = PolicySpace(env.observation_size, env.action_size, config.policy_hidden)
  return env, space, NoveltySearch(env, space, NoveltySearchConfig(**config.dataset))


def test_novelty_search_fills_the_dataset_and_it_round_trips_through_disk(tmp_path):
  env, space, searcher = tiny_search()
  c = searcher.config
  dataset = searcher.build(jax.random.PRNGKey(0))
  assert dataset.size == c.size and dataset.params.shape == (c.size, space.num_params)
  np.testing.assert_array_equal(np.bincount(dataset.generation), [c.generation_size] *
                                c.generations)
  assert np.all(np.abs(dataset.params).sum(1) > 0), "every row written"
  # Descriptors are the policies' actions on the probe states.
  np.testing.assert_allclose(
      dataset.descriptors,
      np.asarray(space.actions_on(dataset.params, dataset.probe_states)).reshape(c.size, -1),
      rtol=1e-5, atol=1e-6)
  assert dataset.returns.shape == (c.size, env.num_tasks)
  assert dataset.states.shape == (c.size * c.states_per_policy, env.observation_size)
  path = str(tmp_path / "d" / "dataset.npz")
  dataset.save(path)
  loaded = PolicyDataset.load(path)
  assert (loaded.env_name, loaded.hidden, loaded.task_names) == (
      env.name, space.hidden, env.task_names)
  for name in PolicyDataset.ARRAYS:
    np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))


def test_a_one_policy_dataset_decodes_to_the_original_policy(tmp_path):
  dataset = small_dataset(n=1)
  compressor, state = ae_lib.train(dataset, ae_config(batch_policies=1, epochs=3),
                                   jax.random.PRNGKey(0))
  dataset.save(store.dataset_path(str(tmp_path)))
  store.save_autoencoder(str(tmp_path), compressor, state.params, dataset)
  loaded = compression.load(str(tmp_path))
  assert loaded.latent_dim == 2 and loaded.codes.shape == (1, 2)
  policy = loaded.policy(loaded.codes[0])
  states = jnp.asarray(dataset.states)
  np.testing.assert_allclose(policy(states), dataset.space().act(dataset.params[0], states),
                             atol=1e-5)


def test_skills_rewards_by_hand():
  cheetah = envs.make("halfcheetah_skills")
  assert cheetah.task_names == ("forward", "backward", "frontflip", "backflip")
  before = cheetah._data0
  after = before.replace(qpos=before.qpos.at[0].add(0.1).at[2].add(0.05))  # v 2, spin 1
  action = jnp.zeros(cheetah.action_size)
  rewards = [cheetah.reward(before, after, action, p) for p in cheetah.train_tasks]
  np.testing.assert_allclose([r for r, _ in rewards], [2.0, -2.0, 1.0, -1.0], rtol=1e-5)
  np.testing.assert_array_equal([m["success"] for _, m in rewards], [1.0, 0.0, 0.0, 0.0])
  hopper = envs.make("hopper_skills")
  assert hopper.task_names == ("forward", "backward", "jump")
  before = hopper._data0
  after = before.replace(qpos=before.qpos.at[1].add(0.2))                   # 0.2 m up
  jump, metrics = hopper.reward(before, after, jnp.zeros(hopper.action_size),
                                jnp.array([0.0, 10.0]))
  np.testing.assert_allclose(jump, 10 * 0.2 + 1.0, rtol=1e-5)
  assert metrics["success"] == 1.0


@pytest.mark.parametrize("make, message", [
    (lambda: ae_config(latent_dim=0), "latent_dim must be a positive integer"),
    (lambda: PolicyDataset(**{**vars(small_dataset()), "params": np.zeros((0, 3))}),
     "the policy dataset is empty"),
    (lambda: compression.load("/nonexistent/compress"), "no compression run at"),
    (lambda: search.PGPEConfig(3, 1, 0.1, 0.2, 0.1, 0.1, 0.2, "centered_rank"),
     "population must be an even integer"),
])
def test_bad_input_is_refused_in_one_line(make, message):
  with pytest.raises((ValueError, FileNotFoundError)) as info:
    make()
  assert message in str(info.value) and "\n" not in str(info.value)


def test_mountain_car_steps_like_gymnasiums():
  gymnasium = pytest.importorskip("gymnasium")
  env = envs.make("mountaincar_continuous")
  reference = gymnasium.make("MountainCarContinuous-v0").unwrapped
  reference.reset(seed=0)
  rng = np.random.default_rng(0)
  state = env.reset(jax.random.PRNGKey(0), jnp.asarray(env.train_tasks[0]))
  reference.state = np.asarray(state.obs, np.float64)
  step = jax.jit(env.step)
  ended = False
  for t in range(400):
    # Push with the velocity (a policy that reaches the goal), noisy, sometimes past the box.
    action = np.array([np.sign(float(state.obs[1]) or 1.0) * 1.2 + 0.3 * rng.normal()],
                      np.float32)
    obs, reward, terminated, _, _ = reference.step(action)
    state = step(state, jnp.asarray(action))
    np.testing.assert_allclose(state.obs, obs, atol=1e-5, err_msg=f"step {t}")
    np.testing.assert_allclose(state.reward, reward, rtol=1e-5, atol=1e-5)
    assert bool(state.done) == terminated
    if terminated:
      ended = True
      break
  assert ended and state.metrics["success"] == 1.0 and state.reward > 99


def test_the_whitening_projection_gives_unit_variance_principal_coordinates():
  # Rows spread along two known orthogonal directions (std 3 and 1) of R^5, plus none.
  rng = np.random.default_rng(0)
  directions = np.linalg.qr(rng.normal(size=(5, 2)))[0].T        # orthonormal rows
  centred = rng.normal(size=(40, 2))
  centred -= centred.mean(0)
  # Orthonormal centred columns: the rows' covariance along the two is exactly diag(9, 1).
  coords = np.linalg.qr(centred)[0] * np.sqrt(40) * [3.0, 1.0]
  x = coords @ directions
  projection = ae_lib.whitening_projection(x, 2)
  chex.assert_shape(projection, (5, 2))
  y = x @ projection
  np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(2), atol=1e-4)
  # The first coordinate is the wide direction (up to sign), the second the narrow one.
  np.testing.assert_allclose(np.abs(projection[:, 0] / np.linalg.norm(projection[:, 0])),
                             np.abs(directions[0]), atol=1e-4)
  with pytest.raises(ValueError, match=r"input_components must be in \[1, 40\]"):
    ae_lib.whitening_projection(x, 41)


def test_an_encoder_on_whitened_components_trains_saves_and_restores(tmp_path):
  dataset = small_dataset(n=32)
  config = ae_config(epochs=60, batch_policies=8, input_components=4)
  losses = []
  compressor, state = ae_lib.train(dataset, config, jax.random.PRNGKey(0),
                                   lambda epoch, loss: losses.append(loss))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  chex.assert_shape(compressor.normalizer.input_projection, (dataset.space().num_params, 4))
  dataset.save(store.dataset_path(str(tmp_path)))
  store.save_autoencoder(str(tmp_path), compressor, state.params, dataset)
  restored = store.load(str(tmp_path), 2)
  np.testing.assert_allclose(restored.compressor.normalizer.input_projection,
                             compressor.normalizer.input_projection)
  z = compressor.encode(state.params, jnp.asarray(dataset.params))
  np.testing.assert_allclose(restored.codes, z, rtol=1e-5, atol=1e-6)


def test_the_behaviour_loss_on_each_policys_own_states_by_hand():
  space = PolicySpace(1, 1, hidden=())
  zero, sloped = linear_theta(space, 0.0, 0.0), linear_theta(space, 1.0, 0.0)
  shared = jnp.array([[-1.0], [0.0], [2.0]])
  own = jnp.array([[[1.0]], [[0.5]]])          # policy 0's own state 1.0, policy 1's 0.5
  thetas, decoded = jnp.stack([zero, zero]), jnp.stack([sloped, sloped])
  want_shared = np.mean(np.tanh([-1.0, 0.0, 2.0])**2)
  want_own = np.mean(np.tanh([1.0, 0.5])**2)
  np.testing.assert_allclose(ae_lib.behaviour_loss(space, thetas, decoded, shared, own),
                             (3 * want_shared + want_own) / 4, rtol=1e-6)


def test_an_autoencoder_with_own_states_trains_and_refuses_more_than_the_dataset_keeps():
  dataset = small_dataset(n=32)               # 4 visited states per policy
  losses = []
  ae_lib.train(dataset, ae_config(epochs=60, batch_policies=8, own_states=2),
               jax.random.PRNGKey(0), lambda epoch, loss: losses.append(loss))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  with pytest.raises(ValueError, match=r"own_states \(5\) exceeds the 4 visited states"):
    ae_lib.train(dataset, ae_config(own_states=5), jax.random.PRNGKey(0))
