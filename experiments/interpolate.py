"""Interpolation and composition of two LTEs (Eq. 1), rolled out frozen.

  python -m experiments.interpolate --workdir=runs/hcv_cpu --task_a=vel1 --task_b=vel4 \
      --betas=0,0.25,0.5,0.75,1 [--seeds=5 --out_dir=DIR/interpolate]

Z' = normalize(beta Z_a + (1 - beta) Z_b): beta = 1 is task_a, beta = 0 is task_b.  An
end is a training task (name or index) or any LTE expression of ``earjax.skills``
(a saved skill, ``run3 + jump10``, ``x,y,z``); returns are reported under the tasks
``--reward_a``/``--reward_b`` (default: the ends, where they are tasks).  Every beta x
seed x {deterministic, stochastic} episode runs in one vmapped batch.  Writes
``<out_dir>/<task_a>_<task_b>.json`` (per beta: mean forward velocity, returns under both
reward tasks, torso height mean/peak and the fraction of steps airborne; over the betas:
whether the velocity is monotone in beta and its R^2 against the straight line between
the two end velocities; where heights are measured, ``composition``: the betas that
keep half the run end's speed and reach half the jump end's peak-height margin,
``earjax.adaptation.lte.composition``) and a PNG.
"""
import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from earjax import checkpoint
from earjax import files
from earjax import skills
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_CHECKPOINT, _SEED_INDEX = cli.define_checkpoint_flags()
_TASK_A = flags.DEFINE_string("task_a", None, "End a (beta = 1): a task (name or index) "
                              "or an LTE expression.", required=True)
_TASK_B = flags.DEFINE_string("task_b", None, "End b (beta = 0): a task (name or index) "
                              "or an LTE expression.", required=True)
_REWARD_A = flags.DEFINE_string("reward_a", None, "Task whose return is reported as "
                                "return_a (default task_a, if a task).")
_REWARD_B = flags.DEFINE_string("reward_b", None, "Task whose return is reported as "
                                "return_b (default task_b, if a task).")
_BETAS = flags.DEFINE_list("betas", ["0", "0.25", "0.5", "0.75", "1"], "Betas in [0, 1].")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Episodes per beta and action mode.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output folder (default DIR/interpolate).")


def summarise(episode, index, heights: bool) -> dict:
  """Mean and std over the episodes ``index`` of one beta and action mode."""
  def stat(x):
    x = np.asarray(x)[index]
    return {"mean": float(x.mean()), "std": float(x.std())}
  out = {"velocity": stat(episode.velocity), "return_a": stat(episode.scores[:, 0]),
         "return_b": stat(episode.scores[:, 1])}
  if heights:
    height = np.asarray(episode.metrics["height"])[:, index]
    airborne = np.asarray(episode.metrics["min_contact"])[:, index] > 0
    out.update(height_mean=float(height.mean()), height_peak=float(height.max(0).mean()),
               airborne_fraction=float(airborne.mean()))
  return out


def plot(result: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  heights = "height_mean" in result["betas"][0]["deterministic"]
  fig, axes = plt.subplots(1, 2 if heights else 1, figsize=(10 if heights else 5.5, 3.8),
                           squeeze=False)
  betas = [r["beta"] for r in result["betas"]]
  for mode, marker in (("deterministic", "o-"), ("stochastic", "s--")):
    v = [r[mode]["velocity"] for r in result["betas"]]
    axes[0, 0].errorbar(betas, [x["mean"] for x in v], [x["std"] for x in v], fmt=marker,
                        capsize=3, label=f"{mode} actions")
    if heights:
      axes[0, 1].plot(betas, [r[mode]["height_mean"] for r in result["betas"]], marker,
                      label=f"mean height, {mode}")
      axes[0, 1].plot(betas, [r[mode]["airborne_fraction"] for r in result["betas"]],
                      marker, alpha=0.5, label=f"airborne fraction, {mode}")
  for source, beta in (("a", 1.0), ("b", 0.0)):
    target = result[f"target_{source}"]
    if target is not None:
      axes[0, 0].axhline(target, color="gray", ls=":", lw=1)
      axes[0, 0].annotate(f"target {result[f'reward_{source}']}", (beta, target),
                          fontsize=8, color="gray")
  axes[0, 0].set_ylabel("mean forward velocity (m/s)")
  if heights:
    axes[0, 1].set_ylabel("torso height rootz (m) / fraction")
  for ax in axes[0]:
    ax.set_xlabel(f"beta (1 = {result['task_a']}, 0 = {result['task_b']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(f"Eq. 1 interpolation, {result['env']} ({os.path.basename(result['workdir'])})",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv):
  cli.start(argv)
  try:
    betas = lte_lib.check_betas([float(b) for b in _BETAS.value])
  except ValueError as e:
    cli.fail([str(e) if "beta" in str(e) else f"betas must be numbers: {e}"])
  if _SEEDS.value < 1:
    cli.fail([f"seeds must be positive, got {_SEEDS.value}"])
  try:
    run = load_run(_WORKDIR.value, _CHECKPOINT.value, _SEED_INDEX.value)
    (lte_a, a), (lte_b, b) = (skills.lte_or_task(run, text)
                              for text in (_TASK_A.value, _TASK_B.value))
    ends = (a, b)
    rewarded = []
    for flag, index, side in ((_REWARD_A, a, "a"), (_REWARD_B, b, "b")):
      if flag.value is None and index is None:
        raise ValueError(f"task_{side} is not a task of this run: name the task whose "
                         f"reward to report with --reward_{side}")
      rewarded.append(index if flag.value is None
                      else lte_lib.task_index(run.task_names, flag.value))
    a, b = rewarded
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  ltes = lte_lib.interpolate(lte_a, lte_b, betas, run.config.ear_sac.normalize_lte)
  k, s = len(betas), _SEEDS.value
  # Batch order: mode (det, stoch) x beta x seed.
  batch_ltes = jnp.tile(jnp.repeat(ltes, s, axis=0), (2, 1))
  stochastic = jnp.repeat(jnp.array([False, True]), k * s)
  task_params = jnp.broadcast_to(jnp.asarray(run.task_params[a]), (2 * k * s,) +
                                 run.task_params[a].shape)
  keys = jnp.tile(jax.random.split(jax.random.PRNGKey(run.config.seed), s), (2 * k, 1))
  sources = jnp.asarray(run.task_params[np.array([a, b])])
  episode = jax.device_get(lte_lib.make_rollout(run.env)(
      run.policy, batch_ltes, task_params, keys, stochastic, sources))
  heights = "height" in episode.metrics
  rows = []
  for i, beta in enumerate(betas):
    row = {"beta": float(beta), "lte": np.asarray(ltes[i]).tolist()}
    for m, mode in enumerate(("deterministic", "stochastic")):
      row[mode] = summarise(episode, np.arange(s) + (m * k + i) * s, heights)
    rows.append(row)
  result = {"workdir": run.workdir, "env": run.env.name, "checkpoint_epoch": run.epoch,
            "task_a": _TASK_A.value if ends[0] is None else run.task_names[ends[0]],
            "task_b": _TASK_B.value if ends[1] is None else run.task_names[ends[1]],
            "reward_a": run.task_names[a], "reward_b": run.task_names[b],
            "task_param_a": run.task_params[a].tolist(),
            "task_param_b": run.task_params[b].tolist(),
            "target_a": run.env.velocity_target(run.task_params[a]),
            "target_b": run.env.velocity_target(run.task_params[b]),
            "lte_a": np.asarray(lte_a).tolist(), "lte_b": np.asarray(lte_b).tolist(),
            "episodes_per_beta": s, "episode_length": run.env.episode_length,
            "airborne": "min_contact > 0: no contact candidate touches (MJX contact dist)",
            "betas": rows,
            "linearity": {mode: lte_lib.linearity(betas, [r[mode]["velocity"]["mean"]
                                                          for r in rows])
                          for mode in ("deterministic", "stochastic")}}
  if heights:   # Run-Jump, Hopper skills: does some beta jump while running?
    result["composition"] = {mode: lte_lib.composition(
        betas, [r[mode]["velocity"]["mean"] for r in rows],
        [r[mode]["height_peak"] for r in rows]) for mode in ("deterministic", "stochastic")}
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "interpolate")
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, f"{cli.slug(_TASK_A.value)}_{cli.slug(_TASK_B.value)}")
  files.write_json(stem + ".json", result)
  plot(result, stem + ".png")
  print(f"{'beta':>6}{'v det':>9}{'v stoch':>9}{'R_a det':>10}{'R_b det':>10}"
        + (f"{'h mean':>8}{'h peak':>8}{'air':>6}" if heights else ""))
  for row in rows:
    d, st = row["deterministic"], row["stochastic"]
    print(f"{row['beta']:>6.2f}{d['velocity']['mean']:>9.2f}{st['velocity']['mean']:>9.2f}"
          f"{d['return_a']['mean']:>10.1f}{d['return_b']['mean']:>10.1f}"
          + (f"{d['height_mean']:>8.3f}{d['height_peak']:>8.3f}{d['airborne_fraction']:>6.2f}"
             if heights else ""))
  for mode, fit in result["linearity"].items():
    r2 = "n/a" if fit["r2_vs_line"] is None else f"{fit['r2_vs_line']:.3f}"
    print(f"{mode}: velocity monotone in beta: {fit['monotone']}, R^2 vs the line between "
          f"the ends: {r2}")
  for mode, got in result.get("composition", {}).items():
    found = ("n/a (an end is missing, or the jump end does not jump: its peak is not "
             "min_jump_margin above the run end's, lte.composition)"
             if got["exists"] is None else ", ".join(f"{b:g}" for b in got["betas"]) or "none")
    print(f"{mode}: betas keeping half the run speed and half the jump's peak margin: "
          f"{found}")
  print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
