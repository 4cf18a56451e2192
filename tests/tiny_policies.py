"""A small policy dataset (random 3 -> 4 -> 2 policies by default) and small autoencoder
settings, shared by the compression tests."""
import jax
import numpy as np

from earjax.compression import autoencoder as ae_lib
from earjax.compression.dataset import PolicyDataset
from earjax.compression.policies import PolicySpace


def small_dataset(n=6, space=None):
  space = space or PolicySpace(3, 2, hidden=(4,))
  thetas = np.asarray(jax.vmap(space.init)(jax.random.split(jax.random.PRNGKey(0), n)))
  obs = space.observation_size
  probe = np.random.default_rng(0).normal(size=(5, obs)).astype(np.float32)
  descriptors = np.asarray(space.actions_on(thetas, probe)).reshape(n, -1)
  return PolicyDataset(
      env_name="none", hidden=space.hidden, task_names=("a", "b"),
      task_params=np.zeros((2, 1), np.float32), params=thetas, descriptors=descriptors,
      returns=np.arange(2 * n, dtype=np.float32).reshape(n, 2), velocity=np.zeros(n),
      novelty=np.ones(n), generation=np.zeros(n, np.int32), probe_states=probe,
      states=np.random.default_rng(1).normal(size=(4 * n, obs)).astype(np.float32))


def ae_config(**changes):
  settings = dict(latent_dim=2, hidden=(8,), encoder_input="parameters",
                  learning_rate=1e-2, batch_policies=2, batch_states=8, epochs=2)
  return ae_lib.AutoencoderConfig(**{**settings, **changes})
