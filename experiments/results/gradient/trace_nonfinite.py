"""Where the rollout gradient's first non-finite value comes from (issue 32).

  .venv/bin/python experiments/results/gradient/trace_nonfinite.py \
      --workdir=runs/hcv_5seeds --seed_index=0 --task=4.5 --episodes=8 \
      --out=experiments/results/gradient/trace_nonfinite_seed0_vel4.5.json

For ``--episodes`` deterministic episodes of the run's frozen policy under the LTE
``grad_rollout`` starts from (the nearest training task's) on the new task, stepped as
``experiments.adapt`` steps them for the gradient (MJX, one solver iteration):
0. the episodes themselves (no derivative): the first step whose reward is not finite,
   per episode, and for the first such episode that step run op by op (a blow-up of
   the one-iteration solver's physics shows here, not in a derivative);
1. the reverse-mode gradient of each episode's return w.r.t. the LTE (what
   ``grad_rollout`` ascends, one episode at a time): finite or not;
2. forward mode, d r_t / dZ for every step t in one pass (``jax.jacfwd``, 3 tangent
   directions): the first step whose derivative is not finite, per episode;
3. for the first episode with one: the state's tangent followed step by step and leaf
   by leaf (a NaN in a contact or solver field reaches the reward only steps later), and
   the first step at which any leaf's tangent stops being finite re-run op by op with
   ``jax_debug_nans``/``jax_debug_infs``: the primitive that makes the first NaN or inf
   and where in MJX (or earjax) it is called (run with JAX_TRACEBACK_FILTERING=off).
Writes what each part found to ``--out``.

``--lte`` starts from a given LTE instead (an ascent step's ``lte`` in ``experiments.adapt``'s
results JSON) and ``--horizon`` cuts the derivative every h steps as ``grad_rollout
--gradient_horizon=h`` does (``acting.rollout``'s ``truncate``: the state enters every h-th
step with its gradient stopped), so a non-finite step of a truncated ascent is traced
where it happened.
"""
import argparse
import json
import os
import sys
import traceback

import jax
import jax.numpy as jnp
import numpy as np

from earjax.adaptation import gradient
from earjax.policy import load_run
from earjax.run import Run


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--seed_index", type=int, default=0)
  p.add_argument("--checkpoint", default="latest")
  p.add_argument("--task", type=float, required=True)
  p.add_argument("--episodes", type=int, default=8)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--lte", default="", help="comma-separated LTE to start from "
                 "(default: the nearest training task's, as grad_rollout starts)")
  p.add_argument("--horizon", type=int, default=0,
                 help="cut the derivative every h steps (0: the whole episode)")
  p.add_argument("--ascent_step", type=int, default=-1,
                 help="take the episodes' keys of this step of experiments.adapt's "
                 "grad_rollout ascent (its --seed, --generations = --ascent_steps, task "
                 "--ascent_task of --ascent_tasks, --episodes = its 90), so its episodes "
                 "are the ones traced; -1: keys of their own from --seed")
  p.add_argument("--ascent_steps", type=int, default=10)
  p.add_argument("--ascent_task", type=int, default=0)
  p.add_argument("--ascent_tasks", type=int, default=1)
  p.add_argument("--out", required=True)
  return p.parse_args(argv)


def op_by_op(fn, *args) -> dict:
  """``fn(*args)`` run eagerly, op by op, with ``jax_debug_nans``/``jax_debug_infs``: the
  first op that makes a NaN or an inf (its message and the MJX/earjax frames that call it),
  or that none did."""
  jax.config.update("jax_debug_nans", True)
  jax.config.update("jax_debug_infs", True)
  try:
    with jax.disable_jit():
      fn(*args)
    return {"message": "no NaN/inf raised op by op"}
  except FloatingPointError as e:
    frames = traceback.extract_tb(e.__traceback__)
    return {"message": str(e).splitlines()[0],
            "frames": [f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}: {f.line}"
                       for f in frames if "mjx" in f.filename or "earjax" in f.filename][-15:]}
  finally:
    jax.config.update("jax_debug_nans", False)
    jax.config.update("jax_debug_infs", False)


def main(argv):
  args = parse(argv)
  run = load_run(args.workdir, args.checkpoint, args.seed_index)
  env = Run.from_config(run.config, impl="jax", solver_iterations=1).env
  task = jnp.array([args.task], jnp.float32)
  if args.lte:
    lte0 = jnp.asarray([float(x) for x in args.lte.split(",")], jnp.float32)
    if lte0.shape != run.ltes.shape[1:]:
      sys.exit(f"--lte has {lte0.shape[0]} entries; the run's LTEs have {run.ltes.shape[1]}")
  else:
    lte0 = jnp.asarray(gradient.nearest_ltes(run.task_params, np.asarray(run.ltes),
                                             np.array([[args.task]]))[0])
  policy = run.policy
  if args.ascent_step >= 0:   # experiments.adapt's keys: search, step, then episode
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 3))
    from experiments.adapt import METHODS   # the repository's, beside earjax
    search_key = jax.random.split(jax.random.fold_in(
        jax.random.PRNGKey(args.seed), METHODS.index("grad_rollout")))[0]
    step_key = jax.random.split(search_key, args.ascent_steps)[args.ascent_step]
    keys = jax.random.split(step_key, args.ascent_tasks * args.episodes)[
        args.ascent_task * args.episodes:(args.ascent_task + 1) * args.episodes]
  else:
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.episodes)
  steps = env.episode_length

  def act(z, state):
    return jnp.clip(policy.act(z, state.obs, jax.random.PRNGKey(0), False), -1.0, 1.0)

  def cut(state, t):
    """The state with its derivative stopped at the start of every ``--horizon`` window."""
    if not args.horizon:
      return state
    return jax.tree.map(lambda x: jnp.where(t % args.horizon == 0, jax.lax.stop_gradient(x), x)
                        if jnp.issubdtype(x.dtype, jnp.inexact) else x, state)

  def rewards(z, key, length=steps):
    """Every step's reward of the episode of ``key`` under ``z`` (as acting.rollout)."""
    state = env.reset(jax.random.split(key)[0], task)

    def step(state, t):
      state = cut(state, t)
      nxt = env.step(state, act(z, state))
      return nxt, nxt.reward
    return jax.lax.scan(step, state, jnp.arange(length))[1]

  # 0. The episodes themselves: a reward that is not finite without any derivative is a
  # blow-up of the physics (of the one-iteration solver the gradient steps), traced op by
  # op at its first step.
  primal = np.asarray(jax.jit(jax.vmap(rewards, in_axes=(None, 0)))(lte0, keys))  # [E, T]
  primal_first = [int(np.argmax(b)) if b.any() else None for b in ~np.isfinite(primal)]
  print("first step with a non-finite reward per episode:", primal_first, flush=True)
  primal_found = None
  if any(t is not None for t in primal_first):
    episode = next(e for e, t in enumerate(primal_first) if t is not None)
    born = primal_first[episode]
    step_fn = lambda s: env.step(s, act(lte0, s))
    state = jax.jit(lambda s: jax.lax.scan(lambda c, _: (step_fn(c), None), s, None,
                                           length=born)[0])(
        env.reset(jax.random.split(keys[episode])[0], task))
    primal_found = {"episode": episode, "step": born,
                    "qvel_max_abs_before": float(jnp.abs(state.data.qvel).max()),
                    **op_by_op(step_fn, state)}
    print(json.dumps(primal_found, indent=1), flush=True)

  # 1. Reverse mode, per episode (remat as grad_rollout does).
  def episode_return(z, key):
    state = env.reset(jax.random.split(key)[0], task)

    def step(carry, t):
      state, total = carry
      state = cut(state, t)
      nxt = env.step(state, act(z, state))
      return (nxt, total + nxt.reward), None
    return jax.lax.scan(jax.checkpoint(step), (state, 0.0), jnp.arange(steps))[0][1]

  reverse = jax.jit(jax.vmap(jax.grad(episode_return), in_axes=(None, 0)))(lte0, keys)
  reverse_finite = np.isfinite(np.asarray(reverse)).all(-1)
  print("reverse-mode gradient finite per episode:", reverse_finite.tolist(), flush=True)

  # 2. Forward mode: d r_t / dZ for every t.
  jac = np.asarray(jax.jit(jax.vmap(jax.jacfwd(rewards), in_axes=(None, 0)))(lte0, keys))
  bad = ~np.isfinite(jac).all(-1)                                   # [E, T]
  first_bad = [int(np.argmax(b)) if b.any() else None for b in bad]
  print("first step with a non-finite d r_t/dZ per episode:", first_bad, flush=True)
  kinds = ["nan" if t is not None and np.isnan(jac[e, t]).any() else
           "inf" if t is not None else None for e, t in enumerate(first_bad)]
  before = [float(np.abs(jac[e, :t]).max()) if t else None for e, t in enumerate(first_bad)]
  print("its kind:", kinds, "largest |d r/dZ| before it:", before, flush=True)
  norms = np.where(np.isfinite(jac), jac, np.nan)
  result = {"workdir": args.workdir, "seed_index": args.seed_index, "checkpoint_epoch":
            run.epoch, "task": args.task, "lte": np.asarray(lte0).tolist(),
            "horizon": args.horizon, "ascent_step": args.ascent_step,
            "solver_iterations": int(env.mj_model.opt.iterations),
            "primal_first_nonfinite_step": primal_first,
            "primal_nonfinite_op": primal_found,
            "reverse_finite": reverse_finite.tolist(),
            "reverse_norm": np.linalg.norm(np.where(np.isfinite(reverse), reverse, np.nan),
                                           axis=-1).tolist(),
            "forward_first_nonfinite_step": first_bad,
            "forward_first_nonfinite_kind": kinds,
            "forward_max_abs_before_it": before,
            "forward_max_abs_by_step": np.nanmax(np.abs(norms), axis=(0, 2)).tolist()}

  with open(args.out, "w") as f:   # parts 1-2 kept even if part 3 fails
    json.dump(result, f, indent=1)

  # 3. Where the NaN is born: the state's tangent (forward mode, one LTE direction) is
  # followed step by step, leaf by leaf, for the first episode with a NaN; the first step
  # at which any leaf's tangent stops being finite is re-run op by op.
  order = [e for e, k in enumerate(kinds) if k == "nan"] + [
      e for e, k in enumerate(kinds) if k == "inf"]
  episode = order[0] if order else None
  if episode is not None:
    key = keys[episode]
    direction = int(np.argmax([not np.isfinite(jac[episode, first_bad[episode], j])
                               for j in range(lte0.shape[0])]))
    dz = jnp.eye(lte0.shape[0], dtype=jnp.float32)[direction]
    step_fn = lambda z, s: env.step(s, act(z, s))
    start = jax.jvp(lambda z: env.reset(jax.random.split(key)[0], task), (lte0,), (dz,))
    leaves_of = lambda tree: jax.tree.leaves(tree)
    names = [jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_flatten_with_path(start[1])[0]]

    def restart(ds, t):
      """The tangent zeroed where a ``--horizon`` window starts (``cut`` in forward mode)."""
      if not args.horizon:
        return ds
      return jax.tree.map(lambda x: jnp.where(t % args.horizon == 0, jnp.zeros_like(x), x)
                          if jnp.issubdtype(x.dtype, jnp.inexact) else x, ds)

    def follow(carry, t):
      s, ds = carry
      ds = restart(ds, t)
      nxt, dnxt = jax.jvp(step_fn, (lte0, s), (dz, ds))
      finite = jnp.stack([jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact)
                          else jnp.array(True) for x in leaves_of(dnxt)])
      scale = jnp.stack([jnp.abs(x).max() if jnp.issubdtype(x.dtype, jnp.inexact)
                         and x.size else jnp.array(0.0) for x in leaves_of(dnxt)])
      return (nxt, dnxt), (finite, scale)

    finite, scale = jax.jit(lambda c: jax.lax.scan(follow, c, jnp.arange(steps))[1])(start)
    finite, scale = np.asarray(finite), np.asarray(scale)
    born = int(np.argmax(~finite.all(1))) if (~finite).any() else None
    found = {"episode": episode, "direction": direction,
             "reward_derivative_first_nonfinite_step": first_bad[episode],
             "state_tangent_first_nonfinite_step": born}
    if born is not None:
      found["leaves_nonfinite_then"] = [names[i] for i in np.flatnonzero(~finite[born])]
      found["largest_tangents_before"] = sorted(
          ((float(scale[born - 1, i]), names[i]) for i in range(len(names))
           if born > 0 and np.isfinite(scale[born - 1, i])), reverse=True)[:8]
      prefix = jax.jit(lambda c: jax.lax.scan(
          lambda c, t: (jax.jvp(step_fn, (lte0, c[0]), (dz, restart(c[1], t))), None), c,
          jnp.arange(born))[0])
      state, tangent = prefix(start) if born > 0 else start
      tangent = restart(tangent, born)
      tangent = jax.tree.map(   # integer leaves: float0 tangents (jit hands back void)
          lambda p, x: x if jnp.issubdtype(jnp.result_type(p), jnp.inexact)
          else np.zeros(np.shape(p), jax.dtypes.float0), state, tangent)
      found.update(op_by_op(jax.jvp, step_fn, (lte0, state), (dz, tangent)))
    print(json.dumps(found, indent=1), flush=True)
    result["first_nonfinite_op"] = found
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print("wrote", args.out)


if __name__ == "__main__":
  main(sys.argv[1:])
