"""One figure of side-by-side panels, one per task, as the adaptation and compression
plots draw them."""
from typing import Callable, Sequence


def task_panels(tasks: Sequence[str], draw: Callable, path: str, *, xlabel: str,
                ylabel: str, panel_size: tuple[float, float]) -> None:
  """Calls ``draw(ax, task)`` for each task's panel, labels, grids and saves to ``path``
  (the first panel carries the y label and the legend)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  width, height = panel_size
  fig, axes = plt.subplots(1, len(tasks), figsize=(width * len(tasks), height),
                           squeeze=False)
  for ax, task in zip(axes[0], tasks):
    draw(ax, task)
    ax.set_title(task, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(ylabel)
  axes[0, 0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
