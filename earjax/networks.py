"""Network building blocks every agent shares (the release's MLP and initialisation).

- ``MLP``: ReLU layers, hidden layers fan-in uniform with bias 0.1, last layer uniform
  +-3e-3 (EAR reference, "Networks").
- The tanh-squashed Gaussian policy head: ``gaussian_head`` (log-std clamped to
  [-20, 2]), ``sample_tanh_gaussian`` (sample and log-probability with the tanh
  log-det), ``deterministic_action`` (tanh of the mean).
- ``TwinCritic``: SAC's two Q networks as one ``nn.vmap``-ed ``QNetwork`` on
  concat(obs, action, one-hot task) (or one output head per task).
- ``l2_normalize`` (torch's ``F.normalize``) and ``select_head`` (per-task heads).

A method's own modules (the EAR actor, the OHE and MHMT actors, ...) live in
``earjax/agents/<method>/``.  No module here declares a width: the widths come from
the config (``earjax.config``), where the release's 400 is declared once.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0
HIDDEN_BIAS = 0.1
LAST_LAYER_BOUND = 3e-3
NUM_CRITICS = 2


def symmetric_uniform(bound: float) -> Callable[..., jax.Array]:
  """Initialiser drawing from U(-bound, bound)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


# U(-1/sqrt(fan_in), 1/sqrt(fan_in)): variance_scaling's uniform bound is sqrt(3 s / fan_in).
fan_in_uniform = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class MLP(nn.Module):
  """ReLU MLP; hidden layers fan-in uniform with bias 0.1, last layer uniform +-3e-3."""
  hidden_sizes: Sequence[int]
  output_size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.hidden_sizes:
      x = nn.Dense(width, kernel_init=fan_in_uniform,
                   bias_init=nn.initializers.constant(HIDDEN_BIAS))(x)
      x = nn.relu(x)
    last_init = symmetric_uniform(LAST_LAYER_BOUND)
    return nn.Dense(self.output_size, kernel_init=last_init, bias_init=last_init)(x)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """x / max(||x||, eps) along the last axis (torch ``F.normalize``), finite gradient at 0."""
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), -1, keepdims=True), eps**2))


def gaussian_head(output: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Splits a [..., 2 * action_size] output into mean and log-std clamped to [-20, 2]."""
  mean, log_std = jnp.split(output, 2, axis=-1)
  return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def sample_tanh_gaussian(mean: jax.Array, log_std: jax.Array,
                         key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """a = tanh(u), u ~ N(mean, exp(log_std)^2); returns (a, log pi(a)) with the tanh log-det.

  log pi(a) = log N(u) - sum log(1 - tanh(u)^2), using the stable identity
  log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)).
  """
  noise = jax.random.normal(key, mean.shape, mean.dtype)
  pre_tanh = mean + jnp.exp(log_std) * noise
  gaussian_log_prob = -0.5 * jnp.square(noise) - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
  log_det = 2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
  return jnp.tanh(pre_tanh), jnp.sum(gaussian_log_prob - log_det, axis=-1)


def deterministic_action(mean: jax.Array) -> jax.Array:
  """The evaluation action tanh(mean)."""
  return jnp.tanh(mean)


def select_head(heads: jax.Array, task_onehot: jax.Array) -> jax.Array:
  """Picks head k of [..., num_tasks * d] for the one-hot task k, giving [..., d]."""
  heads = heads.reshape(heads.shape[:-1] + (task_onehot.shape[-1], -1))
  return jnp.einsum("...kd,...k->...d", heads, task_onehot)


class QNetwork(nn.Module):
  """Q(s, a, task): MLP on concat(obs, action, one-hot), or with ``multi_head`` a trunk
  on concat(obs, action) and one output head per task (MHMT-SAC)."""
  hidden_sizes: Sequence[int]
  multi_head: bool = False

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array,
               task_onehot: jax.Array) -> jax.Array:
    if self.multi_head:
      heads = MLP(self.hidden_sizes, task_onehot.shape[-1])(
          jnp.concatenate([obs, action], -1))
      return select_head(heads, task_onehot)[..., 0]
    return MLP(self.hidden_sizes, 1)(jnp.concatenate([obs, action, task_onehot], -1))[..., 0]


class TwinCritic(nn.Module):
  """The two critics of SAC as one ``nn.vmap``-ed QNetwork; returns Q of shape [2, batch]."""
  hidden_sizes: Sequence[int]
  multi_head: bool = False

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array,
               task_onehot: jax.Array) -> jax.Array:
    ensemble = nn.vmap(QNetwork, in_axes=None, out_axes=0, axis_size=NUM_CRITICS,
                       variable_axes={"params": 0}, split_rngs={"params": True})
    return ensemble(self.hidden_sizes, self.multi_head, name="ensemble")(
        obs, action, task_onehot)
