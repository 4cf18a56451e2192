"""Policy and critic networks of EAR-SAC and of its baselines (Hua, Chen & Xu, ICLR 2023).

EAR actor (Sec. 3, Fig. 1): a state encoder maps the observation to the latent sensory
embedding (LSE, unit 16-vector), a task encoder maps the one-hot task label to the
latent task embedding (LTE, unit 3-vector), and an action decoder maps
concat(LSE, LTE) to a tanh-squashed Gaussian.  During training the LTE is perturbed,
Z~ = normalize(Z + n), n ~ N(0, sigma^2) (Algorithm 1).

Where the LTEs live.  The task encoder is trained, so its weights stay in the ordinary
``"params"`` collection under ``params["task_encoder"]`` and gradients reach them.  The
LTEs it produces are read out as a separate Flax collection ``"lte"`` holding
``{"table": [num_tasks, lte_dim]}`` (``lte_variables``).  A user reads, replaces or
interpolates rows of that table (Eq. 1) without touching any weight and applies the
actor to it with ``{"params": params, "lte": {"table": table}}``
(``EARActor.decode_lte_table``); ``EARActor.decode`` takes any batch of LTE vectors
directly (CEM adaptation, Algorithm 2).  Training never creates the ``"lte"``
collection, so there is no stale copy of the LTEs to keep in sync with the encoder.

Baselines with the same interface: ``OHEActor`` (OHE-SAC) and ``MHMTActor``
(MHMT-SAC).  Every actor is called as ``actor(obs, task_onehot, noise_key=None)`` and
returns ``(mean, log_std)`` of the pre-tanh Gaussian.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0
HIDDEN_BIAS = 0.1
LAST_LAYER_BOUND = 3e-3
NUM_CRITICS = 2

Params = Any


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


def perturb_lte(lte: jax.Array, key: jax.Array, noise_std: float,
                normalize: bool = True) -> jax.Array:
  """Z~ = normalize(Z + n), n ~ N(0, noise_std^2) (Algorithm 1); no normalize if asked."""
  noisy = lte + noise_std * jax.random.normal(key, lte.shape, lte.dtype)
  return l2_normalize(noisy) if normalize else noisy


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


class StateEncoder(nn.Module):
  """phi: obs -> LSE on the unit sphere (release: 400, 400 -> 16)."""
  hidden_sizes: Sequence[int]
  lse_dim: int

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    return l2_normalize(MLP(self.hidden_sizes, self.lse_dim)(obs))


class TaskEncoder(nn.Module):
  """one-hot task -> LTE Z, unit-normalised unless the no-hypersphere ablation."""
  hidden_sizes: Sequence[int]
  lte_dim: int
  normalize: bool = True

  @nn.compact
  def __call__(self, task_onehot: jax.Array) -> jax.Array:
    lte = MLP(self.hidden_sizes, self.lte_dim)(task_onehot)
    return l2_normalize(lte) if self.normalize else lte


class ActionDecoder(nn.Module):
  """psi: concat(LSE, LTE) -> (mean, log_std) of the pre-tanh Gaussian."""
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
  state_encoder_hidden: Sequence[int] = (400, 400)
  lse_dim: int = 16
  task_encoder_hidden: Sequence[int] = (400,)
  lte_dim: int = 3
  decoder_hidden: Sequence[int] = (400, 400, 400, 400)
  lte_noise_std: float = 0.02
  normalize_lte: bool = True
  release_noise_bug: bool = False

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


class OHEActor(nn.Module):
  """OHE-SAC policy on concat(obs, one-hot task) (400 x4); it has no LTE."""
  num_tasks: int
  action_size: int
  hidden_sizes: Sequence[int] = (400, 400, 400, 400)

  @nn.compact
  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               noise_key: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std); ``noise_key`` is accepted for interface parity and unused."""
    del noise_key
    output = MLP(self.hidden_sizes, 2 * self.action_size)(
        jnp.concatenate([obs, task_onehot], -1))
    return gaussian_head(output)


def select_head(heads: jax.Array, task_onehot: jax.Array) -> jax.Array:
  """Picks head k of [..., num_tasks * d] for the one-hot task k, giving [..., d]."""
  heads = heads.reshape(heads.shape[:-1] + (task_onehot.shape[-1], -1))
  return jnp.einsum("...kd,...k->...d", heads, task_onehot)


class MHMTActor(nn.Module):
  """MHMT-SAC policy: shared trunk on obs (400 x3), one linear output head per task."""
  num_tasks: int
  action_size: int
  hidden_sizes: Sequence[int] = (400, 400, 400)

  @nn.compact
  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               noise_key: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) of each sample's own task head; ``noise_key`` unused."""
    del noise_key
    heads = MLP(self.hidden_sizes, self.num_tasks * 2 * self.action_size)(obs)
    return gaussian_head(select_head(heads, task_onehot))


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
  hidden_sizes: Sequence[int] = (400, 400, 400, 400)
  multi_head: bool = False

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array,
               task_onehot: jax.Array) -> jax.Array:
    ensemble = nn.vmap(QNetwork, in_axes=None, out_axes=0, axis_size=NUM_CRITICS,
                       variable_axes={"params": 0}, split_rngs={"params": True})
    return ensemble(self.hidden_sizes, self.multi_head, name="ensemble")(
        obs, action, task_onehot)


@dataclasses.dataclass(frozen=True)
class Networks:
  """Modules and pure init/apply functions of one agent kind.

  ``actor_apply(params, obs, task_onehot, noise_key=None) -> (mean, log_std)``,
  ``critic_apply(params, obs, action, task_onehot) -> [2, batch]``; ``*_init(key)``
  return the ``"params"`` collection.  EAR only (None for the baselines):
  ``lte_table(params) -> [num_tasks, lte_dim]``, ``lte_variables(params) ->
  {"lte": {"table": ...}}``, ``decode(params, obs, lte)`` and
  ``decode_lte_table(variables, obs, task_index)``.
  """
  kind: str
  actor: nn.Module
  critic: nn.Module
  actor_init: Callable[[jax.Array], Params]
  actor_apply: Callable[..., tuple[jax.Array, jax.Array]]
  critic_init: Callable[[jax.Array], Params]
  critic_apply: Callable[..., jax.Array]
  lte_table: Optional[Callable[[Params], jax.Array]] = None
  lte_variables: Optional[Callable[[Params], dict]] = None
  decode: Optional[Callable[..., tuple[jax.Array, jax.Array]]] = None
  decode_lte_table: Optional[Callable[..., tuple[jax.Array, jax.Array]]] = None


KINDS = ("ear", "ohe", "mhmt")


def make_networks(kind: str, obs_size: int, action_size: int, num_tasks: int, *,
                  actor_hidden: Optional[Sequence[int]] = None,
                  critic_hidden: Optional[Sequence[int]] = None,
                  state_encoder_hidden: Sequence[int] = (400, 400),
                  task_encoder_hidden: Sequence[int] = (400,),
                  lse_dim: int = 16, lte_dim: int = 3, lte_noise_std: float = 0.02,
                  normalize_lte: bool = True,
                  release_noise_bug: bool = False) -> Networks:
  """Actor and twin critic of ``kind`` in {"ear", "ohe", "mhmt"} (release sizes by default).

  ``actor_hidden`` is the EAR action decoder / OHE MLP / MHMT trunk (default 400 x4,
  400 x4, 400 x3); ``critic_hidden`` each critic's MLP (400 x4; MHMT trunk 400 x3).
  The state/task encoder and LTE options apply to "ear" only.
  """
  if kind not in KINDS:
    raise ValueError(f"unknown network kind {kind!r}; valid kinds: {', '.join(KINDS)}")
  default_depth = 3 if kind == "mhmt" else 4
  actor_hidden = tuple((400,) * default_depth if actor_hidden is None else actor_hidden)
  critic_hidden = tuple((400,) * default_depth if critic_hidden is None else critic_hidden)
  if kind == "ear":
    actor = EARActor(num_tasks, action_size,
                     state_encoder_hidden=tuple(state_encoder_hidden), lse_dim=lse_dim,
                     task_encoder_hidden=tuple(task_encoder_hidden), lte_dim=lte_dim,
                     decoder_hidden=actor_hidden, lte_noise_std=lte_noise_std,
                     normalize_lte=normalize_lte, release_noise_bug=release_noise_bug)
  elif kind == "ohe":
    actor = OHEActor(num_tasks, action_size, actor_hidden)
  else:
    actor = MHMTActor(num_tasks, action_size, actor_hidden)
  critic = TwinCritic(critic_hidden, multi_head=kind == "mhmt")
  dummy_obs = jnp.zeros((1, obs_size))
  dummy_action = jnp.zeros((1, action_size))
  dummy_task = jnp.zeros((1, num_tasks))

  def actor_apply(params, obs, task_onehot, noise_key=None):
    return actor.apply({"params": params}, obs, task_onehot, noise_key)

  def critic_apply(params, obs, action, task_onehot):
    return critic.apply({"params": params}, obs, action, task_onehot)

  ear_functions = {}
  if kind == "ear":
    def lte_table(params):
      return actor.apply({"params": params}, method=EARActor.lte_table)

    def lte_variables(params):
      return {"lte": {"table": lte_table(params)}}

    def decode(params, obs, lte):
      return actor.apply({"params": params}, obs, lte, method=EARActor.decode)

    def decode_lte_table(variables, obs, task_index):
      return actor.apply(variables, obs, task_index, method=EARActor.decode_lte_table)

    ear_functions = dict(lte_table=lte_table, lte_variables=lte_variables, decode=decode,
                         decode_lte_table=decode_lte_table)

  return Networks(
      kind=kind, actor=actor, critic=critic,
      actor_init=lambda key: actor.init(key, dummy_obs, dummy_task)["params"],
      actor_apply=actor_apply,
      critic_init=lambda key: critic.init(key, dummy_obs, dummy_action,
                                          dummy_task)["params"],
      critic_apply=critic_apply, **ear_functions)
