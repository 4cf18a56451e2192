"""The LTE interface: Eq. 1, the vmapped rollout, CEM (Algorithm 2) and the ES search.

The sphere-function tests need no env.  The env tests share one tiny random EAR actor on
Point-Vel and 20-step episodes; the fine-tuning baseline runs on a tiny OHE-SAC run.
"""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import checkpoint
from earjax import envs
from earjax.adaptation import cem as adaptation
from earjax.adaptation import lte as lte_lib
from earjax.policy import frozen_policy, load_run
from earjax.run import Run
from earjax.training import finetune
from earjax.training import train_and_evaluate
from tiny import REPO, tiny_config, tiny_networks

STEPS = 20


def angle(a, b):
  return np.degrees(np.arccos(np.clip(np.sum(np.asarray(a) * np.asarray(b), -1), -1, 1)))


def sphere_score(targets):
  """f(z) = <z, target_t>: on the unit sphere its maximiser is target_t itself."""
  def score(candidates, key):
    del key
    s = jnp.sum(candidates * targets[:, None], -1)
    return s, {"velocity": s}
  return score


def test_cem_finds_the_maximiser_on_the_sphere():
  targets = adaptation.random_sphere(jax.random.PRNGKey(3), (4, 3))
  best, history = jax.jit(lambda k: adaptation.cem(sphere_score(targets), k, 4, 3))(
      jax.random.PRNGKey(0))
  assert history["best"].shape == (10, 4)
  assert np.all(angle(best, targets) < 5.0)
  np.testing.assert_allclose(np.linalg.norm(history["elites"], axis=-1), 1.0, atol=1e-5)
  assert np.all(np.diff(np.asarray(history["best"]), axis=0) >= -1e-6)  # elites are kept


def test_table_es_finds_the_maximiser_on_the_sphere():
  targets = adaptation.random_sphere(jax.random.PRNGKey(3), (4, 3))
  table = adaptation.random_sphere(jax.random.PRNGKey(5), (4, 3))
  first = adaptation.pair_interpolations(table, 90, jax.random.PRNGKey(1))
  assert first.shape == (90, 3)
  best, history = jax.jit(lambda k: adaptation.table_es(
      sphere_score(targets), k, first, 4))(jax.random.PRNGKey(0))
  assert history["best"].shape == (10, 4)
  assert np.all(angle(best, targets) < 5.0)


def test_search_and_finetune_defaults_have_one_home():
  """The release's values, declared once: table-ES and the budgets follow CEM's."""
  d = adaptation.CEM_DEFAULTS
  assert (d.num_elites, d.samples_per_elite, d.std, d.generations) == (6, 15, 0.5, 10)
  es = adaptation.ESConfig()
  assert (es.population, es.generations) == (d.population, d.generations) == (90, 10)
  assert adaptation.DEFAULT_BUDGET == 180_000
  assert finetune.FINETUNE_DEFAULTS == finetune.FinetuneSettings(
      envs_per_task=16, eval_every=20, eval_episodes=5,
      source_episodes=2)


def test_interpolation_endpoints_and_bad_arguments():
  z = adaptation.random_sphere(jax.random.PRNGKey(0), (2, 3))
  out = lte_lib.interpolate(z[0], z[1], [0.0, 0.5, 1.0])
  np.testing.assert_allclose(out[0], z[1], atol=1e-6)
  np.testing.assert_allclose(out[2], z[0], atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-6)
  with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\], got \[1.5\]"):
    lte_lib.interpolate(z[0], z[1], [0.5, 1.5])
  with pytest.raises(ValueError, match=r"dimension 3, got shape \(4,\)"):
    lte_lib.interpolate(jnp.ones(4), z[1], [0.5])
  with pytest.raises(ValueError, match=r"dimension 3, got shape \(2,\)"):
    lte_lib.check_lte([1.0, 0.0], 3)


def test_unknown_tasks_and_missing_runs(tmp_path):
  env = envs.make("halfcheetah_run_jump")
  params, names = lte_lib.parse_tasks(env, "run1,jump10,stand,1:2:0.5")
  np.testing.assert_allclose(params[[0, 1, 2]], [[1, 1, 0], [0, 0, 10], [1, 0, 1]])
  assert names[3] == "c_vel1_vel2_w_height0.5"
  with pytest.raises(ValueError, match="unknown task 'fly' for halfcheetah_run_jump"):
    lte_lib.parse_tasks(env, "run1,fly")
  with pytest.raises(ValueError, match="has no held-out adaptation tasks"):
    lte_lib.parse_tasks(env, "adapt")
  with pytest.raises(ValueError, match="unknown task '7'; this run's tasks are 0=vel1"):
    lte_lib.task_index(("vel1", "vel4"), "7")
  assert lte_lib.task_index(("vel1", "vel4"), "vel4") == 1
  with pytest.raises(checkpoint.CheckpointError, match="holds no training run"):
    load_run(str(tmp_path))
  result = subprocess.run(
      [sys.executable, "-m", "experiments.adapt", f"--workdir={tmp_path}"], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: '{tmp_path}' holds no training run (no config.json)"]
  result = subprocess.run(
      [sys.executable, "-m", "experiments.adapt", f"--workdir={tmp_path}",
       "--methods=grad_rollout", "--gradient_horizon=-1"], cwd=REPO,
      capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2 and result.stderr.strip().splitlines() == [
      "error: gradient_clip must be > 0 and gradient_horizon >= 0 (0: the whole episode)"]


def test_finetune_slot_move_reproduces_the_source_task():
  """OHE-SAC fine-tuning feeds the new task to one-hot slot 0 after moving the chosen
  source's weights there: the networks then act exactly as with the source's one-hot."""
  nets = tiny_networks("ohe_sac", 5, 2, 4)
  actor, critic = nets.actor_init(jax.random.PRNGKey(0)), nets.critic_init(
      jax.random.PRNGKey(1))
  obs, action = jax.random.normal(jax.random.PRNGKey(2), (3, 5)), jnp.ones((3, 2)) * 0.3
  slot0, source = (jnp.broadcast_to(jax.nn.one_hot(k, 4), (3, 4)) for k in (0, 2))
  moved_actor = finetune.move_slot_to_front(actor, 2, 4)
  moved_critic = finetune.move_slot_to_front(critic, 2, 4)
  # Moving the rows reorders the first layer's sums: a few float32 ulps apart (outputs
  # near 1e-4 differ by up to 2.3e-10 on this CPU), hence the absolute tolerance.
  for a, b in zip(nets.actor_apply(moved_actor, obs, slot0),
                  nets.actor_apply(actor, obs, source)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(nets.critic_apply(moved_critic, obs, action, slot0),
                             nets.critic_apply(critic, obs, action, source), rtol=1e-6,
                             atol=1e-9)


def test_finetuner_continues_sac_from_the_source_run_on_a_new_task(tmp_path):
  workdir = str(tmp_path / "ohe")
  train_and_evaluate(tiny_config(agent="ohe_sac"), workdir)
  source = Run.load(workdir)
  finetuner = finetune.make_finetuner(source, envs_per_task=3, eval_episodes=2)
  trainer = finetuner.trainer
  assert (trainer.num_tasks, trainer.num_envs, finetuner.num_source_tasks) == (1, 3, 2)
  actor, critic, log_alpha, _ = finetune.load_source(source)
  new_task = np.array([1.0], np.float32)   # a held-out Point-Vel target
  scores = finetuner.score_sources(actor, new_task, jax.random.PRNGKey(0), 2)
  assert scores.shape == (2,)
  state = finetuner.start(actor, critic, log_alpha, new_task, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(state.env_state.info["task_param"], [[1.0]] * 3)
  state, _ = trainer.epoch(state)
  assert int(state.grad_steps) == trainer.config.grad_steps_per_epoch  # no warm-up
  result = finetuner.evaluate(state.learner.actor_params, new_task, jax.random.PRNGKey(2))
  assert result["return"].shape == (1,) and np.isfinite(result["return"]).all()
  # The trainer's own functions stay usable (nothing was overwritten after __init__).
  fresh = trainer.init(jax.random.PRNGKey(3), jnp.asarray([new_task]))
  assert int(fresh.epoch) == 0
  # Whole epochs within the budget, the sources' scoring (one episode each) counted.
  scoring = 2 * trainer.env.episode_length
  budget = scoring + 2 * trainer.env_steps_per_epoch + trainer.env_steps_per_epoch - 1
  out = finetuner.adapt(actor, critic, log_alpha, new_task, jax.random.PRNGKey(4), budget,
                        eval_every=1, source_episodes=1)
  assert [r["epoch"] for r in out["evaluations"]] == [0, 1, 2]
  assert out["evaluations"][-1]["env_steps"] == scoring + 2 * trainer.env_steps_per_epoch
  with pytest.raises(ValueError, match="leaves no fine-tuning epoch"):
    finetuner.adapt(actor, critic, log_alpha, new_task, jax.random.PRNGKey(4),
                    scoring + trainer.env_steps_per_epoch - 1, 1, 1)
  with pytest.raises(ValueError, match="fine-tuning is the OHE-SAC baseline"):
    finetune.make_finetuner(Run.from_config(tiny_config()), 3, 2)


@pytest.fixture(scope="module")
def tiny():
  env = envs.make("point_vel", episode_length=STEPS)
  networks = tiny_networks("ear_sac", env.observation_size, env.action_size, 2)
  params = networks.actor_init(jax.random.PRNGKey(0))
  # A random actor barely moves; large last-layer weights make actions depend on the LTE.
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: 300.0 * x if "action_decoder" in jax.tree_util.keystr(path)
      and "Dense_1" in jax.tree_util.keystr(path) else x, params)
  return env, frozen_policy(networks, params)


def test_vmapped_cem_generation_equals_per_candidate_rollouts_and_traces_once(tiny):
  env, policy = tiny
  task_params = jnp.array([[1.0], [3.0]])
  config = adaptation.CEMConfig(num_elites=2, samples_per_elite=2)
  traces = []

  def generation(policy, elites, key):
    traces.append(1)
    score = adaptation.rollout_score_fn(env, policy, task_params)
    return adaptation.cem_generation(score, elites, key, config)

  generation = jax.jit(generation)
  elites = adaptation.random_sphere(jax.random.PRNGKey(1), (2, 2, 3))
  key = jax.random.PRNGKey(2)
  new_elites, elite_scores, aux, candidates, scores = generation(policy, elites, key)
  generation(policy, new_elites, jax.random.PRNGKey(3))
  assert len(traces) == 1
  assert candidates.shape == (2, 4, 3) and scores.shape == (2, 4)
  np.testing.assert_allclose(candidates[:, ::2], elites, atol=1e-6)  # elites are kept
  assert np.all(elite_scores[:, 0] == scores.max(-1))
  assert np.ptp(np.asarray(scores)) > 1.0  # the candidates behave differently
  # Candidate b of the batch used key b of split(score_key, 8), as one rollout alone.
  score_keys = jax.random.split(jax.random.split(key)[1], 8)
  single = jax.jit(lambda policy, z, p, k: lte_lib.rollout(env, policy, z[None], p[None],
                                                            k[None]))
  flat = candidates.reshape(8, 3)
  for b in range(8):
    episode = single(policy, flat[b], task_params[b // 4], score_keys[b])
    np.testing.assert_allclose(episode.ret[0], scores.reshape(8)[b], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(episode.velocity[0], aux["velocity"].reshape(8)[b],
                               rtol=1e-4, atol=1e-4)
