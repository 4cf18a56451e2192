"""Statistics over training seeds, from rliable (Agarwal et al. 2021): the one place earjax
computes confidence intervals (``experiments.report``, ``earjax.comparison``)."""
from __future__ import annotations

import numpy as np

BOOTSTRAP_REPS = 2000


def interval_estimates(scores: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS,
                       seed: int | None = None) -> dict:
  """Per name, of its per-seed ``scores`` [n]: ``n``, the mean and the IQM, each with its
  95 % stratified-bootstrap CI (``rliable.library.get_interval_estimates``, ``reps``
  resamples; with ``seed``, the same resamples every call: rliable draws them from
  numpy's global generator (``StratifiedBootstrap.update_indices`` ignores its
  ``random_state``), so the seed is set there and the generator's state put back)."""
  if seed is not None:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
      return interval_estimates(scores, reps)
    finally:
      np.random.set_state(state)
  from rliable import library as rly  # pylint: disable=import-outside-toplevel
  from rliable import metrics  # pylint: disable=import-outside-toplevel
  aggregate = lambda x: np.array([metrics.aggregate_mean(x), metrics.aggregate_iqm(x)])
  point, ci = rly.get_interval_estimates({k: np.asarray(v)[:, None] for k, v in scores.items()},
                                         aggregate, reps=reps)
  return {k: {"n": int(len(scores[k])), "mean": float(point[k][0]),
              "mean_ci": [float(ci[k][0, 0]), float(ci[k][1, 0])],
              "iqm": float(point[k][1]), "iqm_ci": [float(ci[k][0, 1]), float(ci[k][1, 1])]}
          for k in scores}
