"""brax's own SAC on brax's HalfCheetah (MJX backend): steady-state env-steps/s.

Runs in the peers venv (``.venv-peers``, jax 0.9.2 + brax 0.14.2; see README.md), never in
earjax's venv, and imports nothing from earjax:

  .venv-peers/bin/python -m benchmarks.peers.brax_sac --out=runs/peers/brax_sac.json

What runs: ``brax.training.agents.sac.train.train`` unchanged, on
``brax.envs.get_environment("halfcheetah", backend="mjx")`` (brax's asset and solver
settings as shipped, or with ``--solver_iterations``/``--ls_iterations`` replaced in its
model; the record's ``model_options`` are read from the model that ran), at the brax-matched setting of ``benchmarks/settings.py``: 64
parallel envs, batch 256, 16 gradient updates per env step of the 64-env batch, (256, 256)
policy and Q networks (``make_sac_networks(hidden_layer_sizes=(256, 256))``).  The
remaining arguments follow earjax's defaults so that both do the same work per step:
learning rate 3e-4, discount 0.99, tau 0.005, reward scale 1, no replay prefill, replay
capacity 100k, no observation normaliser (``--normalize_observations`` turns brax's on).
Every argument passed to ``train`` is written into the record's ``settings``.

How brax's loop is shaped (read from brax 0.14.2's ``sac/train.py``): with ``num_evals``
N > 1 it runs one evaluation at step 0 (this compiles the evaluator; in a CPU smoke run
the evaluation after the first epoch took as long again, 52 s against 2-4 s later, so it
seems to compile once more), then N - 1 rounds of
[one training epoch, one evaluation, one ``progress_fn`` call].  A training epoch is one
pmapped call that scans ``ceil(num_timesteps / ((N - 1) * num_envs))`` training steps
(each: one env step of all envs, then ``grad_updates_per_step`` updates).  brax times that
call itself, blocking on its result (``training_epoch_with_timing``), and passes
``training/sps`` = env steps of the epoch / its wall time to ``progress_fn``.  The
evaluation is timed separately by brax's ``Evaluator`` (``eval/epoch_eval_time``).

What is timed, precisely:

- ``value`` (the headline): the median, over the timed epochs, of brax's own
  ``training/sps``, i.e. env steps of one training epoch over the wall time of that
  jitted, blocked epoch call.  It EXCLUDES evaluations, the progress callback and the
  host-side loop between epochs; it includes the env steps, the replay inserts and
  samples, the observation normaliser's update (when it is on) and every gradient
  update.  The timed epochs are all but the first ``--skip_epochs`` (default 2): the
  first epoch's call includes XLA's compile of the epoch, the second is a warm-up, as
  earjax's benchmark discards one compile call and one warm-up call before it takes the
  median epoch time.  This is the
  same quantity earjax's ``train/brax_matched/env_steps_per_s`` is: env steps of a jitted
  training epoch over its median wall time, evaluations not included.
- ``wallclock_env_steps_per_s``: env steps between the progress callback that ends the
  last skipped epoch and the last callback, over the wall-clock time between those two
  callbacks (``time.perf_counter`` in ``progress_fn``).  Each of those intervals holds one
  training epoch AND one evaluation (``num_eval_envs`` envs x ``episode_length`` steps;
  by default one env, to keep that cost small) plus brax's host loop, so this rate is a
  lower bound on the training rate; ``eval_seconds`` and ``eval_fraction`` say how much
  of it was evaluation.
- ``training_total_env_steps_per_s``: the timed epochs' env steps over the sum of their
  brax-timed epoch times (a mean where ``value`` is a median).

Also recorded: the CPU use of other processes over 2 s just before the run (this machine
may be shared; the numbers are only comparable with a run made under similar load), the
1-minute load average before and after, and ``XLA_FLAGS`` as set for this process.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time

from benchmarks import model_options
from benchmarks.machine_load import background_load

NAME = "brax_sac/halfcheetah_mjx/env_steps_per_s"


def parse_args(argv: list[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--env_steps", type=int, default=60_000,
                 help="brax's num_timesteps (brax rounds it up to whole epochs).")
  p.add_argument("--num_envs", type=int, default=64)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--grad_updates_per_step", type=int, default=16)
  p.add_argument("--hidden", default="256,256",
                 help="Hidden widths of the policy and the Q networks.")
  p.add_argument("--num_evals", type=int, default=11,
                 help="brax's num_evals: one eval at step 0, then num_evals - 1 epochs.")
  p.add_argument("--num_eval_envs", type=int, default=1,
                 help="Envs of each evaluation (brax's default is 128; evaluations are "
                      "not in the headline rate, only in the wall-clock one).")
  p.add_argument("--episode_length", type=int, default=1000)
  p.add_argument("--max_replay_size", type=int, default=100_000,
                 help="earjax's replay_capacity; the default run never fills it.")
  p.add_argument("--min_replay_size", type=int, default=0,
                 help="0 as in earjax's brax_matched setting (no prefill).")
  p.add_argument("--normalize_observations", action=argparse.BooleanOptionalAction,
                 default=False,
                 help="brax's running observation normaliser; off by default because "
                      "earjax's epoch has none (brax's own HalfCheetah recipe turns it on; "
                      "it costs one running-statistics update per env step).")
  p.add_argument("--skip_epochs", type=int, default=2,
                 help="Epochs not timed: the compile epoch and a warm-up.")
  p.add_argument("--solver_iterations", type=int, default=None,
                 help="The MJX solver's iterations instead of the asset's (4).")
  p.add_argument("--ls_iterations", type=int, default=None,
                 help="Its line-search iterations instead of the asset's (50).")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=None, help="Write the JSON record here.")
  args = p.parse_args(argv)
  if args.num_evals - 1 <= args.skip_epochs:
    p.error(f"--num_evals={args.num_evals} gives {args.num_evals - 1} epochs; more than "
            f"--skip_epochs={args.skip_epochs} are needed to time one")
  return args


def _version(dist: str) -> str | None:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def with_solver(env, iterations: int | None, ls_iterations: int | None):
  """brax's env with its model's solver budget replaced where given (brax's
  ``PipelineEnv`` steps ``env.sys``, an MJX model: ``tree_replace`` of its options)."""
  changes = {k: v for k, v in (("opt.iterations", iterations),
                               ("opt.ls_iterations", ls_iterations)) if v is not None}
  if changes:
    env.sys = env.sys.tree_replace(changes)
  return env


def epochs_from_progress(points: list[dict]) -> list[dict]:
  """One row per training epoch from the progress points (the step-0 point, if any, is
  the initial evaluation): env steps, brax-timed epoch seconds, eval seconds and the
  wall-clock seconds since the previous point."""
  rows = []
  for prev, cur in zip(points, points[1:]):
    steps = cur["step"] - prev["step"]
    sps = cur["training_sps"]
    rows.append({"step": cur["step"], "env_steps": steps,
                 "train_s": steps / sps if sps else None,
                 "eval_s": cur["eval_s"], "wall_s": cur["t"] - prev["t"],
                 "training_sps": sps})
  return rows


def summarise(points: list[dict], skip_epochs: int) -> dict:
  """The rates of the docstring from the progress points."""
  epochs = epochs_from_progress(points)
  timed = epochs[skip_epochs:]
  if not timed:
    raise RuntimeError(f"{len(epochs)} epochs, {skip_epochs} skipped: nothing to time")
  steps = sum(e["env_steps"] for e in timed)
  train_s = sum(e["train_s"] for e in timed)
  wall_s = sum(e["wall_s"] for e in timed)
  eval_s = sum(e["eval_s"] for e in timed)
  return {
      "value": statistics.median(e["training_sps"] for e in timed),
      "training_total_env_steps_per_s": steps / train_s,
      "wallclock_env_steps_per_s": steps / wall_s,
      "timed_epochs": len(timed), "timed_env_steps": steps,
      "timed_train_seconds": train_s, "timed_wall_seconds": wall_s,
      "eval_seconds": eval_s, "eval_fraction": eval_s / wall_s,
      "first_epoch_seconds": epochs[0]["train_s"],
      "epochs": epochs,
  }


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  load = background_load()
  load_before = os.getloadavg()[0]
  started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

  # Imported only now: the load probe above should see this process idle.
  # pylint: disable=g-import-not-at-top
  import jax
  import jaxlib
  import brax
  from brax import envs
  from brax.training.agents.sac import networks as sac_networks
  from brax.training.agents.sac import train as sac
  # pylint: enable=g-import-not-at-top

  hidden = tuple(int(w) for w in args.hidden.split(","))
  env = with_solver(envs.get_environment("halfcheetah", backend="mjx"),
                    args.solver_iterations, args.ls_iterations)
  train_kwargs = dict(
      num_timesteps=args.env_steps, episode_length=args.episode_length,
      action_repeat=1, num_envs=args.num_envs, num_eval_envs=args.num_eval_envs,
      batch_size=args.batch_size, grad_updates_per_step=args.grad_updates_per_step,
      min_replay_size=args.min_replay_size, max_replay_size=args.max_replay_size,
      num_evals=args.num_evals, learning_rate=3e-4, discounting=0.99, tau=0.005,
      reward_scaling=1.0, normalize_observations=args.normalize_observations,
      deterministic_eval=False, max_devices_per_host=1, seed=args.seed)
  points = []

  def progress(step, metrics):
    t = time.perf_counter()
    point = {"t": t, "step": int(step),
             "training_sps": float(metrics.get("training/sps", 0.0)) or None,
             "eval_s": float(metrics.get("eval/epoch_eval_time", 0.0)),
             "eval_reward": float(metrics.get("eval/episode_reward", float("nan")))}
    points.append(point)
    rate = f"{point['training_sps']:.1f}" if point["training_sps"] else "-"
    print(f"[brax_sac] step {point['step']:>8}  training sps {rate:>8}  "
          f"eval {point['eval_s']:.2f} s  eval reward {point['eval_reward']:.1f}",
          flush=True)

  t0 = time.perf_counter()
  sac.train(environment=env, progress_fn=progress,
            network_factory=functools.partial(sac_networks.make_sac_networks,
                                              hidden_layer_sizes=hidden),
            **train_kwargs)
  total_s = time.perf_counter() - t0
  summary = summarise(points, args.skip_epochs)

  device = jax.devices()[0]
  opt = env.sys.opt
  record = {
      "name": NAME, "value": summary.pop("value"), "unit": "env-steps/s",
      "method": (f"median over {summary['timed_epochs']} epochs (the first "
                 f"{args.skip_epochs} skipped: compile, warm-up) of brax's own "
                 "training/sps: env steps of one jitted training epoch over its blocked "
                 "wall time; evaluations excluded"),
      "settings": {
          "env": "halfcheetah", "env_backend": "mjx",
          "solver_iterations": int(opt.iterations),
          "ls_iterations": int(opt.ls_iterations),
          "model_options": model_options.read(opt, env._n_frames),  # pylint: disable=protected-access
          "train_kwargs": train_kwargs,
          "network_factory": f"make_sac_networks(hidden_layer_sizes={hidden})",
          "policy_hidden": list(hidden), "q_hidden": list(hidden),
          "skip_epochs": args.skip_epochs,
          "background_cpu_percent": load["cpu_percent"], "background_busy": load["busy"],
          "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0],
          "xla_flags": os.environ.get("XLA_FLAGS", ""),
      },
      **summary,
      "progress_points": len(points), "progress": points,
      "total_seconds": total_s, "started_utc": started,
      "jax": jax.__version__, "jaxlib": jaxlib.__version__, "brax": brax.__version__,
      "mujoco_mjx": _version("mujoco-mjx"), "flax": _version("flax"),
      "optax": _version("optax"), "backend": jax.default_backend(),
      "device": device.device_kind, "num_devices": jax.device_count(),
      "cpu_count": os.cpu_count(), "machine": platform.machine(),
      "python": platform.python_version(),
  }
  print(f"[brax_sac] {NAME}: {record['value']:.1f} env-steps/s (median of "
        f"{summary['timed_epochs']} brax-timed epochs, evals excluded); wall clock with "
        f"evals {summary['wallclock_env_steps_per_s']:.1f}; eval share "
        f"{100 * summary['eval_fraction']:.1f} %; first epoch (compile) "
        f"{summary['first_epoch_seconds']:.1f} s")
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(record, f, indent=1)
    print(f"[brax_sac] wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
