"""One PEARL gradient step (Rakelly et al. 2019, Algorithm 1, lines 9-13) on the SAC
agents' update.

The encoder's gradient is that of the critic loss through z (Algorithm 1 line 12: "the
critic's gradient trains the encoder") plus ``kl_weight`` times the KL of every task's
posterior to the prior (Eq. 4, summed over the meta-batch as oyster does).  The critic
loss is the shared SAC loss (``sac.losses``) with z in place of the one-hot task, taken
at the critics, actor and temperature before this step with the key SAC's critic step
uses: the critics' own loss but for one thing, under ``sac.update_order=alpha_first``
the critics then descend it at the temperature of after its step.  Then one step of the shared SAC update
(``sac.learner``) on the batch with z held fixed: actor and temperature never move the
encoder (oyster detaches z for the policy loss).

Between updates the state keeps, per task, the posterior mean of the latest context
batch, and per env the behaviour z of the coming epoch and whether it explores: with
probability ``prior_fraction`` an env acts with a draw from the prior N(0, I) (it
explores, and its epoch's transitions replace its slots of the context buffer,
``agents.ContextData``), else with its own draw from q(z | c) of the step's context.
oyster collects 600 of every 1000 steps of a task with z from the prior (its 400
``num_steps_prior``, then ``clear_z`` before the first of the 600 posterior steps), and
only the 400 enter the encoder buffer; here every exploring epoch does, so the contexts
the encoder, the critics and the actor learn from are task-agnostic behaviour, the first
context of every adaptation.  The behaviour policy acts with the env's z, evaluation with
the task's posterior mean.  Before the first update every env explores (mean 0, prior
draws).
"""
from __future__ import annotations

from typing import Any, Callable

from flax import struct
import jax
import jax.numpy as jnp
import optax

from earjax.agents.pearl.networks import PEARLNetworks, kl_to_prior
from earjax.agents.sac import learner as sac_learner
from earjax.agents.sac.losses import SACLosses

Params = Any


@struct.dataclass
class PEARLState:
  sac: sac_learner.SACState   # actor and critics on (obs, z), temperature, targets
  encoder_params: Params
  encoder_opt: optax.OptState
  z_mean: jax.Array           # [num_tasks, latent]: posterior means of the latest context
  z_behaviour: jax.Array      # [num_tasks, envs_per_task, latent]: each env's z
  exploring: jax.Array        # [num_tasks, envs_per_task] bool: its z is the prior's


def init(networks: PEARLNetworks, optimizer: optax.GradientTransformation, key: jax.Array,
         num_tasks: int, envs_per_task: int, per_task_alpha: bool) -> PEARLState:
  sac_key, encoder_key, z_key = jax.random.split(key, 3)
  encoder_params = networks.encoder_init(encoder_key)
  return PEARLState(
      sac=sac_learner.init(networks, optimizer, sac_key, num_tasks, per_task_alpha),
      encoder_params=encoder_params, encoder_opt=optimizer.init(encoder_params),
      z_mean=jnp.zeros((num_tasks, networks.latent_dim)),
      z_behaviour=jax.random.normal(z_key, (num_tasks, envs_per_task, networks.latent_dim)),
      exploring=jnp.ones((num_tasks, envs_per_task), bool))


def policy_params(state: PEARLState) -> dict:
  """What acting needs: the actor, each task's posterior mean and each env's z."""
  return {"actor": state.sac.actor_params, "z_mean": state.z_mean,
          "z_behaviour": state.z_behaviour}


def parameter_health(state: PEARLState) -> dict[str, jax.Array]:
  return {**sac_learner.parameter_health(state.sac),
          **sac_learner.finite_by_network(state.encoder_params, "encoder")}


def make_update(networks: PEARLNetworks, losses: SACLosses,
                optimizer: optax.GradientTransformation, sac_update: Callable,
                kl_weight: float, max_grad_norm: float, prior_fraction: float):
  """``update(state, batch, key) -> (state, metrics)``; ``batch["context"]`` holds
  [num_tasks, context, ...] fields of the context buffer (``agents.ContextData``)."""

  def update(state: PEARLState, batch, key):
    batch = dict(batch)
    context = batch.pop("context")
    z_key, prior_key, choice_key, sac_key = jax.random.split(key, 4)
    posterior_key = jax.random.fold_in(prior_key, 1)
    critic_key, _ = sac_learner.update_keys(sac_key)   # the SAC step's critic key
    noise = jax.random.normal(z_key, state.z_mean.shape)
    sac = state.sac

    def encoder_loss(encoder_params):
      mean, variance = networks.posterior(encoder_params, context)     # [K, d]
      z = mean + jnp.sqrt(variance) * noise                             # reparameterised
      critic = losses.critic_loss(sac.critic_params, sac.actor_params,
                                  sac.target_critic_params, sac.log_alpha,
                                  dict(batch, z=z[batch["task"]]), critic_key)
      kl = kl_to_prior(mean, variance).sum()
      return critic + kl_weight * kl, (mean, variance, z, kl)

    (loss, (mean, variance, z, kl)), grads, encoder_ok = sac_learner.actor_gradients(
        encoder_loss, state.encoder_params, max_grad_norm=max_grad_norm, prefix="encoder",
        has_aux=True)
    encoder_params, encoder_opt = sac_learner.apply_gradients(
        optimizer, state.encoder_params, state.encoder_opt, grads)
    z = jax.lax.stop_gradient(z)
    sac, metrics = sac_update(sac, dict(batch, z=z[batch["task"]]), sac_key)
    finite = {**encoder_ok, **metrics["finite"]}
    metrics = dict(metrics, finite=finite, encoder_loss=loss, kl=kl,
                   posterior_std=jnp.sqrt(variance).mean())
    shape = state.z_behaviour.shape          # [num_tasks, envs_per_task, latent]
    exploring = jax.random.bernoulli(choice_key, prior_fraction, shape[:2])
    posterior_draw = mean[:, None] + jnp.sqrt(variance)[:, None] * jax.random.normal(
        posterior_key, shape)
    behaviour_z = jnp.where(exploring[..., None], jax.random.normal(prior_key, shape),
                            posterior_draw)
    return PEARLState(sac=sac, encoder_params=encoder_params, encoder_opt=encoder_opt,
                      z_mean=mean, z_behaviour=behaviour_z,
                      exploring=exploring), metrics

  return update
