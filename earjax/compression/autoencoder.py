"""The behavioural autoencoder over Θ (arXiv 2509.22566): an encoder f: Θ -> Z and a
decoder (hypernetwork) g: Z -> Θ trained so that decoded policies act like the originals.

Loss (the paper's behavioural reconstruction): for policies θ_i of the dataset and states
s_j drawn from the dataset's visited states,

  L = mean_{i,j,a} (π_θi(s_j)_a - π_g(f(θi))(s_j)_a)^2,

never a distance between weights.  The encoder reads θ (the paper's symmetric
autoencoder, ``encoder_input="parameters"``) or θ's descriptor, its actions on the probe
states (``"actions"``; both earjax's config).  Inputs are standardised with the dataset's
per-dimension mean and std and, with ``input_components`` = k > 0, projected on the
dataset's k principal directions and whitened (each unit variance over the dataset): an
encoder that reads 121,801 parameters with Adam otherwise moves each first-layer
pre-activation by about the learning rate times 121,801 a step (issue 32).  The decoder
outputs θ = mean + std * g(z), so g(z) = 0 is the dataset's mean policy.  One epoch is
one jitted ``lax.scan`` over shuffled minibatches of policies, with fresh states at every
step, the training state donated.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from earjax.compression.policies import PolicySpace

ENCODER_INPUTS = ("parameters", "actions")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
  """The autoencoder's settings (defaults: ``experiments/configs/compression.py``)."""
  latent_dim: int
  hidden: tuple[int, ...]         # of the encoder, mirrored by the decoder
  encoder_input: str              # ENCODER_INPUTS
  learning_rate: float
  batch_policies: int             # policies per gradient step
  batch_states: int               # states per gradient step (shared by its policies)
  epochs: int
  input_components: int = 0       # 0: the standardised input; k: its whitened top-k PCA
  own_states: int = 0             # k: each policy's loss also on k of its own visited states

  def __post_init__(self):
    for name in ("latent_dim", "batch_policies", "batch_states", "epochs"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"autoencoder.{name} must be a positive integer, "
                         f"got {getattr(self, name)!r}")
    if int(self.own_states) < 0:
      raise ValueError(f"autoencoder.own_states must be an integer >= 0, "
                       f"got {self.own_states!r}")
    if int(self.input_components) < 0:
      raise ValueError(f"autoencoder.input_components must be an integer >= 0, "
                       f"got {self.input_components!r}")
    if self.encoder_input not in ENCODER_INPUTS:
      raise ValueError(f"autoencoder.encoder_input must be one of "
                       f"{', '.join(ENCODER_INPUTS)}, got {self.encoder_input!r}")
    if not self.learning_rate > 0:
      raise ValueError(f"autoencoder.learning_rate must be positive, "
                       f"got {self.learning_rate}")


class _MLP(nn.Module):
  hidden: Sequence[int]
  out: int

  @nn.compact
  def __call__(self, x):
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.out)(x)


class PolicyAutoencoder(nn.Module):
  """f: standardised input -> z [latent_dim]; g: z -> standardised θ [num_params]."""
  latent_dim: int
  hidden: Sequence[int]
  num_params: int

  def setup(self):
    self.encoder = _MLP(tuple(self.hidden), self.latent_dim)
    self.decoder = _MLP(tuple(reversed(tuple(self.hidden))), self.num_params)

  def __call__(self, x):
    return self.decoder(self.encoder(x))

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder(z)


def behaviour_loss(space: PolicySpace, thetas: jax.Array, decoded: jax.Array,
                   states: jax.Array, own_states: jax.Array | None = None) -> jax.Array:
  """Mean squared action difference of policies ``thetas`` and ``decoded`` [B, D] on
  ``states`` [K, obs] (the loss of the module docstring) and, with ``own_states``
  [B, k, obs], each policy also on its own k states: the mean over all K + k states."""
  shared = jnp.mean((space.actions_on(thetas, states) - space.actions_on(decoded, states))**2)
  if own_states is None:
    return shared
  act = jax.vmap(space.act)
  own = jnp.mean((act(thetas, own_states) - act(decoded, own_states))**2)
  k_shared, k_own = states.shape[0], own_states.shape[1]
  return (k_shared * shared + k_own * own) / (k_shared + k_own)


@struct.dataclass
class Normalizer:
  """Per-dimension mean and std of the dataset's parameters and encoder inputs and, with
  ``input_components``, the whitening projection [inputs, k] of the standardised inputs
  (None without)."""
  theta_mean: jax.Array
  theta_std: jax.Array
  input_mean: jax.Array
  input_std: jax.Array
  input_projection: jax.Array | None = None

  @classmethod
  def fit(cls, params: np.ndarray, inputs: np.ndarray, components: int = 0) -> "Normalizer":
    std = lambda x: np.maximum(x.std(0), 1e-6)
    mean, scale = inputs.mean(0), std(inputs)
    projection = (None if components == 0 else
                  jnp.asarray(whitening_projection((inputs - mean) / scale, components)))
    return cls(jnp.asarray(params.mean(0)), jnp.asarray(std(params)),
               jnp.asarray(mean), jnp.asarray(scale), projection)

  def encoder_input(self, inputs: jax.Array) -> jax.Array:
    x = (inputs - self.input_mean) / self.input_std
    return x if self.input_projection is None else x @ self.input_projection


def whitening_projection(x: np.ndarray, k: int) -> np.ndarray:
  """P [D, k] with x @ P the coordinates of the rows of ``x`` [N, D] (centred) on their
  top-k principal directions, each scaled to unit variance over the rows.  From the
  N x N Gram matrix (N << D here): x = U S V^T, so x V_k / (S_k / sqrt(N)) =
  x x^T U_k sqrt(N) / S_k^2, i.e. P = x^T U_k sqrt(N) / S_k^2."""
  n = x.shape[0]
  if not 0 < k <= n:
    raise ValueError(f"autoencoder.input_components must be in [1, {n}] (the dataset's "
                     f"policies), got {k}")
  x = np.asarray(x, np.float32)                      # the products in float32 (1 GB x)
  eigenvalues, vectors = np.linalg.eigh((x @ x.T).astype(np.float64))
  top = np.argsort(eigenvalues)[::-1][:k]            # S_k^2, largest first
  s2 = np.maximum(eigenvalues[top], 1e-12)
  return x.T @ (vectors[:, top] * (np.sqrt(n) / s2)).astype(np.float32)


@struct.dataclass
class AutoencoderState:
  params: dict
  opt_state: optax.OptState
  step: jax.Array


class Compressor:
  """The autoencoder of one policy space: encode, decode, and the training epoch."""

  def __init__(self, space: PolicySpace, config: AutoencoderConfig, normalizer: Normalizer):
    self.space, self.config, self.normalizer = space, config, normalizer
    self.model = PolicyAutoencoder(config.latent_dim, tuple(config.hidden), space.num_params)
    self.optimizer = optax.adam(config.learning_rate)
    self.epoch = jax.jit(self._epoch, donate_argnums=(0,))

  def init(self, key: jax.Array) -> AutoencoderState:
    x = self.normalizer.encoder_input(self.normalizer.input_mean)
    params = self.model.init(key, x)
    return AutoencoderState(params, self.optimizer.init(params), jnp.zeros((), jnp.int32))

  def encode(self, params, inputs: jax.Array) -> jax.Array:
    """z [..., latent_dim] of encoder inputs (θ or descriptors, per ``encoder_input``)."""
    return self.model.apply(params, self.normalizer.encoder_input(inputs),
                            method=PolicyAutoencoder.encode)

  def decode(self, params, z: jax.Array) -> jax.Array:
    """θ [..., D] = g(z), the decoded policy's parameters."""
    n = self.normalizer
    return n.theta_mean + n.theta_std * self.model.apply(params, z,
                                                         method=PolicyAutoencoder.decode)

  def loss(self, params, thetas: jax.Array, inputs: jax.Array,
           states: jax.Array, own_states: jax.Array | None = None) -> jax.Array:
    return behaviour_loss(self.space, thetas, self.decode(params, self.encode(params, inputs)),
                          states, own_states)

  def _epoch(self, state: AutoencoderState, thetas: jax.Array, inputs: jax.Array,
             states: jax.Array, key: jax.Array):
    """One pass over the dataset's policies (``thetas`` [N, D] and their encoder
    ``inputs``) in shuffled minibatches, each step on ``batch_states`` fresh states drawn
    from ``states`` [N, P, obs] (policy i's P visited states) and, with ``own_states`` =
    k, each policy also on k of its own P; returns the state and the mean loss."""
    c = self.config
    perm_key, state_key = jax.random.split(key)
    batches = thetas.shape[0] // c.batch_policies
    order = jax.random.permutation(perm_key, thetas.shape[0])[:batches * c.batch_policies]
    order = order.reshape(batches, c.batch_policies)
    pooled = states.reshape(-1, states.shape[-1])

    def step(state, args):
      rows, key = args
      picked = pooled[jax.random.randint(key, (c.batch_states,), 0, pooled.shape[0])]
      own = None
      if c.own_states:
        which = jax.random.randint(jax.random.fold_in(key, 1),
                                   (c.batch_policies, c.own_states), 0, states.shape[1])
        own = jnp.take_along_axis(states[rows], which[..., None], axis=1)
      loss, grads = jax.value_and_grad(self.loss)(state.params, thetas[rows], inputs[rows],
                                                  picked, own)
      updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
      return AutoencoderState(optax.apply_updates(state.params, updates), opt_state,
                              state.step + 1), loss

    state, losses = jax.lax.scan(step, state, (order, jax.random.split(state_key, batches)))
    return state, losses.mean()


def encoder_inputs(dataset, encoder_input: str) -> np.ndarray:
  """What the encoder reads of each dataset policy: θ or its descriptor."""
  return dataset.params if encoder_input == "parameters" else dataset.descriptors


def train(dataset, config: AutoencoderConfig, key: jax.Array, on_epoch=None):
  """Trains the autoencoder of ``config`` on ``dataset`` (a ``PolicyDataset``);
  ``on_epoch(epoch, mean_loss)`` after each epoch.  Returns (Compressor, state)."""
  if config.batch_policies > dataset.size:
    raise ValueError(f"autoencoder.batch_policies ({config.batch_policies}) exceeds the "
                     f"dataset's {dataset.size} policies")
  inputs = encoder_inputs(dataset, config.encoder_input)
  compressor = Compressor(dataset.space(), config,
                          Normalizer.fit(dataset.params, inputs, int(config.input_components)))
  per_policy = len(dataset.states) // dataset.size
  if config.own_states > per_policy:
    raise ValueError(f"autoencoder.own_states ({config.own_states}) exceeds the "
                     f"{per_policy} visited states the dataset keeps per policy")
  init_key, key = jax.random.split(key)
  state = compressor.init(init_key)
  thetas, inputs = jnp.asarray(dataset.params), jnp.asarray(inputs)
  states = jnp.asarray(dataset.states).reshape(dataset.size, per_policy, -1)
  for epoch, epoch_key in enumerate(jax.random.split(key, config.epochs)):
    state, loss = compressor.epoch(state, thetas, inputs, states, epoch_key)
    if on_epoch is not None:
      on_epoch(epoch + 1, float(loss))
  return compressor, state


def reconstruction_error(compressor: Compressor, params, dataset, chunk: int = 1024) -> float:
  """The behavioural loss over the whole dataset on its probe states (no sampling)."""
  inputs = encoder_inputs(dataset, compressor.config.encoder_input)
  loss = jax.jit(compressor.loss)
  total = 0.0
  for start in range(0, dataset.size, chunk):
    rows = slice(start, start + chunk)
    n = len(dataset.params[rows])
    total += n * float(loss(params, dataset.params[rows], inputs[rows],
                            dataset.probe_states))
  return total / dataset.size
