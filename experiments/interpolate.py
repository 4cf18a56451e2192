"""Interpolation and composition of two training tasks' LTEs (Eq. 1), rolled out frozen.

  python -m experiments.interpolate --workdir=runs/hcv_cpu --task_a=0 --task_b=3 \
      --betas=0,0.25,0.5,0.75,1 [--seeds=5 --out_dir=DIR/interpolate]

Z' = normalize(beta Z_a + (1 - beta) Z_b): beta = 1 is task_a, beta = 0 is task_b.  Every
beta x seed x {deterministic, stochastic} episode runs in one vmapped batch.  Writes
``<out_dir>/<task_a>_<task_b>.json`` (per beta: mean forward velocity, returns under both
source tasks, torso height mean/peak and the fraction of steps airborne) and a PNG.
"""
import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from earjax import checkpoint
from earjax import files
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_TASK_A = flags.DEFINE_string("task_a", None, "Source task i (name or index).",
                              required=True)
_TASK_B = flags.DEFINE_string("task_b", None, "Source task j (name or index).",
                              required=True)
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
      axes[0, 0].annotate(f"target {result[f'task_{source}']}", (beta, target),
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
    run = load_run(_WORKDIR.value)
    a = lte_lib.task_index(run.task_names, _TASK_A.value)
    b = lte_lib.task_index(run.task_names, _TASK_B.value)
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  ltes = lte_lib.interpolate(run.ltes[a], run.ltes[b], betas)
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
            "task_a": run.task_names[a], "task_b": run.task_names[b],
            "task_param_a": run.task_params[a].tolist(),
            "task_param_b": run.task_params[b].tolist(),
            "target_a": run.env.velocity_target(run.task_params[a]),
            "target_b": run.env.velocity_target(run.task_params[b]),
            "lte_a": np.asarray(run.ltes[a]).tolist(), "lte_b": np.asarray(run.ltes[b]).tolist(),
            "episodes_per_beta": s, "episode_length": run.env.episode_length,
            "airborne": "min_contact > 0: no contact candidate touches (MJX contact dist)",
            "betas": rows}
  out_dir = _OUT_DIR.value or os.path.join(run.workdir, "interpolate")
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, f"{_TASK_A.value}_{_TASK_B.value}")
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
  print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
