"""MAML for continuous control (Finn et al. 2017), as an earjax agent: a Gaussian MLP
policy meta-learned so that ``inner_steps`` policy-gradient steps on a task's episodes
adapt it to that task.

Networks in ``networks.py``, the objectives in ``losses.py``, the meta-iteration in
``learner.py``.  MAML is on-policy: its agent's data is ``EpisodeData`` and its
``update`` a whole meta-iteration, so the generic on-policy epoch
(``training.epochs.on_policy``) is that iteration: its rollouts, all tasks and episodes
in one vmapped ``acting.rollout``, and the update run in one jit.  The job, checkpoints
and evaluation are the other agents'.  Adapting to a new task (the inner steps on that
task's rollouts) is ``earjax.adaptation.maml``.

Config section ``maml`` (``--config.maml.<key>``), defaults = tristandeleu/pytorch-
maml-rl's HalfCheetah-Vel config where it has one: ``hidden`` 64 x 64 (tanh),
``episodes_per_task`` 20 (its fast-batch-size), ``inner_steps`` 1, ``inner_lr`` 0.1,
``first_order`` False (second order), ``gae_lambda`` 1.0, and the run's ``gamma``.

The outer step: ``outer`` "adam" (the default, what earlier runs did): Adam at the run's
``learning_rate`` on the exact meta-gradient, clipped to ``max_grad_norm``; "trpo": the
references' TRPO step (pytorch-maml-rl, rainx0r/metaworld-algorithms; ``trpo.py``:
``max_kl`` 0.01, ``cg_iters`` 10, ``cg_damping`` 1e-5, ``ls_steps`` 15,
``backtrack_ratio`` 0.8), every line-search candidate evaluated so the meta-iteration
stays one jitted function with a fixed amount of work (WORKSPACE.md, "PEARL and
MAML").  The meta-batch: ``meta_batch`` tasks drawn from the run's training tasks at
every iteration (pytorch-maml-rl: 40 drawn from U(0, 2); here from the run's sampled
targets, ``env.task_interval``), or with 0 (the default, what earlier runs did) every
training task.  The replay-related keys (``envs_per_task``,
``env_steps_per_epoch``, ``grad_steps_per_epoch``, ``batch_size_per_task``,
``replay_capacity``, ``random_epochs``, ``min_replay_size``) do not apply.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import ml_collections
import optax

from earjax.agents.base import (Agent, AgentSpec, EpisodeData, Method, bool_problems,
                               number_problems, positive_int_problems, widths_problems)
from earjax.agents.maml import learner
from earjax.agents.maml import trpo
from earjax.agents.maml.networks import MAMLNetworks, make_networks


def make_agent(config: ml_collections.ConfigDict, spec: AgentSpec) -> Agent:
  networks = make_networks(config, spec)
  m = config.maml
  optimizer = optax.adam(config.learning_rate)

  def act(params, obs, task_index, key, deterministic: bool):
    """The meta-learned (unadapted) policy: its mean, or a sample, clipped to [-1, 1]."""
    del task_index
    action = (networks.actor_apply(params, obs)[0] if deterministic
              else networks.sample(params, obs, key))
    return jnp.clip(action, -1.0, 1.0)

  def init(key):
    params = networks.actor_init(key)
    return learner.MAMLState(params=params, opt_state=optimizer.init(params))

  return Agent(
      name="maml", networks=networks, init=init, act=act,
      policy_params=lambda state: state.params,
      best_items=lambda state: {"policy": state.params},
      parameter_health=lambda state: {"policy": learner.finite_tree(state.params)},
      update=learner.make_meta_update(
          networks, optimizer, episodes_per_task=int(m.episodes_per_task),
          inner_steps=int(m.inner_steps), inner_lr=float(m.inner_lr),
          first_order=bool(m.first_order), gamma=config.gamma,
          gae_lambda=float(m.gae_lambda), max_grad_norm=config.max_grad_norm,
          trpo_config=None if m.outer == "adam" else trpo.TRPOConfig(
              max_kl=float(m.max_kl), cg_iters=int(m.cg_iters),
              cg_damping=float(m.cg_damping), ls_steps=int(m.ls_steps),
              backtrack_ratio=float(m.backtrack_ratio))),
      data=EpisodeData(int(m.episodes_per_task) * (int(m.inner_steps) + 1),
                       tasks_per_update=int(m.meta_batch)))


def config_section() -> ml_collections.ConfigDict:
  """The ``maml`` section's defaults (pytorch-maml-rl's HalfCheetah-Vel config)."""
  c = ml_collections.ConfigDict()
  c.hidden = (64, 64)
  c.episodes_per_task = 20
  c.inner_steps = 1
  c.inner_lr = 0.1
  c.first_order = False
  c.gae_lambda = 1.0
  c.meta_batch = 0           # tasks per meta-iteration, drawn from the run's; 0: all
  c.outer = "adam"           # or "trpo", the references' (its settings: trpo.TRPOConfig)
  for key, value in dataclasses.asdict(trpo.TRPOConfig()).items():
    c[key] = value
  return c


def validate_section(m: ml_collections.ConfigDict) -> list[str]:
  problems = number_problems("maml", m, {"inner_lr": (lambda v: v > 0, "> 0"),
                                         "gae_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]")})
  problems += number_problems("maml", m, {
      "max_kl": (lambda v: v > 0, "> 0"), "cg_damping": (lambda v: v >= 0, ">= 0"),
      "backtrack_ratio": (lambda v: 0 < v < 1, "in (0, 1)")})
  problems += positive_int_problems("maml", m, ("episodes_per_task", "inner_steps",
                                                "cg_iters", "ls_steps"))
  if m.outer not in ("adam", "trpo"):
    problems.append(f"maml.outer must be one of adam, trpo, got {m.outer!r}")
  if isinstance(m.meta_batch, bool) or not isinstance(m.meta_batch, int) or m.meta_batch < 0:
    problems.append(f"maml.meta_batch must be an integer >= 0, got {m.meta_batch!r}")
  problems += widths_problems("maml", m, "hidden")
  problems += bool_problems("maml", m, ("first_order",))
  return problems


METHODS = {"maml": Method(make_networks, make_agent, ("maml",))}
CONFIG_SECTIONS = {"maml": (config_section, validate_section)}
SHAPE_KEYS = ("maml.hidden",)

__all__ = ["MAMLNetworks", "make_agent", "make_networks"]
