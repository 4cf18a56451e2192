"""Multi-task SAC, shared by the SAC-family agents (``ear_sac``, ``ohe_sac``, ``mhmt_sac``).

An agent of the family is its actor module alone: ``sac_networks(actor, critic, spec)``
wraps the modules into pure init/apply functions and ``make_sac_agent(name, config,
spec, networks)`` gives the ``Agent`` (losses in ``losses.py``, the update in
``learner.py``).  The actor is called as ``actor(obs, task_onehot, noise_key=None)`` and
returns ``(mean, log_std)`` of the pre-tanh Gaussian; the critic is ``TwinCritic``.

Config sections ``network`` (``actor_hidden``, ``critic_hidden``: every actor-critic
method's widths, the release's 400 x 4) and ``sac`` (``--config.sac.<key>``), defaults =
the release (piao-0429/EAR):
``update_order`` (``alpha_first`` | ``critic_first``), ``policy_mean_reg`` and
``policy_std_reg`` (0: the release's training configs), ``target_lte_noise`` (False: the
release drew the target action with the clean LTE), ``per_task_alpha`` (False: one alpha).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from earjax.agents.base import (Agent, AgentSpec, bool_problems, number_problems,
                               widths_problems)
from earjax.agents.sac import learner
from earjax.agents.sac.learner import UPDATE_ORDERS, SACState
from earjax.agents.sac.losses import make_losses
from earjax.networks import deterministic_action, sample_tanh_gaussian

Params = Any


@dataclasses.dataclass(frozen=True)
class SACNetworks:
  """``actor_apply(params, obs, task_onehot, noise_key=None) -> (mean, log_std)``,
  ``critic_apply(params, obs, action, task_onehot) -> [2, batch]``; ``*_init(key)``
  return the ``"params"`` collection."""
  actor: nn.Module
  critic: nn.Module
  actor_init: Callable[[jax.Array], Params]
  actor_apply: Callable[..., tuple[jax.Array, jax.Array]]
  critic_init: Callable[[jax.Array], Params]
  critic_apply: Callable[..., jax.Array]


def network_functions(actor: nn.Module, critic: nn.Module, spec: AgentSpec) -> dict:
  """The init/apply functions of ``SACNetworks`` for the modules (as keyword args)."""
  obs = jnp.zeros((1, spec.observation_size))
  action = jnp.zeros((1, spec.action_size))
  task = jnp.zeros((1, spec.num_tasks))
  return dict(
      actor=actor, critic=critic,
      actor_init=lambda key: actor.init(key, obs, task)["params"],
      actor_apply=lambda params, obs, onehot, noise_key=None: actor.apply(
          {"params": params}, obs, onehot, noise_key),
      critic_init=lambda key: critic.init(key, obs, action, task)["params"],
      critic_apply=lambda params, obs, action, onehot: critic.apply(
          {"params": params}, obs, action, onehot))


def make_sac_agent(name: str, config: ml_collections.ConfigDict, spec: AgentSpec,
                   networks: SACNetworks) -> Agent:
  """Multi-task SAC with ``networks``: Adam at ``config.learning_rate`` for actor,
  critics and temperature, the ``config.sac`` switches, per-network clipping."""
  s = config.sac
  losses = make_losses(networks.actor_apply, networks.critic_apply, spec.action_size,
                       spec.num_tasks, gamma=config.gamma, reward_scale=config.reward_scale,
                       policy_mean_reg=s.policy_mean_reg, policy_std_reg=s.policy_std_reg,
                       target_lte_noise=s.target_lte_noise)
  optimizer = optax.adam(config.learning_rate)

  def act(actor_params, obs, task_index, key, deterministic: bool):
    """The tanh-Gaussian with the clean LTE: a sample, or tanh(mean) if deterministic."""
    mean, log_std = networks.actor_apply(actor_params, obs,
                                         jax.nn.one_hot(task_index, spec.num_tasks))
    if deterministic:
      return deterministic_action(mean)
    return sample_tanh_gaussian(mean, log_std, key)[0]

  return Agent(
      name=name, networks=networks,
      init=lambda key: learner.init(networks, optimizer, key, spec.num_tasks,
                                    s.per_task_alpha),
      act=act,
      policy_params=lambda state: state.actor_params,
      update=learner.make_update(losses, optimizer, config.tau, config.max_grad_norm,
                                 s.update_order),
      # The critics and temperature too: the fine-tuning baseline continues SAC from them.
      best_items=lambda state: {"policy": state.actor_params, "critic": state.critic_params,
                                "temperature": state.log_alpha},
      parameter_health=learner.parameter_health)


RELEASE_WIDTH = 400   # every hidden layer of the release's networks


def network_section() -> ml_collections.ConfigDict:
  """The ``network`` section every actor-critic method reads: the actor's hidden widths
  (EAR's action decoder, the OHE MLP, the MHMT trunk, TSAC's and PEARL's actors) and the
  twin critics'; the release's 400 x 4."""
  c = ml_collections.ConfigDict()
  c.actor_hidden = (RELEASE_WIDTH,) * 4
  c.critic_hidden = (RELEASE_WIDTH,) * 4
  return c


def validate_network(n: ml_collections.ConfigDict) -> list[str]:
  return [p for key in ("actor_hidden", "critic_hidden")
          for p in widths_problems("network", n, key)]


def config_section() -> ml_collections.ConfigDict:
  """The ``sac`` section's defaults: the release's behaviour."""
  c = ml_collections.ConfigDict()
  c.update_order = "alpha_first"
  c.policy_mean_reg = 0.0
  c.policy_std_reg = 0.0
  c.target_lte_noise = False
  c.per_task_alpha = False
  return c


def validate_section(s: ml_collections.ConfigDict) -> list[str]:
  problems = []
  if s.update_order not in UPDATE_ORDERS:
    problems.append(f"sac.update_order must be one of {', '.join(UPDATE_ORDERS)}, got "
                    f"{s.update_order!r}")
  problems += number_problems("sac", s, {key: (lambda v: v >= 0, ">= 0")
                                         for key in ("policy_mean_reg", "policy_std_reg")})
  return problems + bool_problems("sac", s, ("target_lte_noise", "per_task_alpha"))


CONFIG_SECTIONS = {"network": (network_section, validate_network),
                   "sac": (config_section, validate_section)}
SHAPE_KEYS = ("network.actor_hidden", "network.critic_hidden", "sac.per_task_alpha")
# The sections a multi-task SAC agent reads.
SAC_SECTIONS = ("network", "sac")

__all__ = ["RELEASE_WIDTH", "SAC_SECTIONS", "SACNetworks", "SACState", "make_sac_agent",
           "network_functions"]
