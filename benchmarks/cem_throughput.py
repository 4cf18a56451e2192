"""CEM adaptation throughput: one generation of Algorithm 2 as one compiled call.

  python -m benchmarks.cem_throughput [--workdir=runs/hcv] [--env=halfcheetah_vel]
      [--tasks=1] [--repeats=3] [--out=runs/cem_throughput.json]

A CEM generation scores ``population`` candidate LTEs per task (the release: 6 elites x
15 = 90) by one 200-step episode each (``cem.cem_generation`` with ``rollout_score_fn``).
It is timed three ways at the same batch (candidates x tasks), compilation excluded (a
warm-up call each), median of ``repeats``:
- ``batched``: the whole generation as one jitted call (every rollout in one vmapped scan);
- ``loop``: a Python loop over the candidates, one jitted single-candidate rollout each;
- ``raw_env``: what the rollouts cost without a policy: ``vmap(env.reset)`` then
  ``episode_length`` steps of ``vmap(env.step)`` with uniform random actions, in one
  jitted scan (the rollouts' own env work: no auto-reset, same batch, same length).
The policy is a trained run's (``--workdir``) or a freshly initialised EAR actor at the
paper's widths.  This is the one CEM-speed tool; ``benchmarks.run --sections=cem`` calls it.
"""
from __future__ import annotations

import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from earjax.adaptation import cem
from earjax.checkpoint import CheckpointError
from earjax.adaptation import lte as lte_lib
from earjax.config import default_config
from earjax.policy import frozen_policy, load_run
from earjax.run import Run


def fresh_policy(env_name: str):
  """(env, a randomly initialised EAR actor at the release's widths, its LTE dim)."""
  run = Run.from_config(default_config(env_name))
  params = run.networks.actor_init(jax.random.PRNGKey(0))
  return run.env, frozen_policy(run.networks, params), run.config.ear_sac.lte_dim


def raw_env_rate(env, task_params: jax.Array, repeats: int) -> float:
  """Env-steps/s of reset + ``episode_length`` random-action steps of the batch."""
  batch = task_params.shape[0]

  @jax.jit
  def episode(key):
    reset_key, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_key, batch), task_params)

    def step(state, k):
      actions = jax.random.uniform(k, (batch, env.action_size), minval=-1.0, maxval=1.0)
      state = jax.vmap(env.step)(state, actions)
      return state, state.reward
    return jax.lax.scan(step, state, jax.random.split(act_key, env.episode_length))[1].sum()

  key = jax.random.PRNGKey(5)
  return common.median_rate(lambda: episode(key).block_until_ready(),
                            batch * env.episode_length, repeats)


def measure(env, policy, lte_dim: int, num_tasks: int, repeats: int, label: str,
            config: cem.CEMConfig = cem.CEMConfig()) -> list[dict]:
  """Records ``cem/<label>/...``: batched, looped and raw-env env-steps/s and ratios."""
  n = config.population
  task_params = jnp.asarray(np.resize(env.adapt_tasks if len(env.adapt_tasks) else
                                      env.train_tasks, (num_tasks, env.task_param_size)))
  score = cem.rollout_score_fn(env, policy, task_params)
  elites = cem.random_sphere(jax.random.PRNGKey(1), (num_tasks, config.num_elites, lte_dim))
  steps = num_tasks * n * env.episode_length

  batched = jax.jit(lambda elites, key: cem.cem_generation(score, elites, key, config)[:2])
  key = jax.random.PRNGKey(3)
  _, batched_first_s, batched_cache = common.timed_first_call(lambda: batched(elites, key))
  batched_s = common.median_seconds(lambda: jax.block_until_ready(batched(elites, key)),
                                    repeats)

  candidates = cem.cem_candidates(elites, jax.random.PRNGKey(2), config).reshape(-1, lte_dim)
  flat_params = jnp.repeat(task_params, n, axis=0)
  keys = jax.random.split(jax.random.PRNGKey(4), num_tasks * n)
  single = jax.jit(lambda policy, z, p, k: lte_lib.rollout(env, policy, z[None], p[None],
                                                            k[None]).ret)
  _, loop_first_s, _ = common.timed_first_call(
      lambda: single(policy, candidates[0], flat_params[0], keys[0]))

  def loop():
    jax.block_until_ready([single(policy, candidates[b], flat_params[b], keys[b])
                           for b in range(num_tasks * n)])

  loop_s = common.median_seconds(loop, max(1, repeats // 2))
  raw_rate = raw_env_rate(env, flat_params, repeats)
  batched_rate, loop_rate = steps / batched_s, steps / loop_s
  settings = {"env": env.name, "candidates": n, "tasks": num_tasks,
              "episode_steps": env.episode_length, "policy": label, "repeats": repeats,
              "batched_first_call_s": batched_first_s, "batched_cache": batched_cache,
              "loop_first_call_s": loop_first_s}
  prefix = f"cem/{env.name}"
  return [common.record(f"{prefix}/batched/env_steps_per_s", batched_rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/batched/generation_s", batched_s, "s", **settings),
          common.record(f"{prefix}/loop/env_steps_per_s", loop_rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/raw_env/env_steps_per_s", raw_rate, "env-steps/s",
                        batch=num_tasks * n, **settings),
          common.record(f"{prefix}/batched_over_loop", batched_rate / loop_rate, "x",
                        **settings),
          common.record(f"{prefix}/batched_over_raw_env", batched_rate / raw_rate, "x",
                        **settings)]




FLAGS = flags.FLAGS


def define_flags():
  """The command-line flags, defined only when run as a program (``benchmarks.run``
  imports this module, and absl flags are global)."""
  flags.DEFINE_string("workdir", None, "A trained EAR run (default: a fresh actor at the "
                      "paper's widths).")
  flags.DEFINE_string("env", "halfcheetah_vel", "Family when no --workdir is given.")
  flags.DEFINE_integer("tasks", 1, "Adaptation tasks in the generation.")
  flags.DEFINE_integer("repeats", 3, "Timed calls per variant.")
  flags.DEFINE_string("out", "runs/cem_throughput.json", "Output JSON (records).")


def main(argv):
  from experiments import cli  # pylint: disable=g-import-not-at-top
  cli.start(argv)
  if FLAGS.tasks < 1 or FLAGS.repeats < 1:
    cli.fail(["tasks and repeats must be positive"])
  try:
    if FLAGS.workdir:
      run = load_run(FLAGS.workdir)
      env, policy, lte_dim, label = run.env, run.policy, run.lte_dim, run.workdir
    else:
      env, policy, lte_dim = fresh_policy(FLAGS.env)
      label = "ear paper widths (400), random init"
  except (ValueError, OSError, CheckpointError) as e:
    cli.fail([str(e).splitlines()[0]])
  records = measure(env, policy, lte_dim, FLAGS.tasks, FLAGS.repeats, label)
  common.print_table(records)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  common.write(records, FLAGS.out)


if __name__ == "__main__":
  define_flags()
  app.run(main)
