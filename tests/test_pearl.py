"""PEARL as the spec asks: the product of Gaussians and the KL term by hand, the critic's
gradient reaching the context encoder, the encoder buffer holding each exploring env's
latest epoch, the posterior narrowing as context grows, exact resume, bad values refused
in one line, and adaptation without gradient steps following the target on held-out
Point-Vel targets (issue 36's check, fast).

Everything runs on Point-Vel (tiny.py): nothing of MJX compiles here.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import agents
from earjax import comparison as compare
from earjax.adaptation import pearl as pearl_adaptation
from earjax.agents.pearl.networks import kl_to_prior, product_of_gaussians
from earjax.agents.sac.losses import make_losses
from earjax.config import validate
from earjax.run import Run
from earjax.training import Trainer, trainer_for
from tiny import (assert_resumed_run_equals_straight_one, sampled_point_vel, tiny_config,
                  train_with_production_compiler)

PEARL = {"agent": "pearl", "pearl.latent_dim": 2, "pearl.encoder_hidden": (8,),
         "pearl.context_per_task": 6}


def pearl_config(**changes):
  return tiny_config(**{**PEARL, **changes})


def test_product_of_gaussians_by_hand():
  # N(1, 1) x N(3, 1) -> precision 2: N(2, 1/2);  N(1, 1) x N(3, 4) -> precision 1.25:
  # variance 0.8, mean 0.8 (1/1 + 3/4) = 1.4.  Masked factors do not count; none at all
  # gives the prior N(0, 1).
  means = jnp.array([[[1.0], [3.0]], [[1.0], [3.0]]])
  variances = jnp.array([[[1.0], [1.0]], [[1.0], [4.0]]])
  mean, variance = product_of_gaussians(means, variances)
  np.testing.assert_allclose(mean[:, 0], [2.0, 1.4], rtol=1e-6)
  np.testing.assert_allclose(variance[:, 0], [0.5, 0.8], rtol=1e-6)
  mean, variance = product_of_gaussians(means, variances, jnp.array([[1.0, 0.0], [0.0, 0.0]]))
  np.testing.assert_allclose(mean[:, 0], [1.0, 0.0])
  np.testing.assert_allclose(variance[:, 0], [1.0, 1.0])


def test_kl_to_the_prior_by_hand():
  # 0.5 [(1 + 1 - 1 - log 1) + (0.5 + 0 - 1 - log 0.5)] = 0.5 (1 - 0.5 + log 2)
  kl = kl_to_prior(jnp.array([1.0, 0.0]), jnp.array([1.0, 0.5]))
  np.testing.assert_allclose(kl, 0.5 * (0.5 + np.log(2.0)), rtol=1e-6)
  np.testing.assert_allclose(kl_to_prior(jnp.zeros(3), jnp.ones(3)), 0.0, atol=1e-7)


def _batch(key, num_tasks=2, per_task=4, context=6, obs=2, act=1):
  keys = jax.random.split(key, 5)
  def fields(k, n):
    ks = jax.random.split(k, 3)
    return {"obs": jax.random.normal(ks[0], (num_tasks, n, obs)),
            "action": jax.random.uniform(ks[1], (num_tasks, n, act), minval=-1, maxval=1),
            "reward": jax.random.normal(ks[2], (num_tasks, n)),
            "next_obs": jax.random.normal(ks[0], (num_tasks, n, obs)) + 0.1,
            "discount": jnp.ones((num_tasks, n)),
            "task": jnp.broadcast_to(jnp.arange(num_tasks)[:, None], (num_tasks, n))}
  batch = {k: v.reshape((-1,) + v.shape[2:]) for k, v in fields(keys[0], per_task).items()}
  batch["context"] = fields(keys[1], context)
  return batch


def test_the_critic_gradient_trains_the_encoder():
  """The encoder's first Adam step is -lr g / (|g| + eps), g = d(critic loss)/d(encoder)
  through z (kl_weight 0): the critic's gradient, and nothing else, moves the encoder."""
  config = pearl_config(**{"pearl.kl_weight": 0.0, "sac.update_order": "critic_first"})
  spec = agents.AgentSpec(2, 1, 2)
  agent = agents.get("pearl").make_agent(config, spec)
  net = agent.networks
  state = agent.init(jax.random.PRNGKey(0))
  batch = _batch(jax.random.PRNGKey(1))
  key = jax.random.PRNGKey(2)
  new, metrics = jax.jit(agent.update)(state, batch, key)
  chex.assert_shape(new.z_mean, (2, 2))
  chex.assert_shape(new.z_behaviour, (2, config.envs_per_task, 2))
  chex.assert_shape(new.exploring, (2, config.envs_per_task))

  losses = make_losses(net.actor_apply, net.critic_apply, 1, 2, gamma=config.gamma,
                       reward_scale=config.reward_scale, policy_mean_reg=0.0,
                       policy_std_reg=0.0, target_lte_noise=False,
                       task_features=lambda b: b["z"])
  z_key, _, _, sac_key = jax.random.split(key, 4)   # learner.make_update's keys
  noise = jax.random.normal(z_key, (2, 2))
  rl = {k: v for k, v in batch.items() if k != "context"}

  def critic_loss(encoder_params):
    mean, variance = net.posterior(encoder_params, batch["context"])
    z = mean + jnp.sqrt(variance) * noise
    s = state.sac
    return losses.critic_loss(s.critic_params, s.actor_params, s.target_critic_params,
                              s.log_alpha, dict(rl, z=z[rl["task"]]),
                              jax.random.split(sac_key)[0])

  grad = jax.jit(jax.grad(critic_loss))(state.encoder_params)
  step = jax.tree.map(lambda a, b: a - b, new.encoder_params, state.encoder_params)
  g = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grad)])
  d = np.concatenate([np.ravel(x) for x in jax.tree.leaves(step)])
  assert np.abs(g).max() > 1e-4
  # Adam's first step, bias-corrected: -lr g / (|g| + eps), eps = 1e-8 (|g| < 10: no clip).
  np.testing.assert_allclose(d, -config.learning_rate * g / (np.abs(g) + 1e-8), atol=2e-7)
  assert np.isfinite(float(metrics["encoder_loss"]))


def test_the_context_buffer_holds_each_exploring_envs_latest_epoch():
  """oyster's encoder buffer: after the random-action epoch (which fills every slot), an
  epoch's transitions replace the context slots of the envs that explored in it (the
  learner's ``exploring`` before the epoch) and no other; the replay gets them all."""
  trainer = Trainer(Run.from_config(pearl_config(**{"pearl.prior_fraction": 0.5})))
  c = trainer.config
  chunk = c.envs_per_task * c.env_steps_per_epoch
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  chex.assert_shape(state.context.data["obs"], (2, chunk, 2))
  assert state.replay.data["obs"].shape[1] == c.replay_capacity
  seen = set()
  for epoch in range(6):
    before = jax.tree.map(np.asarray, (state.context.data, state.replay.insert_pos,
                                       state.learner.exploring))
    state, _ = trainer.epoch(state)
    context, pos, exploring = before
    fresh = np.repeat(exploring | (epoch < c.random_epochs), c.env_steps_per_epoch, 1)
    slots = (pos + np.arange(chunk)) % c.replay_capacity
    newest = np.asarray(state.replay.data["obs"])[:, slots]
    want = np.where(fresh[..., None], newest, context["obs"])
    np.testing.assert_array_equal(np.asarray(state.context.data["obs"]), want)
    seen.add(tuple(fresh[:, ::c.env_steps_per_epoch].ravel()))
  assert len(seen) > 2          # the exploring envs changed between epochs


@pytest.mark.parametrize("key, value, line", [
    ("latent_dim", 0, "pearl.latent_dim must be a positive integer, got 0"),
    ("kl_weight", -0.1, "pearl.kl_weight must be a number >= 0, got -0.1"),
    ("context_per_task", 0, "pearl.context_per_task must be a positive integer, got 0"),
    ("encoder_hidden", (), "pearl.encoder_hidden must be a non-empty list of positive "
                           "integers, got ()")])
def test_bad_pearl_values_are_refused_in_one_line(key, value, line):
  assert validate(pearl_config(**{f"pearl.{key}": value})) == [line]


def test_a_resumed_run_equals_a_straight_one_bitwise_and_is_traced_once(tmp_path, programs):
  del programs
  assert_resumed_run_equals_straight_one(tmp_path, **PEARL, seed=4)
  assert trainer_for(pearl_config(seed=4)).epoch_traces == 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """PEARL on sampled Point-Vel targets, 100 epochs of 100 gradient steps on batches of 32
  per task, trained by the CLI compiled as in production (about a minute alone)."""
  config = sampled_point_vel("pearl", epochs=100)
  config.reward_scale = 5.0
  config.batch_size_per_task = 32
  config.pearl.encoder_hidden = (64, 64)
  workdir = str(tmp_path_factory.mktemp("pearl"))
  train_with_production_compiler(config, workdir)
  return pearl_adaptation.load(workdir)


def test_adaptation_follows_the_target_on_held_out_targets(trained):
  """Issue 36's check, fast: on the 5 held-out targets (0.54 - 1.19 m/s), 3 seeds each, the
  posterior mean after 3 context episodes runs at velocities whose slope against the
  target is >= 0.7 (the unadapted prior mean's is 0: it ignores the target) and its mean
  |v - target| is under half the unadapted one.  (Measured 2026-12-07, seeds 0 and 1:
  slopes 1.10 and 0.92; the stricter "every target improved" held for seed 1 and missed
  one target by 0.015 m/s for seed 0: MJX's check in RESULTS.md keeps it.)  The posterior
  narrows as the context grows (std 1 with none)."""
  env = trained.env
  record = compare.run_method("pearl", trained.workdir, env.adapt_tasks, env.adapt_task_names,
                              seeds=3, key=jax.random.PRNGKey(0), budget=600, eval_episodes=3)
  out = compare.tracking(record)
  targets, before, after = (np.array(out[k]) for k in ("targets", "before", "after"))
  assert abs(out["slope_before"]) < 0.1 and out["slope_after"] >= compare.TRACKING_SLOPE
  assert np.abs(after - targets).mean() < 0.5 * np.abs(before - targets).mean()
  rows = np.repeat(env.adapt_tasks[:2], 2, axis=0)
  adapted = pearl_adaptation.adapt(trained, rows, jax.random.PRNGKey(1), context_episodes=3,
                                   eval_episodes=2)
  chex.assert_shape(adapted["eval_return"], (4, 4))
  chex.assert_shape(adapted["context_return"], (4, 3))
  np.testing.assert_array_equal(adapted["env_steps"], [0, 200, 400, 600])
  std = adapted["posterior_std"]
  np.testing.assert_allclose(std[:, 0], 1.0)
  assert (np.diff(std, axis=1) < 0).all()
  with pytest.raises(ValueError, match="less than one context episode"):
    compare.run_method("pearl", trained.workdir, rows[:1], ("vel1",), seeds=1,
                       key=jax.random.PRNGKey(0), budget=199, eval_episodes=1)


def test_a_run_of_another_agent_is_refused_in_one_line(tiny_ear_run):
  with pytest.raises(ValueError, match="PEARL.s adaptation needs a run of agent pearl; .* trained 'ear_sac'"):
    pearl_adaptation.load(tiny_ear_run)
