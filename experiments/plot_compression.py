"""Plots of a compression run (``experiments.compress``).

  python -m experiments.plot_compression --workdir=runs/compress_halfcheetah

Writes into DIR: ``latent_z2.png`` (the dataset's policies at their codes in the 2-D
latent space, coloured by their mean forward velocity; beside it EAR's LTE-sphere plot is
``experiments.plot_lte``'s), ``recovery.png`` (best return vs env steps of latent PGPE
per latent size and of PGPE in Θ, per task, mean over seeds) and ``adapt.png`` (the
adaptation comparison's best-so-far return vs env steps per held-out task, mean ± std
over seeds), each when its results exist; prints the Markdown tables (their numbers are
``recovery_summary.json`` and ``adapt_summary.json``, written by the jobs).
"""
import json
import os

from absl import app
from absl import flags
import matplotlib
import numpy as np

from earjax.compression import jobs, store
from earjax.compression.dataset import PolicyDataset
from experiments import cli
from experiments.plotting import task_panels

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

_WORKDIR = flags.DEFINE_string("workdir", None, "A compression run directory.",
                               required=True)


def plot_latent(workdir: str, path: str) -> None:
  compressed = store.load(workdir, 2)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  fig, ax = plt.subplots(figsize=(5.2, 4.4))
  art = ax.scatter(compressed.codes[:, 0], compressed.codes[:, 1], c=dataset.velocity, s=3,
                   cmap="coolwarm", vmin=-np.abs(dataset.velocity).max(),
                   vmax=np.abs(dataset.velocity).max())
  fig.colorbar(art, ax=ax, label="mean forward velocity (m/s)")
  ax.set_xlabel("z[0]")
  ax.set_ylabel("z[1]")
  ax.set_title(f"{dataset.env_name}: {dataset.size:,} policies in a 2-D latent space",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def plot_recovery(rows: list[dict], path: str) -> None:
  def draw(ax, task):
    mine = [r for r in rows if r["task"] == task]
    searched = [r for r in mine if r["curve"] is not None]   # random codes have none
    for label in dict.fromkeys(jobs.space_label(r) for r in searched):
      runs = [r for r in searched if jobs.space_label(r) == label]
      steps = np.array(runs[0]["curve"]["env_steps"]) / 1e3
      ax.plot(steps, np.mean([r["curve"]["best"] for r in runs], 0), label=f"PGPE in {label}")
    ax.axhline(mine[0]["dataset_best_return"], color="k", ls=":", label="dataset best")
  task_panels(list(dict.fromkeys(r["task"] for r in rows)), draw, path,
              xlabel="thousand env steps", ylabel="best episode return so far",
              panel_size=(3.6, 3.3))


def plot_adapt(result: dict, path: str) -> None:
  def draw(ax, task):
    for method, res in result["methods"].items():
      curves = np.array(res["tasks"][task]["best_curve"])
      steps = np.array(res["env_steps"]) / 1e3
      mean, std = curves.mean(0), curves.std(0)
      ax.plot(steps, mean, "o-", ms=2, label=method)
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  task_panels(result["tasks"], draw, path, xlabel="thousand env steps on the new task",
              ylabel="best episode return so far", panel_size=(4.2, 3.4))


def main(argv):
  cli.start(argv)
  workdir = _WORKDIR.value
  if not os.path.isdir(workdir):
    cli.fail([f"no compression run at {workdir}"])
  wrote = []
  if 2 in store.latent_dims(workdir):
    plot_latent(workdir, os.path.join(workdir, "latent_z2.png"))
    wrote.append("latent_z2.png")
  recovery_path = os.path.join(workdir, "recovery.jsonl")
  if os.path.exists(recovery_path):
    with open(recovery_path) as f:
      rows = [json.loads(line) for line in f]
    plot_recovery(rows, os.path.join(workdir, "recovery.png"))
    wrote.append("recovery.png")
    print(jobs.recovery_table(rows, jobs.read_decoded(workdir)), "\n")
  adapt_path = os.path.join(workdir, "adapt.json")
  if os.path.exists(adapt_path):
    with open(adapt_path) as f:
      result = json.load(f)
    plot_adapt(result, os.path.join(workdir, "adapt.png"))
    wrote.append("adapt.png")
    print(jobs.adaptation_table(result))
  if not wrote:
    cli.fail([f"nothing to plot in {workdir} (run experiments.compress first)"])
  print(f"wrote {', '.join(wrote)} in {workdir}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
