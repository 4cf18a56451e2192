"""OHE-SAC: one SAC policy on concat(obs, one-hot task) (the paper's baseline, and the
fine-tuning baseline of ``earjax.training.finetune``).  It has no LTE.

Config: ``network.actor_hidden`` (release 400 x4), ``network.critic_hidden`` and the
``sac`` section.
"""
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from earjax.agents.base import AgentSpec, Method
from earjax.agents.sac import SACNetworks, SAC_SECTIONS, make_sac_agent, network_functions
from earjax.networks import MLP, TwinCritic, gaussian_head


class OHEActor(nn.Module):
  """pi(a | s, one-hot task): one MLP on the concatenation."""
  action_size: int
  hidden_sizes: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               noise_key: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std); ``noise_key`` (LTE noise) does not apply and is unused."""
    del noise_key
    output = MLP(self.hidden_sizes, 2 * self.action_size)(
        jnp.concatenate([obs, task_onehot], -1))
    return gaussian_head(output)


def make_networks(config, spec: AgentSpec) -> SACNetworks:
  n = config.network
  return SACNetworks(**network_functions(OHEActor(spec.action_size, tuple(n.actor_hidden)),
                                         TwinCritic(tuple(n.critic_hidden)), spec))


def make_agent(config, spec: AgentSpec):
  return make_sac_agent("ohe_sac", config, spec, make_networks(config, spec))


METHODS = {"ohe_sac": Method(make_networks, make_agent, SAC_SECTIONS)}
