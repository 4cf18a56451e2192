"""brax's HalfCheetah env alone (MJX backend): env-steps/s of its auto-reset batch.

Runs in the peers venv (``.venv-peers``; imports nothing from earjax):

  .venv-peers/bin/python -m benchmarks.peers.brax_env --batch=64 [--solver_iterations=4
      --ls_iterations=8] --out=runs/peers/brax_env.json

The counterpart of ``python -m benchmarks.env_throughput --envs=halfcheetah_vel
--batch=64 [--solver=4,8]``: ``brax.envs.training.wrap`` (brax's own training wrappers:
vmap, 1,000-step episode limit, auto-reset), reset jitted once, then a jitted
``lax.scan`` of ``--steps`` steps of uniform random actions in [-1, 1], called once to
compile, once as a warm-up and ``--repeats`` times; env steps over the median call.
``model_options`` are read from the model the env steps (``benchmarks.model_options``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from benchmarks import model_options
from benchmarks.machine_load import background_load
from benchmarks.peers.brax_sac import with_solver

NAME = "brax_env/halfcheetah_mjx/b{batch}/env_steps_per_s"


def main(argv: list[str]) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", type=int, default=100, help="Env steps per timed call.")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--solver_iterations", type=int, default=None)
  p.add_argument("--ls_iterations", type=int, default=None)
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  load = background_load()

  # pylint: disable=g-import-not-at-top
  import jax
  import brax
  from brax import envs
  # pylint: enable=g-import-not-at-top

  env = with_solver(envs.get_environment("halfcheetah", backend="mjx"),
                    args.solver_iterations, args.ls_iterations)
  options = model_options.read(env.sys.opt, env._n_frames)  # pylint: disable=protected-access
  batch_env = envs.training.wrap(env, episode_length=1000)
  state = jax.jit(batch_env.reset)(jax.random.split(jax.random.PRNGKey(0), args.batch))

  @jax.jit
  def run(state, key):
    def step(state, key):
      action = jax.random.uniform(key, (args.batch, env.action_size), minval=-1.0,
                                  maxval=1.0)
      return batch_env.step(state, action), None
    return jax.lax.scan(step, state, jax.random.split(key, args.steps))[0]

  def call(key):
    out = run(state, key)
    jax.block_until_ready(out.obs)

  t0 = time.perf_counter()
  call(jax.random.PRNGKey(1))
  first_s = time.perf_counter() - t0
  call(jax.random.PRNGKey(2))
  times = []
  for i in range(args.repeats):
    t0 = time.perf_counter()
    call(jax.random.PRNGKey(3 + i))
    times.append(time.perf_counter() - t0)
  seconds = statistics.median(times)
  record = {
      "name": NAME.format(batch=args.batch), "value": args.batch * args.steps / seconds,
      "unit": "env-steps/s",
      "method": f"median over {args.repeats} calls (after a compile call and a warm-up) "
                f"of a jitted scan of {args.steps} steps of brax's wrapped batch",
      "settings": {"env": "halfcheetah", "env_backend": "mjx", "batch": args.batch,
                   "steps_per_call": args.steps, "repeats": args.repeats,
                   "model_options": options,
                   "background_cpu_percent": load["cpu_percent"],
                   "background_busy": load["busy"],
                   "xla_flags": os.environ.get("XLA_FLAGS", "")},
      "first_call_s": first_s, "call_seconds": times,
      "jax": jax.__version__, "brax": brax.__version__, "backend": jax.default_backend(),
      "cpu_count": os.cpu_count(), "machine": platform.machine(),
  }
  print(f"[brax_env] {record['name']}: {record['value']:.1f} env-steps/s "
        f"(solver {options['iterations']}/{options['ls_iterations']})")
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(record, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
