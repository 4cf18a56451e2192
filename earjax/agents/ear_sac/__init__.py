"""EAR-SAC: multi-task SAC with the EAR actor (state encoder, LTE, action decoder).

Networks in ``networks.py``; losses and update are the shared multi-task SAC
(``earjax.agents.sac``).  Config: ``network.{actor_hidden (the action decoder),
critic_hidden}``, the ``sac`` section and its own ``ear_sac`` section:
``{state_encoder_hidden, task_encoder_hidden, lse_dim, lte_dim, lte_noise_std,
normalize_lte, release_noise_bug}`` (release defaults; Algorithm 1's sigma 0.02).
"""
import ml_collections

from earjax.agents.base import (AgentSpec, Method, bool_problems, number_problems,
                               positive_int_problems, widths_problems)
from earjax.agents.ear_sac.networks import EARActor, EARNetworks, ear_functions
from earjax.agents.sac import RELEASE_WIDTH, SAC_SECTIONS, make_sac_agent, network_functions
from earjax.networks import TwinCritic


def make_networks(config, spec: AgentSpec) -> EARNetworks:
  n, e = config.network, config.ear_sac
  actor = EARActor(
      spec.num_tasks, spec.action_size, state_encoder_hidden=tuple(e.state_encoder_hidden),
      lse_dim=e.lse_dim, task_encoder_hidden=tuple(e.task_encoder_hidden),
      lte_dim=e.lte_dim, decoder_hidden=tuple(n.actor_hidden),
      lte_noise_std=e.lte_noise_std, normalize_lte=e.normalize_lte,
      release_noise_bug=e.release_noise_bug)
  return EARNetworks(**network_functions(actor, TwinCritic(tuple(n.critic_hidden)), spec),
                     **ear_functions(actor))


def make_agent(config, spec: AgentSpec):
  return make_sac_agent("ear_sac", config, spec, make_networks(config, spec))


def config_section() -> ml_collections.ConfigDict:
  """The ``ear_sac`` section's defaults: the release's encoders and LTE."""
  c = ml_collections.ConfigDict()
  c.state_encoder_hidden = (RELEASE_WIDTH,) * 2
  c.task_encoder_hidden = (RELEASE_WIDTH,)
  c.lse_dim = 16
  c.lte_dim = 3
  c.lte_noise_std = 0.02     # sigma of Algorithm 1; 0 = the no-noise ablation
  c.normalize_lte = True     # False = the no-hypersphere ablation
  c.release_noise_bug = False  # True = the release: noisy LTE computed, unused
  return c


def validate_section(e: ml_collections.ConfigDict) -> list[str]:
  problems = widths_problems("ear_sac", e, "state_encoder_hidden")
  problems += widths_problems("ear_sac", e, "task_encoder_hidden")
  problems += positive_int_problems("ear_sac", e, ("lse_dim", "lte_dim"))
  problems += number_problems("ear_sac", e, {"lte_noise_std": (lambda v: v >= 0, ">= 0")})
  return problems + bool_problems("ear_sac", e, ("normalize_lte", "release_noise_bug"))


METHODS = {"ear_sac": Method(make_networks, make_agent, SAC_SECTIONS + ("ear_sac",))}
CONFIG_SECTIONS = {"ear_sac": (config_section, validate_section)}
SHAPE_KEYS = ("ear_sac.state_encoder_hidden", "ear_sac.task_encoder_hidden",
              "ear_sac.lse_dim", "ear_sac.lte_dim")
