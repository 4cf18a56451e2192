"""PEARL (Rakelly et al. 2019): SAC on (obs, z) with a probabilistic context encoder
q(z | c), meta-trained over the family's training tasks, as an earjax agent.

Networks in ``networks.py``, the step in ``learner.py`` (the shared SAC update plus the
encoder's); the generic epoch collects and replays as for every agent, all training
tasks in one vmapped batch, keeps PEARL's encoder buffer (``agents.ContextData``: per
env, its latest epoch with a prior z) and hands the update a context batch per task
from it, apart from the RL batch.  Adapting to a new task without gradient steps
(posterior sampling, then the posterior mean) is ``earjax.adaptation.pearl``.

Config section ``pearl`` (``--config.pearl.<key>``), defaults = the PEARL reference
settings (katerakelly/oyster ``configs/cheetah-vel.json`` and ``default.py``, WORKSPACE.md
"PEARL and MAML"): ``latent_dim`` 5, ``kl_weight`` 0.1, ``encoder_hidden`` 200 x 3,
``context_per_task`` 100 (the context batch), ``context_next_obs`` False (c = (s, a,
r)), ``prior_fraction`` 0.6 (the share of collection with a prior z).  The actor and
critic widths (300 x 3 there) and ``reward_scale`` (5) are the run's ``network.*`` and
``reward_scale``, set on the command line (README's PEARL command gives
``--config.reward_scale=5``).

What earjax does differently, and why (WORKSPACE.md, "PEARL and MAML"):
- every training task is in every batch (the all-tasks vmapped batch of earjax), where
  PEARL samples a meta-batch of 16 of its 100 tasks;
- each env's z is drawn at every gradient step and the latest draw acts for the whole
  next epoch (PEARL draws z per episode): episode-long z where ``env_steps_per_epoch``
  is the episode length;
- the encoder buffer holds each env's latest exploring epoch (oyster: a task's latest
  two prior-z episodes, cleared when the task collects again);
- twin Q critics without PEARL's separate V network (the SAC of the other agents).
"""
from __future__ import annotations

import ml_collections
import optax

from earjax.agents.base import (Agent, AgentSpec, ContextData, Method, ReplayData,
                               bool_problems, number_problems, positive_int_problems,
                               widths_problems)
from earjax.agents.pearl import learner
from earjax.agents.pearl.networks import PEARLNetworks, make_networks
from earjax.agents.sac import SAC_SECTIONS
from earjax.agents.sac import learner as sac_learner
from earjax.agents.sac.losses import make_losses
from earjax.networks import deterministic_action, sample_tanh_gaussian


def make_agent(config: ml_collections.ConfigDict, spec: AgentSpec) -> Agent:
  networks = make_networks(config, spec)
  p, s = config.pearl, config.sac
  losses = make_losses(networks.actor_apply, networks.critic_apply, spec.action_size,
                       spec.num_tasks, gamma=config.gamma, reward_scale=config.reward_scale,
                       policy_mean_reg=s.policy_mean_reg, policy_std_reg=s.policy_std_reg,
                       target_lte_noise=False, task_features=lambda batch: batch["z"])
  optimizer = optax.adam(config.learning_rate)
  sac_update = sac_learner.make_update(losses, optimizer, config.tau, config.max_grad_norm,
                                       s.update_order)

  def act(policy_params, obs, task_index, key, deterministic: bool):
    """The task's posterior mean (``deterministic``: evaluation), else each env's z
    (collection: obs [num_tasks x envs_per_task, o], task-major)."""
    if deterministic:
      z = policy_params["z_mean"][task_index]
    else:
      z = policy_params["z_behaviour"].reshape(obs.shape[0], -1)
    mean, log_std = networks.actor_apply(policy_params["actor"], obs, z)
    if deterministic:
      return deterministic_action(mean)
    return sample_tanh_gaussian(mean, log_std, key)[0]

  return Agent(
      name="pearl", networks=networks,
      init=lambda key: learner.init(networks, optimizer, key, spec.num_tasks,
                                    int(config.envs_per_task), s.per_task_alpha),
      act=act,
      policy_params=learner.policy_params,
      update=learner.make_update(networks, losses, optimizer, sac_update,
                                 float(p.kl_weight), config.max_grad_norm,
                                 float(p.prior_fraction)),
      best_items=lambda state: {"policy": learner.policy_params(state),
                                "encoder": state.encoder_params},
      parameter_health=learner.parameter_health,
      data=ReplayData(context=ContextData(per_task=int(p.context_per_task),
                                          exploring=lambda state: state.exploring)))


def config_section() -> ml_collections.ConfigDict:
  """The ``pearl`` section's defaults: the PEARL reference settings."""
  c = ml_collections.ConfigDict()
  c.latent_dim = 5
  c.kl_weight = 0.1
  c.encoder_hidden = (200, 200, 200)
  c.context_per_task = 100
  c.context_next_obs = False
  c.prior_fraction = 0.6     # oyster: 600 of every 1000 steps of a task (learner.py)
  return c


def validate_section(p: ml_collections.ConfigDict) -> list[str]:
  problems = number_problems("pearl", p, {"kl_weight": (lambda v: v >= 0, ">= 0"),
                                          "prior_fraction": (lambda v: 0 <= v <= 1,
                                                             "in [0, 1]")})
  problems += positive_int_problems("pearl", p, ("latent_dim", "context_per_task"))
  problems += widths_problems("pearl", p, "encoder_hidden")
  problems += bool_problems("pearl", p, ("context_next_obs",))
  return problems


METHODS = {"pearl": Method(make_networks, make_agent, SAC_SECTIONS + ("pearl",))}
CONFIG_SECTIONS = {"pearl": (config_section, validate_section)}
SHAPE_KEYS = ("pearl.latent_dim", "pearl.encoder_hidden", "pearl.context_next_obs")

__all__ = ["PEARLNetworks", "make_agent", "make_networks"]
