"""Geometry of the representation: LTEs on the sphere and LSEs along trajectories.

  python -m experiments.plot_lte --workdir=runs/hcv_cpu \
      [--adapt=DIR/adapt/results.json,... --interpolate=DIR/interpolate/3_0.json,...] \
      [--out=DIR/lte_geometry.png]

Left: the unit-sphere LTEs of the training tasks (a PCA projection to 3-D when the LTE
has more dimensions), the LTEs adapted by each method of ``experiments.adapt`` and the
Eq. 1 paths of ``experiments.interpolate``.  Right (Sec. 4.5): the LSEs phi(s_t) of one
deterministic episode per training task, projected on their two principal components
(second half of the episode, the steady gait).
"""
import json
import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

from earjax import checkpoint
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run
from experiments import cli

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_CHECKPOINT, _SEED_INDEX = cli.define_checkpoint_flags()
_ADAPT = flags.DEFINE_list("adapt", [], "results.json files of experiments.adapt.")
_INTERPOLATE = flags.DEFINE_list("interpolate", [], "JSON files of experiments.interpolate.")
_OUT = flags.DEFINE_string("out", None, "Output PNG (default DIR/lte_geometry.png).")


def pca(x: np.ndarray, k: int, fit: np.ndarray | None = None):
  """Projects ``x`` [..., d] on the top ``k`` principal axes of ``fit`` (default x)."""
  fit = x.reshape(-1, x.shape[-1]) if fit is None else fit
  mean = fit.mean(0)
  _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
  return (x - mean) @ vt[:k].T


def main(argv):
  cli.start(argv)
  try:
    run = load_run(_WORKDIR.value, _CHECKPOINT.value, _SEED_INDEX.value)
    adapts = [json.load(open(p)) for p in _ADAPT.value]  # pylint: disable=consider-using-with
    interps = [json.load(open(p)) for p in _INTERPOLATE.value]  # pylint: disable=consider-using-with
  except (ValueError, OSError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  table = np.asarray(run.ltes)
  project = (lambda x: np.asarray(x)) if run.lte_dim <= 3 else (
      lambda x: pca(np.asarray(x), 3, fit=table))
  fig = plt.figure(figsize=(11, 4.8))
  ax = fig.add_subplot(1, 2, 1, projection="3d")
  if run.lte_dim == 3:
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 30), np.linspace(0, np.pi, 15))
    ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v),
                      color="gray", alpha=0.12, lw=0.5)
  points = project(table)
  ax.scatter(*points.T, s=60, c="k", depthshade=False, label="training LTEs")
  for p, name in zip(points, run.task_names):
    ax.text(*p, f" {name}", fontsize=8)
  markers = {"cem": ("^", "C0"), "table_es": ("s", "C1")}
  for method in sorted({m for result in adapts for m in result["methods"]}):
    marker, color = markers.get(method, ("x", "C3"))
    ax.scatter([], [], marker=marker, color=color, label=f"adapted ({method})")
    for result in adapts:
      for task, per in result["methods"].get(method, {"tasks": {}})["tasks"].items():
        p = project(np.asarray(per["final"]["lte"])[None])[0]
        ax.scatter(*p, marker=marker, color=color, s=45, depthshade=False)
        ax.text(*p, f" {task}", fontsize=7, color=color)
  for k, result in enumerate(interps):
    path = project(np.array([r["lte"] for r in result["betas"]]))
    ax.plot(*path.T, "o-", ms=3, color=f"C{k + 4}",
            label=f"Eq. 1 {result['task_a']}-{result['task_b']}")
  ax.set_title(f"LTEs ({'unit sphere' if run.lte_dim == 3 else 'PCA to 3-D'})", fontsize=9)
  ax.legend(fontsize=7, loc="upper left")

  episode = jax.device_get(lte_lib.make_rollout(run.env, keep_states=True)(
      run.policy, run.ltes, jnp.asarray(run.task_params),
      jax.random.split(jax.random.PRNGKey(0), len(run.task_params))))
  half = episode.obs.shape[0] // 2
  lse = np.asarray(run.policy.lse(jnp.asarray(episode.obs[half:])))  # [T, K, lse_dim]
  flat = lse.reshape(-1, lse.shape[-1])
  xy = pca(lse, 2, fit=flat)
  ax2 = fig.add_subplot(1, 2, 2)
  for k, name in enumerate(run.task_names):
    ax2.plot(xy[:, k, 0], xy[:, k, 1], "-", lw=0.8, color=f"C{k}",
             label=f"{name} (v = {float(episode.velocity[k]):.2f})")
  ax2.set_xlabel("LSE PC 1")
  ax2.set_ylabel("LSE PC 2")
  ax2.set_title(f"LSE along one episode per task (steps {half}-{2 * half})", fontsize=9)
  ax2.legend(fontsize=7)
  ax2.grid(alpha=0.3)
  fig.tight_layout()
  out = _OUT.value or os.path.join(run.workdir, "lte_geometry.png")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, dpi=110)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
