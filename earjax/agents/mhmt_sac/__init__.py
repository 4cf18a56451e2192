"""MHMT-SAC: a shared trunk on the observation with one output head per task, for the
policy and for each critic (the paper's multi-head baseline).

Config: ``network.actor_hidden`` / ``network.critic_hidden`` are the trunks (the paper's
MHMT-SAC uses 400 x3: ``--config.network.actor_hidden='(400,400,400)'``, likewise the
critics) and the ``sac`` section.
"""
from typing import Optional, Sequence

import flax.linen as nn
import jax

from earjax.agents.base import AgentSpec, Method
from earjax.agents.sac import SACNetworks, SAC_SECTIONS, make_sac_agent, network_functions
from earjax.networks import MLP, TwinCritic, gaussian_head, select_head


class MHMTActor(nn.Module):
  """Shared trunk on obs, one linear (mean, log_std) head per task."""
  num_tasks: int
  action_size: int
  hidden_sizes: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               noise_key: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) of each sample's own task head; ``noise_key`` unused."""
    del noise_key
    heads = MLP(self.hidden_sizes, self.num_tasks * 2 * self.action_size)(obs)
    return gaussian_head(select_head(heads, task_onehot))


def make_networks(config, spec: AgentSpec) -> SACNetworks:
  n = config.network
  actor = MHMTActor(spec.num_tasks, spec.action_size, tuple(n.actor_hidden))
  critic = TwinCritic(tuple(n.critic_hidden), multi_head=True)
  return SACNetworks(**network_functions(actor, critic, spec))


def make_agent(config, spec: AgentSpec):
  return make_sac_agent("mhmt_sac", config, spec, make_networks(config, spec))


METHODS = {"mhmt_sac": Method(make_networks, make_agent, SAC_SECTIONS)}
