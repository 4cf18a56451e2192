"""The EAR actor (Hua, Chen & Xu, ICLR 2023, Sec. 3, Fig. 1).

A state encoder maps the observation to the latent sensory embedding (LSE, a unit
``lse_dim``-vector), a task encoder maps the one-hot task label to the latent task
embedding (LTE, a unit ``lte_dim``-vector), and an action decoder maps concat(LSE, LTE) to
a tanh-squashed Gaussian.  During training the LTE is perturbed, Z~ = normalize(Z + n),
n ~ N(0, sigma^2) (Algorithm 1).

Where the LTEs live.  The task encoder is trained, so its weights stay in the ordinary
``"params"`` collection under ``params["task_encoder"]`` and gradients reach them.  The
LTEs it produces are read out as a separate Flax collection ``"lte"`` holding
``{"table": [num_tasks, lte_dim]}`` (``EARNetworks.lte_variables``).  A user reads,
replaces or interpolates rows of that table (Eq. 1) without touching any weight and acts
with ``{"params": params, "lte": {"table": table}}`` (``decode_lte_table``);
``decode`` takes any batch of LTE vectors directly (CEM, Algorithm 2).  Training never
creates the ``"lte"`` collection, so there is no stale copy to keep in sync.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from earjax.agents.sac import SACNetworks
from earjax.networks import MLP, gaussian_head, l2_normalize

Params = Any


def perturb_lte(lte: jax.Array, key: jax.Array, noise_std: float,
                normalize: bool = True) -> jax.Array:
  """Z~ = normalize(Z + n), n ~ N(0, noise_std^2) (Algorithm 1); no normalize if asked."""
  noisy = lte + noise_std * jax.random.normal(key, lte.shape, lte.dtype)
  return l2_normalize(noisy) if normalize else noisy


class StateEncoder(nn.Module):
  """phi: obs -> LSE on the unit sphere (release: 400, 400 -> 16)."""
  hidden_sizes: Sequence[int]
  lse_dim: int

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    return l2_normalize(MLP(self.hidden_sizes, self.lse_dim)(obs))


class TaskEncoder(nn.Module):
  """one-hot task -> LTE Z (release: 400 -> 3), unit-normalised unless the
  no-hypersphere ablation."""
  hidden_sizes: Sequence[int]
  lte_dim: int
  normalize: bool

  @nn.compact
  def __call__(self, task_onehot: jax.Array) -> jax.Array:
    lte = MLP(self.hidden_sizes, self.lte_dim)(task_onehot)
    return l2_normalize(lte) if self.normalize else lte


class ActionDecoder(nn.Module):
  """psi: concat(LSE, LTE) -> (mean, log_std) of the pre-tanh Gaussian (release 400 x4)."""
  hidden_sizes: Sequence[int]
  action_size: int

  @nn.compact
  def __call__(self, lse: jax.Array, lte: jax.Array) -> tuple[jax.Array, jax.Array]:
    output = MLP(self.hidden_sizes, 2 * self.action_size)(jnp.concatenate([lse, lte], -1))
    return gaussian_head(output)


class EARActor(nn.Module):
  """The EAR policy pi(a | phi(s), Z) (Fig. 1).

  ``lte_noise_std`` is sigma of Algorithm 1 (0 is the no-noise ablation);
  ``normalize_lte=False`` is the no-hypersphere ablation (neither Z nor Z~ normalised);
  ``release_noise_bug=True`` reproduces the original release, whose decoder received
  the clean Z although Z~ was computed, so the noise had no effect.
  """
  num_tasks: int
  action_size: int
  state_encoder_hidden: Sequence[int]
  lse_dim: int
  task_encoder_hidden: Sequence[int]
  lte_dim: int
  decoder_hidden: Sequence[int]
  lte_noise_std: float
  normalize_lte: bool
  release_noise_bug: bool

  def setup(self):
    self.state_encoder = StateEncoder(self.state_encoder_hidden, self.lse_dim)
    self.task_encoder = TaskEncoder(self.task_encoder_hidden, self.lte_dim,
                                    self.normalize_lte)
    self.action_decoder = ActionDecoder(self.decoder_hidden, self.action_size)

  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               noise_key: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) for the tasks of ``task_onehot``; LTE noise iff ``noise_key``."""
    lte = self.ltes(task_onehot)
    if noise_key is not None and self.lte_noise_std > 0 and not self.release_noise_bug:
      lte = perturb_lte(lte, noise_key, self.lte_noise_std, self.normalize_lte)
    return self.decode(obs, lte)

  def ltes(self, task_onehot: jax.Array) -> jax.Array:
    """The clean LTEs Z of the tasks of ``task_onehot``."""
    return self.task_encoder(task_onehot)

  def lse(self, obs: jax.Array) -> jax.Array:
    """The latent sensory embedding phi(s)."""
    return self.state_encoder(obs)

  def decode(self, obs: jax.Array, lte: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) for arbitrary LTE vectors (interpolation Eq. 1, CEM Algorithm 2)."""
    return self.action_decoder(self.state_encoder(obs), lte)

  def lte_table(self) -> jax.Array:
    """The training LTEs of every task, [num_tasks, lte_dim]."""
    return self.ltes(jnp.eye(self.num_tasks))

  def decode_lte_table(self, obs: jax.Array,
                       task_index: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) using row ``task_index`` of the ``"lte"`` collection's table."""
    table = self.get_variable("lte", "table")
    if table is None:
      raise ValueError('decode_lte_table needs variables {"params": ..., "lte": '
                       '{"table": ...}}; build them with lte_variables(params)')
    return self.decode(obs, table[task_index])


@dataclasses.dataclass(frozen=True)
class EARNetworks(SACNetworks):
  """SAC networks with the EAR actor, plus its parts as pure functions of the actor
  params: ``lte_table(params) -> [num_tasks, lte_dim]``, ``lte_variables(params) ->
  {"lte": {"table": ...}}``, ``decode(params, obs, lte)``, ``lse(params, obs)`` and
  ``decode_lte_table(variables, obs, task_index)``."""
  lte_table: Callable[[Params], jax.Array] = None
  lte_variables: Callable[[Params], dict] = None
  decode: Callable[..., tuple[jax.Array, jax.Array]] = None
  lse: Callable[..., jax.Array] = None
  decode_lte_table: Callable[..., tuple[jax.Array, jax.Array]] = None


def ear_functions(actor: EARActor) -> dict:
  """The EAR-only functions of ``EARNetworks`` (as keyword arguments)."""
  def lte_table(params):
    return actor.apply({"params": params}, method=EARActor.lte_table)

  return dict(
      lte_table=lte_table,
      lte_variables=lambda params: {"lte": {"table": lte_table(params)}},
      decode=lambda params, obs, lte: actor.apply({"params": params}, obs, lte,
                                                  method=EARActor.decode),
      lse=lambda params, obs: actor.apply({"params": params}, obs, method=EARActor.lse),
      decode_lte_table=lambda variables, obs, task_index: actor.apply(
          variables, obs, task_index, method=EARActor.decode_lte_table))
