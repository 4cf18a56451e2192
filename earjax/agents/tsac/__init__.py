"""TSAC: a shared policy plus a task-specific action correction (Feng et al., arXiv
2404.05950), as an earjax agent.

What the paper fixes (its abstract; the full text, equations and code cannot be read here,
``../shared/METHOD_NOTES.md``): a shared policy (SP) maximises the tasks' dense guiding
rewards; an action-correction policy (ACP), trained on goal-oriented sparse rewards,
corrects the SP's action per task; the sparse return gets a "virtual expected budget",
i.e. a constraint, removed with a Lagrangian multiplier.  Everything else below is
earjax's choice (config section ``tsac``), numbered T1-T7 for the code and the tests:

- T1  a_sp ~ pi_sp(. | s, k): the OHE-SAC actor (``ohe_sac.OHEActor``) on the one-hot task k.
- T2  d ~ pi_acp(. | s, k, a_sp), a tanh-Gaussian residual; the final action is
      a = clip(a_sp + beta d, -1, 1), beta = ``tsac.correction_scale``.
- T3  dense twin critics Q_d(s, a, k) on the env reward r of the executed action:
      y_d = r + gamma (1 - done) (min Q_d'(s', a') - alpha_sp log pi_sp(a'_sp | s')).
- T4  sparse twin critics Q_s(s, a, k) on r_s = the env's per-step ``success`` (0/1):
      y_s = r_s + gamma (1 - done) (min Q_s'(s', a') - alpha_acp log pi_acp(d' | ...)).
- T5  SP: minimise E[alpha_sp log pi_sp(a_sp | s) - min Q_d(s, a_sp)].
- T6  ACP: maximise the Lagrangian of "max J_d subject to J_s >= b":
      minimise E[alpha_acp log pi_acp(d | ...) - (min Q_d(s, a) + lambda min Q_s(s, a))
      / (1 + lambda)], a_sp held fixed (the 1 + lambda keeps the loss's scale).
- T7  dual ascent on lambda in [0, ``lagrange_max``] (projected gradient step on the
      Lagrangian): lambda <- clip(lambda + eta (b - mean min Q_s(s, a)), 0, lambda_max),
      eta = ``lagrange_lr``: lambda rises while the budget is not met, falls once it is.
      The budget b (``budget_reference``): "max", ``budget_fraction`` / (1 - gamma), the
      discounted sparse return of succeeding on that fraction of all steps (the first
      version: unreachable on the velocity families, where lambda climbed past 1,000,
      issue 32); "shared_policy", ``budget_fraction`` x mean min Q_s(s, a_sp), a multiple
      of the success the SP's own action already has (reachable at <= 1).

Two temperatures (SP, ACP), each tuned to entropy -action_size as in SAC.  One update:
critics, SP, ACP (against the updated critics), temperatures, lambda, Polyak targets.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from earjax.agents.base import Agent, AgentSpec, Method, ReplayData, number_problems
from earjax.agents.ohe_sac import OHEActor
from earjax.agents.sac import network_functions
from earjax.agents.tsac import learner
from earjax.agents.tsac.learner import TSACNetworks
from earjax.agents.tsac.losses import final_action
from earjax.networks import MLP, TwinCritic, gaussian_head


class CorrectionActor(nn.Module):
  """pi_acp(d | s, one-hot task, a_sp) (T2): one MLP on the concatenation."""
  action_size: int
  hidden_sizes: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, task_onehot: jax.Array,
               sp_action: jax.Array) -> tuple[jax.Array, jax.Array]:
    output = MLP(self.hidden_sizes, 2 * self.action_size)(
        jnp.concatenate([obs, task_onehot, sp_action], -1))
    return gaussian_head(output)


def make_networks(config, spec: AgentSpec) -> TSACNetworks:
  """The SP actor and the (dense, sparse) critics wrapped as the SAC agents' are
  (``sac.network_functions``), and the correction actor."""
  n = config.network
  sac = network_functions(OHEActor(spec.action_size, tuple(n.actor_hidden)),
                          TwinCritic(tuple(n.critic_hidden)), spec)
  acp = CorrectionActor(spec.action_size, tuple(n.actor_hidden))
  obs = jnp.zeros((1, spec.observation_size))
  action = jnp.zeros((1, spec.action_size))
  task = jnp.zeros((1, spec.num_tasks))
  return TSACNetworks(
      sp_init=sac["actor_init"], sp_apply=sac["actor_apply"],
      acp_init=lambda key: acp.init(key, obs, task, action)["params"],
      acp_apply=lambda params, obs, onehot, a_sp: acp.apply({"params": params}, obs,
                                                            onehot, a_sp),
      critic_init=sac["critic_init"], critic_apply=sac["critic_apply"],
      correction_scale=float(config.tsac.correction_scale))


def make_agent(config, spec: AgentSpec) -> Agent:
  networks = make_networks(config, spec)
  t = config.tsac
  optimizer = optax.adam(config.learning_rate)

  def act(policy_params, obs, task_index, key, deterministic: bool):
    onehot = jax.nn.one_hot(task_index, spec.num_tasks)
    return final_action(networks, policy_params, obs, onehot, key, deterministic)[0]

  return Agent(
      name="tsac", networks=networks,
      init=lambda key: learner.init(networks, optimizer, key, float(t.lagrange_init)),
      act=act,
      policy_params=learner.policy_params,
      update=learner.make_update(
          networks, optimizer, spec, gamma=config.gamma, tau=config.tau,
          reward_scale=config.reward_scale, max_grad_norm=config.max_grad_norm,
          budget_reference=t.budget_reference, budget_fraction=float(t.budget_fraction),
          lagrange_lr=float(t.lagrange_lr), lagrange_max=float(t.lagrange_max)),
      best_items=lambda state: {"policy": learner.policy_params(state)},
      parameter_health=learner.parameter_health,
      data=ReplayData(extra_fields=("success",)))


def config_section() -> ml_collections.ConfigDict:
  """The ``tsac`` section's defaults (earjax's choices; the paper's are not readable)."""
  c = ml_collections.ConfigDict()
  c.correction_scale = 0.5   # beta of T2: the largest correction, in action units
  c.budget_reference = "max"  # T7's b: "max" (x 1 / (1 - gamma)) or "shared_policy"
  c.budget_fraction = 0.5    # b of T7 in units of its reference
  c.lagrange_lr = 1e-3       # eta of T7
  c.lagrange_init = 1.0      # lambda at the start
  c.lagrange_max = 1e6       # lambda's bound (1e6: in effect none, the first version)
  return c


BUDGET_REFERENCES = ("max", "shared_policy")


def validate_section(t: ml_collections.ConfigDict) -> list[str]:
  problems = number_problems("tsac", t, {
      "correction_scale": (lambda v: 0 < v <= 2, "in (0, 2]"),
      "lagrange_lr": (lambda v: v > 0, "> 0"),
      "lagrange_init": (lambda v: v >= 0, ">= 0"),
      "lagrange_max": (lambda v: v > 0, "> 0")})
  if t.budget_reference not in BUDGET_REFERENCES:
    problems.append(f"tsac.budget_reference must be one of {', '.join(BUDGET_REFERENCES)}, "
                    f"got {t.budget_reference!r}")
  else:
    top = 1 if t.budget_reference == "max" else 2
    problems += number_problems("tsac", t, {
        "budget_fraction": (lambda v: 0 <= v <= top, f"in [0, {top}]")})
  if not problems and t.lagrange_init > t.lagrange_max:
    problems.append(f"tsac.lagrange_init ({t.lagrange_init}) exceeds tsac.lagrange_max "
                    f"({t.lagrange_max})")
  return problems


METHODS = {"tsac": Method(make_networks, make_agent, ("network", "tsac"))}
CONFIG_SECTIONS = {"tsac": (config_section, validate_section)}
