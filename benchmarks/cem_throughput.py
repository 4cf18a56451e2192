"""CEM adaptation throughput: one generation of Algorithm 2 as one compiled call.

A CEM generation scores ``population`` candidate LTEs (the release: 6 elites x 15 = 90)
by one 200-step episode each (``adaptation.cem_epoch`` with ``rollout_score_fn``).  It is
timed three ways on the same freshly initialised EAR actor (paper widths): the whole
generation as one jitted call (every candidate in one vmapped rollout); a Python loop
over the candidates calling one jitted single-candidate rollout each; and raw env
throughput of the auto-reset batch at the same batch size with random actions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks import common
from earjax import adaptation
from earjax import envs
from earjax.config import default_config
from earjax.policy import frozen_policy
from earjax.training import Trainer


def measure(env_name: str, repeats: int, config=adaptation.CEMConfig()) -> list[dict]:
  """Records ``cem/<env>/...``: batched and looped env-steps/s, raw env-steps/s, ratios."""
  c = default_config()
  c.env_name = env_name
  trainer = Trainer(c)
  env = trainer.env
  policy = frozen_policy(trainer.networks, trainer.networks.actor_init(jax.random.PRNGKey(0)))
  task = jnp.asarray(env.adapt_tasks[:1])
  score = adaptation.rollout_score_fn(env, policy, task)
  n = config.population
  elites = adaptation.random_sphere(jax.random.PRNGKey(1),
                                    (1, config.num_elites, c.network.lte_dim))
  candidates = adaptation.cem_candidates(elites, jax.random.PRNGKey(2), config)
  steps = n * env.episode_length

  batched = jax.jit(lambda elites, key: adaptation.cem_epoch(score, elites, key, config)[:2])
  _, batched_first_s, batched_cache = common.timed_first_call(
      lambda: batched(elites, jax.random.PRNGKey(3)))
  batched_s = common.median_seconds(
      lambda: jax.block_until_ready(batched(elites, jax.random.PRNGKey(3))), repeats)

  one = jax.jit(score)
  keys = jax.random.split(jax.random.PRNGKey(4), n)
  _, loop_first_s, _ = common.timed_first_call(lambda: one(candidates[:, :1], keys[0]))

  def loop():
    scores = [one(candidates[:, i:i + 1], keys[i])[0] for i in range(n)]
    jax.block_until_ready(scores)

  loop_s = common.median_seconds(loop, max(1, repeats // 2))

  batch = envs.AutoResetBatch(env)
  tasks = jnp.repeat(task, n, axis=0)
  state = jax.jit(batch.reset)(jax.random.split(jax.random.PRNGKey(5), n), tasks)
  raw_rate, _, _ = common.random_action_throughput(batch.step, state, n, env.action_size,
                                                   env.episode_length, repeats)
  batched_rate, loop_rate = steps / batched_s, steps / loop_s
  settings = {"env": env_name, "candidates": n, "episode_steps": env.episode_length,
              "tasks": 1, "actor": "ear paper widths (400), random init",
              "repeats": repeats, "batched_first_call_s": batched_first_s,
              "batched_cache": batched_cache, "loop_first_call_s": loop_first_s}
  prefix = f"cem/{env_name}"
  return [common.record(f"{prefix}/batched/env_steps_per_s", batched_rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/batched/epoch_s", batched_s, "s", **settings),
          common.record(f"{prefix}/loop/env_steps_per_s", loop_rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/raw_env/env_steps_per_s", raw_rate, "env-steps/s",
                        batch=n, **settings),
          common.record(f"{prefix}/batched_over_loop", batched_rate / loop_rate, "x",
                        **settings),
          common.record(f"{prefix}/batched_over_raw_env", batched_rate / raw_rate, "x",
                        **settings)]
