"""EAR-SAC: multi-task SAC with the EAR actor (state encoder, LTE, action decoder).

Networks in ``networks.py``; losses and update are the shared multi-task SAC
(``earjax.agents.sac``).  Config: ``network.{state_encoder_hidden, task_encoder_hidden,
actor_hidden (the action decoder), critic_hidden, lse_dim, lte_dim, lte_noise_std,
normalize_lte, release_noise_bug}`` and the ``sac`` section.
"""
from earjax.agents.base import AgentSpec, Method
from earjax.agents.ear_sac.networks import EARActor, EARNetworks, ear_functions
from earjax.agents.sac import make_sac_agent, network_functions
from earjax.networks import TwinCritic


def make_networks(config, spec: AgentSpec) -> EARNetworks:
  n = config.network
  actor = EARActor(
      spec.num_tasks, spec.action_size, state_encoder_hidden=tuple(n.state_encoder_hidden),
      lse_dim=n.lse_dim, task_encoder_hidden=tuple(n.task_encoder_hidden),
      lte_dim=n.lte_dim, decoder_hidden=tuple(n.actor_hidden),
      lte_noise_std=n.lte_noise_std, normalize_lte=n.normalize_lte,
      release_noise_bug=n.release_noise_bug)
  return EARNetworks(**network_functions(actor, TwinCritic(tuple(n.critic_hidden)), spec),
                     **ear_functions(actor))


def make_agent(config, spec: AgentSpec):
  return make_sac_agent("ear_sac", config, spec, make_networks(config, spec))


METHODS = {"ear_sac": Method(make_networks, make_agent)}
