"""Speed of one CEM generation (Algorithm 2) as one compiled call.

  python -m experiments.cem_speed --workdir=runs/hcv_cpu [--tasks=1 --repeats=3]

Times, at the same batch (90 candidates x ``tasks``, 200-step episodes): (1) the jitted
CEM generation (sampling, every rollout in one vmapped scan, elite selection); (2) the
same candidates evaluated one at a time in a Python loop over one jitted single-candidate
rollout; (3) raw env throughput: reset and 200 steps of ``vmap(env.step)`` with uniform
random actions, no policy.  Compilation is excluded (one warm-up call each); the median
of ``repeats`` calls is reported.  Writes ``--out`` (JSON).
"""
import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from earjax import adaptation
from earjax import checkpoint
from earjax import lte as lte_lib
from earjax.policy import load_run
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_TASKS = flags.DEFINE_integer("tasks", 1, "Adaptation tasks in the generation.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per variant.")
_OUT = flags.DEFINE_string("out", "experiments/results/cem_speed.json", "Output JSON.")


def timed(fn, repeats: int) -> float:
  """Median wall seconds of ``fn()`` (which blocks) after one warm-up call."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(argv):
  cli.start(argv)
  if _TASKS.value < 1 or _REPEATS.value < 1:
    cli.fail(["tasks and repeats must be positive"])
  try:
    run = load_run(_WORKDIR.value)
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  env, config = run.env, adaptation.CEMConfig()
  num_tasks, n = _TASKS.value, config.population
  batch = num_tasks * n
  task_params = jnp.asarray(np.resize(run.task_params, (num_tasks, env.task_param_size)))
  elites = adaptation.random_sphere(jax.random.PRNGKey(0), (num_tasks, config.num_elites,
                                                            run.lte_dim))
  key = jax.random.PRNGKey(1)

  @jax.jit
  def generation(policy, elites, key):
    score = adaptation.rollout_score_fn(env, policy, task_params)
    return adaptation.cem_epoch(score, elites, key, config)[:2]

  single = jax.jit(lambda policy, z, p, k: lte_lib.rollout(env, policy, z[None], p[None],
                                                            k[None]).ret)
  candidates = adaptation.cem_candidates(elites, key, config).reshape(batch, -1)
  flat_params = jnp.repeat(task_params, n, axis=0)
  keys = jax.random.split(key, batch)

  def loop():
    return [single(run.policy, candidates[b], flat_params[b], keys[b]).block_until_ready()
            for b in range(batch)]

  @jax.jit
  def raw(key):
    reset_key, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_key, batch), flat_params)

    def step(state, k):
      actions = jax.random.uniform(k, (batch, env.action_size), minval=-1.0, maxval=1.0)
      state = jax.vmap(env.step)(state, actions)
      return state, state.reward
    return jax.lax.scan(step, state, jax.random.split(act_key, env.episode_length))[1].sum()

  steps = batch * env.episode_length
  t_gen = timed(lambda: jax.block_until_ready(generation(run.policy, elites, key)),
                _REPEATS.value)
  t_loop = timed(loop, _REPEATS.value)
  t_raw = timed(lambda: raw(key).block_until_ready(), _REPEATS.value)
  result = {"workdir": run.workdir, "env": env.name, "tasks": num_tasks, "candidates": batch,
            "episode_length": env.episode_length, "env_steps_per_call": steps,
            "repeats": _REPEATS.value, "device": str(jax.devices()[0]),
            "seconds": {"cem_generation_jit": t_gen, "python_loop_over_candidates": t_loop,
                        "raw_env_scan": t_raw},
            "env_steps_per_second": {"cem_generation_jit": steps / t_gen,
                                     "python_loop_over_candidates": steps / t_loop,
                                     "raw_env_scan": steps / t_raw},
            "speedup_over_loop": t_loop / t_gen, "fraction_of_raw_env": t_raw / t_gen}
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(result, f, indent=1)
  print(f"{batch} candidates x {env.episode_length} steps = {steps} env steps")
  for name, sec in result["seconds"].items():
    print(f"{name:>30}: {sec:8.2f} s  {steps / sec:9.0f} env-steps/s")
  print(f"speed-up over the loop {result['speedup_over_loop']:.1f}x; "
        f"{100 * result['fraction_of_raw_env']:.0f}% of raw env throughput")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
