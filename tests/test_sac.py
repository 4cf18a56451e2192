"""Multi-task SAC (earjax.agents.sac): the losses against a NumPy recomputation on a
tiny EAR network, and the update's two orders against the same steps written out.

The NumPy reference uses the same Gaussian draws as the losses: each policy sample
splits its key into (action_key, noise_key), eps ~ N(0, 1) from action_key, LTE noise
n ~ N(0, 1) from noise_key.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from earjax.agents.sac import learner
from earjax.agents.sac import losses
from tiny import tiny_networks

OBS, ACT, TASKS, BATCH, LTE = 3, 2, 2, 4, 3
NOISE_STD, GAMMA, REWARD_SCALE, REG = 0.5, 0.9, 2.0, 1e-3
TINY = dict(actor_hidden=(3,), critic_hidden=(3,), state_encoder_hidden=(3,),
            task_encoder_hidden=(3,), lse_dim=2, lte_dim=LTE, lte_noise_std=NOISE_STD)
LOSS_OPTIONS = dict(gamma=GAMMA, reward_scale=REWARD_SCALE, policy_mean_reg=REG,
                    policy_std_reg=REG, target_lte_noise=True)
KEY = jax.random.PRNGKey(42)


def randomized(params, key, scale=0.7):
  """Every parameter replaced by scale * N(0, 1), so no layer is near-silent."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([scale * jax.random.normal(k, x.shape)
                            for k, x in zip(keys, leaves)])


def make(target_lte_noise=True, **overrides):
  nets = tiny_networks("ear_sac", OBS, ACT, TASKS, **{**TINY, **overrides})
  sac = losses.make_losses(nets.actor_apply, nets.critic_apply, ACT, TASKS,
                           **{**LOSS_OPTIONS, "target_lte_noise": target_lte_noise})
  return nets, sac


@pytest.fixture(scope="module")
def setup():
  nets, sac = make()

  @jax.jit
  def params_and_batch(key):
    keys = jax.random.split(key, 9)
    params = {"actor": randomized(nets.actor_init(keys[0]), keys[1]),
              "critic": randomized(nets.critic_init(keys[2]), keys[3]),
              "target": randomized(nets.critic_init(keys[4]), keys[5])}
    batch = {"obs": jax.random.normal(keys[6], (BATCH, OBS)),
             "action": jnp.tanh(jax.random.normal(keys[7], (BATCH, ACT))),
             "reward": jnp.array([1.0, -0.5, 0.25, 2.0]),
             "next_obs": jax.random.normal(keys[8], (BATCH, OBS)),
             "discount": jnp.array([1.0, 0.0, 1.0, 1.0]),
             "task": jnp.array([0, 1, 1, 0], jnp.int32)}
    return params, batch

  return (nets, sac) + params_and_batch(jax.random.PRNGKey(0))


# ----- NumPy reference (float64) -----

def as_np(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def np_mlp(layers, x):
  layers = [layers[f"Dense_{i}"] for i in range(len(layers))]
  for layer in layers[:-1]:
    x = np.maximum(x @ layer["kernel"] + layer["bias"], 0.0)
  return x @ layers[-1]["kernel"] + layers[-1]["bias"]


def np_normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_policy(actor, obs, task, key, noisy):
  """(action, log pi, mean, log_std) of the EAR actor for one key, as the losses draw."""
  action_key, noise_key = jax.random.split(key)
  onehot = np.eye(TASKS)[np.asarray(task)]
  lse = np_normalize(np_mlp(actor["state_encoder"]["MLP_0"], np.asarray(obs, np.float64)))
  lte = np_normalize(np_mlp(actor["task_encoder"]["MLP_0"], onehot))
  if noisy:
    noise = np.asarray(jax.random.normal(noise_key, (len(obs), LTE)), np.float64)
    lte = np_normalize(lte + NOISE_STD * noise)
  out = np_mlp(actor["action_decoder"]["MLP_0"], np.concatenate([lse, lte], -1))
  mean, log_std = out[:, :ACT], np.clip(out[:, ACT:], -20.0, 2.0)
  eps = np.asarray(jax.random.normal(action_key, (len(obs), ACT)), np.float64)
  u = mean + np.exp(log_std) * eps
  log_prob = np.sum(-0.5 * eps**2 - log_std - 0.5 * np.log(2 * np.pi)
                    - np.log(1.0 - np.tanh(u)**2), -1)
  return np.tanh(u), log_prob, mean, log_std


def np_q(critic, obs, action, task):
  x = np.concatenate([np.asarray(obs, np.float64), action, np.eye(TASKS)[np.asarray(task)]],
                     -1)
  twins = [jax.tree.map(lambda leaf, i=i: leaf[i], critic["ensemble"]["MLP_0"])
           for i in range(2)]
  return np.stack([np_mlp(twin, x)[:, 0] for twin in twins])


def np_alpha_loss(actor, log_alpha, batch, noisy):
  _, log_prob, _, _ = np_policy(actor, batch["obs"], batch["task"], KEY, noisy)
  per_sample = np.broadcast_to(log_alpha, (TASKS,))[np.asarray(batch["task"])]
  return -np.mean(per_sample * (log_prob - ACT))


def np_critic_loss(params, log_alpha, batch, noisy):
  """``noisy``: LTE noise in the target action a' (``target_lte_noise``)."""
  p = as_np(params)
  next_action, next_log_prob, _, _ = np_policy(p["actor"], batch["next_obs"],
                                               batch["task"], KEY, noisy)
  next_q = np_q(p["target"], batch["next_obs"], next_action, batch["task"]).min(0)
  alpha = np.exp(np.broadcast_to(log_alpha, (TASKS,))[np.asarray(batch["task"])])
  target = (REWARD_SCALE * np.asarray(batch["reward"]) + GAMMA * np.asarray(
      batch["discount"]) * (next_q - alpha * next_log_prob))
  q = np_q(p["critic"], batch["obs"], np.asarray(batch["action"], np.float64),
           batch["task"])
  return np.mean((q[0] - target)**2) + np.mean((q[1] - target)**2)


def np_actor_loss(params, log_alpha, batch, noisy, reg=REG):
  p = as_np(params)
  action, log_prob, mean, log_std = np_policy(p["actor"], batch["obs"], batch["task"],
                                              KEY, noisy)
  q = np_q(p["critic"], batch["obs"], action, batch["task"]).min(0)
  alpha = np.exp(np.broadcast_to(log_alpha, (TASKS,))[np.asarray(batch["task"])])
  return (np.mean(alpha * log_prob - q) + reg * np.mean(mean**2)
          + reg * np.mean(log_std**2))


# ----- tests -----

LOG_ALPHAS = [np.float32(0.3), np.array([0.1, -0.4], np.float32)]


@pytest.mark.parametrize("log_alpha", LOG_ALPHAS, ids=["shared", "per_task"])
def test_losses_match_numpy(setup, log_alpha):
  nets, sac, params, batch = setup
  log_alpha = jnp.asarray(log_alpha)
  np.testing.assert_allclose(
      sac.alpha_loss(log_alpha, params["actor"], batch, KEY),
      np_alpha_loss(as_np(params["actor"]), np.asarray(log_alpha), batch, True), rtol=1e-4)
  np.testing.assert_allclose(
      sac.critic_loss(params["critic"], params["actor"], params["target"], log_alpha,
                      batch, KEY),
      np_critic_loss(params, np.asarray(log_alpha), batch, True), rtol=1e-4)
  np.testing.assert_allclose(
      sac.actor_loss(params["actor"], params["critic"], log_alpha, batch, KEY),
      np_actor_loss(params, np.asarray(log_alpha), batch, True), rtol=1e-4)


def test_target_lte_noise_switch(setup):
  _, _, params, batch = setup
  _, clean_target = make(target_lte_noise=False)
  log_alpha = jnp.float32(0.3)
  loss = clean_target.critic_loss(params["critic"], params["actor"], params["target"],
                                  log_alpha, batch, KEY)
  np.testing.assert_allclose(loss, np_critic_loss(params, 0.3, batch, noisy=False),
                             rtol=1e-4)
  assert abs(float(loss) - np_critic_loss(params, 0.3, batch, noisy=True)) > 1e-3


def test_regularisers_are_the_weights_given(setup):
  nets, _, params, batch = setup
  unregularised = losses.make_losses(nets.actor_apply, nets.critic_apply, ACT, TASKS,
                                     **{**LOSS_OPTIONS, "policy_mean_reg": 0.0,
                                        "policy_std_reg": 0.0})
  np.testing.assert_allclose(
      unregularised.actor_loss(params["actor"], params["critic"], 0.3, batch, KEY),
      np_actor_loss(params, 0.3, batch, True, reg=0.0), rtol=1e-4)


def test_release_mode_drops_the_noise(setup):
  _, _, params, batch = setup
  _, release = make(release_noise_bug=True)
  log_alpha = jnp.float32(0.3)
  critic = release.critic_loss(params["critic"], params["actor"], params["target"],
                               log_alpha, batch, KEY)
  actor = release.actor_loss(params["actor"], params["critic"], log_alpha, batch, KEY)
  for loss, reference in ((critic, np_critic_loss), (actor, np_actor_loss)):
    clean = reference(params, 0.3, batch, noisy=False)
    np.testing.assert_allclose(loss, clean, rtol=1e-4)
    assert abs(clean - reference(params, 0.3, batch, noisy=True)) > 1e-3


def test_per_task_alpha_gradient(setup):
  _, sac, params, batch = setup
  grad = jax.grad(sac.alpha_loss)(jnp.zeros(TASKS), params["actor"], batch, KEY)
  _, log_prob, _, _ = np_policy(as_np(params["actor"]), batch["obs"], batch["task"], KEY,
                                True)
  task = np.asarray(batch["task"])
  expected = [-np.sum(log_prob[task == k] - ACT) / BATCH for k in range(TASKS)]
  np.testing.assert_allclose(grad, expected, rtol=1e-4)
  np.testing.assert_allclose(losses.initial_log_alpha(TASKS), np.zeros(TASKS))
  assert losses.initial_log_alpha().shape == ()


def nonzero(tree):
  return any(np.abs(np.asarray(leaf)).max() > 0 for leaf in jax.tree.leaves(tree))


def test_gradients_reach_only_the_differentiated_argument(setup):
  _, sac, params, batch = setup

  @jax.jit
  def all_gradients(params, log_alpha):
    actor = jax.grad(sac.actor_loss, argnums=(0, 1, 2))(
        params["actor"], params["critic"], log_alpha, batch, KEY)
    critic = jax.grad(sac.critic_loss, argnums=(0, 1, 2, 3))(
        params["critic"], params["actor"], params["target"], log_alpha, batch, KEY)
    alpha = jax.grad(sac.alpha_loss, argnums=(0, 1))(log_alpha, params["actor"], batch,
                                                     KEY)
    return actor, critic, alpha

  actor_grads, critic_grads, alpha_grads = all_gradients(params, jnp.float32(0.3))
  assert all(nonzero(actor_grads[0][name])
             for name in ("state_encoder", "task_encoder", "action_decoder"))
  assert not nonzero(actor_grads[1:])  # critics and alpha held fixed
  assert nonzero(critic_grads[0])
  assert not nonzero(critic_grads[1:])  # target y held fixed
  assert nonzero(alpha_grads[0]) and not nonzero(alpha_grads[1])  # policy held fixed


# ----- the update: each order equals its steps written out -----

LR, TAU, CLIP = 0.05, 0.1, 10.0


def apply(optimizer, params, opt_state, grads):
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


@pytest.mark.parametrize("order", learner.UPDATE_ORDERS)
def test_update_order_is_the_one_written_out(setup, order):
  """alpha_first (the release): alpha first, the new alpha in both losses, the actor
  against the critics before the step; critic_first: critics, then the actor against
  the new critics with the old alpha, then alpha."""
  nets, sac, params, batch = setup
  optimizer = optax.adam(LR)
  state = learner.from_params(params["actor"], params["critic"], jnp.float32(0.3), optimizer)
  state = state.replace(target_critic_params=params["target"])
  key = jax.random.PRNGKey(9)
  update, seen = learner.make_update(sac, optimizer, TAU, CLIP, order), []

  def traced(state, batch, key):  # records the order the step computes its quantities
    new, metrics = update(state, batch, key)
    seen.append(tuple(metrics["finite"]))
    return new, metrics

  new, metrics = jax.jit(traced)(state, batch, key)

  critic_key, actor_key = jax.random.split(key)
  clip = learner.clip_per_network
  alpha_grad = jax.grad(sac.alpha_loss)(state.log_alpha, state.actor_params, batch,
                                        actor_key)
  log_alpha, _ = apply(optimizer, state.log_alpha, state.alpha_opt, alpha_grad)
  critic_alpha = log_alpha if order == "alpha_first" else state.log_alpha
  critic_grads = clip(jax.grad(sac.critic_loss)(
      state.critic_params, state.actor_params, state.target_critic_params, critic_alpha,
      batch, critic_key), CLIP, ensemble_axis=True)
  critic_params, _ = apply(optimizer, state.critic_params, state.critic_opt, critic_grads)
  actor_critics = state.critic_params if order == "alpha_first" else critic_params
  actor_grads = clip(jax.grad(sac.actor_loss)(state.actor_params, actor_critics,
                                              critic_alpha, batch, actor_key),
                     CLIP, ensemble_axis=False)
  actor_params, _ = apply(optimizer, state.actor_params, state.actor_opt, actor_grads)

  for got, want in ((new.log_alpha, log_alpha), (new.critic_params, critic_params),
                    (new.actor_params, actor_params),
                    (new.target_critic_params, optax.incremental_update(
                        critic_params, state.target_critic_params, TAU))):
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-7),
                 got, want)
  # The health flags follow the order of the step.
  assert seen[0][0] == ("alpha_loss" if order == "alpha_first" else "critic_loss")
  assert all(bool(v) for v in metrics["finite"].values())


def test_unknown_update_order_is_refused(setup):
  _, sac, _, _ = setup
  with pytest.raises(ValueError, match="update order must be one of alpha_first"):
    learner.make_update(sac, optax.adam(LR), TAU, CLIP, "actor_first")


def test_the_shared_step_pieces_by_hand():
  """The pieces SAC-family learners (TSAC, PEARL) compose: the key split, a critic
  gradient clipped per twin with its finite checks, the Polyak step, grads_finite."""
  key = jax.random.PRNGKey(3)
  np.testing.assert_array_equal(jnp.stack(learner.update_keys(key)), jax.random.split(key))
  # d/dw sum(w * s) = s: twin 0's norm 20 is clipped to 10, twin 1's norm 1 is not.
  params = {"ensemble": {"w": jnp.zeros((2, 2))}}
  s = jnp.array([[12.0, 16.0], [0.6, 0.8]])
  loss, grads, finite = learner.critic_gradients(
      lambda p, s: jnp.sum(p["ensemble"]["w"] * s), params, s, max_grad_norm=10.0)
  np.testing.assert_allclose(grads["ensemble"]["w"], [[6.0, 8.0], [0.6, 0.8]], rtol=1e-6)
  assert set(finite) == {"critic_loss", "critic_grad/critic_0", "critic_grad/critic_1"}
  target = learner.polyak_update({"w": jnp.ones(2)}, {"w": jnp.zeros(2)}, 0.25)
  np.testing.assert_allclose(target["w"], [0.25, 0.25])
  assert float(learner.grads_finite({**finite, "critic_loss": jnp.bool_(False)})) == 1.0
  assert float(learner.grads_finite({**finite, "critic_grad/critic_1": jnp.bool_(False)})) == 0.0
