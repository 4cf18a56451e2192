"""MJX's Warp implementation (``impl=warp``, the ``warp`` extra) on this CPU: the same
physics as MJX's JAX implementation, contact buffers sized for the batch, the auto-reset
through ``Data.where``, the trainer, and the refusals."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import warp

from earjax import envs
from earjax.config import validate
from earjax.training import ConfigError, trainer_for
from earjax.run import Run
from tiny import tiny_config

# Warp compiles its kernels (~35 modules for Hopper) with its own LLVM at run time; -O0
# takes a third off that on a cold kernel cache, and tests of 30 steps do not notice the
# slower kernels (the module hash includes the level, so the CLI's -O2 kernels are cached
# apart).
warp.config.optimization_level = 0

ENVS = 4
STEPS = 30


def rollout(impl):
  """``STEPS`` steps of ``ENVS`` Hopper-Vel envs (one per task), fixed random actions,
  through the auto-reset batch; (positions, contacts found per step or None)."""
  env = envs.make("hopper_vel", impl=impl, unroll_substeps=False).with_worlds(ENVS)
  batch = envs.AutoResetBatch(env, episode_length=20)
  actions = jax.random.uniform(jax.random.PRNGKey(1), (STEPS, ENVS, env.action_size),
                               minval=-1, maxval=1)

  @jax.jit
  def run(key):
    state = batch.reset(jax.random.split(key, ENVS), jnp.asarray(env.train_tasks[:ENVS]))

    def body(state, action):
      state = batch.step(state, action)
      contacts = state.data._impl.nacon if impl == "warp" else jnp.zeros(())
      return state, (env.qpos(state.data), state.info["steps"], contacts)
    return jax.lax.scan(body, state, actions)[1]
  return env, jax.device_get(run(jax.random.PRNGKey(0)))


def test_warp_steps_like_jax_and_sizes_its_contacts_for_the_batch():
  """Every env's positions within 1e-3 of MJX-JAX's over 30 steps, through the
  auto-resets (a fall or the 20-step limit; ``Data.where`` keeps Warp's shared buffers); the contacts of all four
  worlds fit the buffer (4 x the 2 one Hopper can have)."""
  warp_env, (qpos_w, steps_w, contacts) = rollout("warp")
  _, (qpos_j, steps_j, _) = rollout("jax")
  assert warp_env.differentiable is False and warp_env.impl == "warp"
  assert warp_env._data0._impl.naconmax == 2 * ENVS    # pylint: disable=protected-access
  assert (steps_w == 0).sum() >= ENVS                   # every env restarted at least once
  np.testing.assert_array_equal(steps_w, steps_j)       # the same episode ends
  np.testing.assert_allclose(qpos_w, qpos_j, atol=1e-3)
  assert 0 < contacts.max() <= 2 * ENVS


def test_warp_has_no_gradient():
  """Why ``differentiable`` is False: XLA's FFI call has no derivative."""
  env = envs.make("hopper_vel", impl="warp", unroll_substeps=False)
  state = env.reset(jax.random.PRNGKey(0), jnp.asarray(env.train_tasks[0]))
  with pytest.raises(Exception, match="cannot be differentiated"):
    jax.grad(lambda a: env.step(state, a).reward)(jnp.zeros(env.action_size))


def test_the_trainer_runs_an_epoch_on_warp():
  trainer = trainer_for(tiny_config(env_name="hopper_vel", task_ids=(0, 1), envs_per_task=2,
                                    env_steps_per_epoch=4, grad_steps_per_epoch=2,
                                    replay_capacity=8, **{"env.unroll_substeps": False, "env.impl": "warp"},
                                    eval_episodes=3))
  # Hopper's 2 contacts x the largest batch: 2 tasks x 3 evaluation episodes.
  assert trainer.env._data0._impl.naconmax == 2 * 2 * 3  # pylint: disable=protected-access
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  state, metrics = trainer.epoch(state)
  assert int(state.epoch) == 1 and np.isfinite(float(metrics["train/reward"]))


def test_impl_is_refused_where_it_cannot_run_in_one_line():
  hcv = dict(env_name="halfcheetah_vel")
  assert validate(tiny_config(**hcv, **{"env.impl": "cuda"})) == [
      "env.impl must be one of jax, warp, got 'cuda'"]
  point = tiny_config()
  point.env.unlock()
  point.env.impl = "warp"
  assert validate(point) == ["unknown config key 'env.impl' (point_vel has no such setting; "
                             "its settings: episode_length, num_test_tasks, num_train_tasks, "
                             "success_velocity_fraction, task_interval, task_seed)"]
  spring = tiny_config(**hcv, **{"env.backend": "spring", "env.impl": "warp"})
  assert validate(spring) == ["env.impl=warp is MJX's; backend 'spring' has no Warp "
                              "implementation"]
  with pytest.raises(ConfigError, match=r"^impl=warp is MJX's; backend 'spring' has no Warp "
                                        r"implementation$"):
    Run.from_config(spring)
