"""``experiments.compare_adaptation``: one command, one table, one plot; its records
checked on a tiny EAR run (the methods' own adaptation is tested in test_adaptation.py,
test_pearl.py and test_maml.py); bad input refused in one line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from earjax.adaptation import cem
from earjax import comparison as compare
from earjax import envs
from tiny import REPO


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "experiments.compare_adaptation", *args],
                        cwd=REPO, capture_output=True, text=True, timeout=600)


def test_inside_tasks_are_the_midpoints_of_the_training_targets():
  np.testing.assert_allclose(compare.inside_tasks(np.array([[3.0], [1.0], [2.0], [4.0]])),
                             [[1.5], [2.5], [3.5]])


def test_inside_tasks_need_a_one_parameter_family():
  with pytest.raises(ValueError, match="needs a one-parameter family"):
    compare.inside_tasks(np.zeros((3, 2)))


def test_cem_best_so_far_is_the_top_elite_of_the_best_generation():
  # 3 generations, 2 tasks, 2 elites of dimension 1: task 0 peaks in generation 1,
  # task 1 in generation 0 (its last generation is worse).
  elites = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1)
  history = {"best": np.array([[1.0, 9.0], [5.0, 2.0], [4.0, 3.0]]), "elites": elites}
  np.testing.assert_array_equal(cem.best_so_far(history), [elites[1, 0, 0], elites[0, 1, 0]])


def _record(targets, before, after):
  """A method's record: per task, 2 adaptation seeds whose velocities average to
  ``before`` (the curve's first point) and ``after`` (the final episodes)."""
  return {"tasks": {f"vel{t}": {"velocity_target": t,
                                "velocity": [[b - 0.1, 9.0], [b + 0.1, 9.0]],
                                "final_velocity": [a - 0.05, a + 0.05]}
                    for t, b, a in zip(targets, before, after)}}


def test_tracking_by_hand():
  """Targets 0.5, 1.0, 1.5; the unadapted policy runs 0.9 whatever the target (slope 0);
  adapted: 0.6, 1.0, 1.4, slope (1.4 - 0.6) / (1.5 - 0.5) = 0.8 (least squares over three
  evenly spaced points with the middle on the line is the end-to-end slope); every task's
  error shrank (0.4 -> 0.1, 0.1 -> 0.0, 0.6 -> 0.1)."""
  out = compare.tracking(_record([0.5, 1.0, 1.5], [0.9] * 3, [0.6, 1.0, 1.4]))
  np.testing.assert_allclose(out["before"], [0.9] * 3)
  np.testing.assert_allclose([out["slope_before"], out["slope_after"]], [0.0, 0.8], atol=1e-9)
  assert out["improved"] == [True, True, True] and out["holds"]


def test_a_policy_that_ignores_the_target_fails_tracking():
  # A policy that runs 1.0 before and after: the middle task is within its band (so
  # "improved"), the others are no better, and the slope is 0.
  ignores = compare.tracking(_record([0.5, 1.0, 1.5], [1.0] * 3, [1.0] * 3))
  assert ignores["slope_after"] == pytest.approx(0.0, abs=1e-9)
  assert ignores["improved"] == [False, True, False] and not ignores["holds"]
  # Following the target with the right slope but one task worse than before fails too.
  worse = compare.tracking(_record([0.5, 1.0, 1.5], [0.5, 0.9, 1.5], [0.2, 1.0, 1.5]))
  assert worse["slope_after"] >= 0.7 and worse["improved"][0] is False and not worse["holds"]
  with pytest.raises(ValueError, match="at least two tasks"):
    compare.tracking(_record([1.0], [0.9], [1.0]))


def _seed_record(seed, returns, velocities):
  """One training seed's record, one task (target 1.0), 2 adaptation seeds, 2 points."""
  return {"workdir": "w", "curve": "c", "seed_index": seed, "checkpoint_epoch": 10 + seed,
          "training_seconds": 100.0 + seed,
          "tasks": {"vel1": {"velocity_target": 1.0, "env_steps": [0, 200],
                             "return": [[0.0, r] for r in returns],
                             "velocity": [[0.0, v] for v in velocities],
                             "final_return": list(returns), "final_velocity": list(velocities)}}}


def test_training_seeds_merge_and_split_back():
  records = [_seed_record(0, [-10.0, -12.0], [0.9, 0.7]),
             _seed_record(1, [-20.0, -22.0], [0.5, 0.3])]
  merged = compare.merge_training_seeds(records)
  task = merged["tasks"]["vel1"]
  assert task["final_return"] == [-10.0, -12.0, -20.0, -22.0]
  assert task["training_seed"] == [0, 0, 1, 1]
  assert merged["checkpoint_epoch"] == [10, 11] and merged["seed_index"] == [0, 1]
  back = compare.by_training_seed(merged)
  assert [b["tasks"]["vel1"]["final_velocity"] for b in back] == [[0.9, 0.7], [0.5, 0.3]]


def test_the_summary_gives_cis_over_training_seeds():
  """Per training seed, the mean over its adaptation seeds: returns -11, -21, -31; errors
  0.2, 0.6, 1.0; their mean -21 and 0.6, with a bootstrap CI around each; n = 3."""
  records = [_seed_record(k, [-10.0 - 10 * k, -12.0 - 10 * k], [0.9 - 0.4 * k, 0.7 - 0.4 * k])
             for k in range(3)]
  entry = compare.summary({"methods": {"pearl": compare.merge_training_seeds(records)}})[
      "pearl"]["tasks"]["vel1"]
  assert entry["n"] == 3
  np.testing.assert_allclose([entry["final_return_mean"], entry["velocity_error_mean"]],
                             [-21.0, 0.6])
  lo, hi = entry["final_return_ci"]
  assert -31.0 <= lo < -21.0 < hi <= -11.0
  lo, hi = entry["velocity_error_ci"]
  assert 0.2 <= lo < 0.6 < hi <= 1.0
  one = compare.summary({"methods": {"pearl": records[0]}})["pearl"]["tasks"]["vel1"]
  assert "n" not in one and "final_return_ci" not in one


def test_runs_on_other_tasks_are_refused():
  base = envs.default_config("halfcheetah_vel")
  other = envs.default_config("halfcheetah_vel")
  other.task_interval = (0.0, 3.0)
  assert compare.same_tasks({"ear": base, "pearl": base}) is base
  with pytest.raises(ValueError, match=r"^--runs pearl trained other tasks than ear: "
                                       r"env.task_interval \(0.0, 3.0\) vs \(\)$"):
    compare.same_tasks({"ear": base, "pearl": other})


def test_the_command_writes_records_summary_and_plot(tiny_ear_run, tmp_path):
  out = str(tmp_path / "out")
  proc = run_cli("--family=point_vel", f"--runs=ear={tiny_ear_run}", "--methods=ear_cem",
                 "--tasks=adapt,inside,1", "--budget=36000", "--seeds=2",
                 "--eval_episodes=2", f"--out_dir={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(os.path.join(out, "results.json")) as f:
    result = json.load(f)
  # The run trained -1.5 and 1.5 (task_ids 0, 3): inside = 0; adapt = -1, 0, 1; 1 again.
  assert result["tasks"] == ["vel-1", "vel0", "vel1"]
  task = result["methods"]["ear_cem"]["tasks"]["vel1"]
  assert task["env_steps"] == [18000, 36000]              # 2 generations of 90 x 200
  assert np.array(task["return"]).shape == (2, 2)
  assert (np.diff(np.array(task["return"]), axis=1) >= 0).all()   # best so far
  assert len(task["final_return"]) == 2 and task["velocity_target"] == 1.0
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  entry = summary["ear_cem"]["tasks"]["vel1"]
  assert entry["final_return_mean"] == pytest.approx(np.mean(task["final_return"]))
  assert entry["velocity_error_mean"] == pytest.approx(
      np.mean(np.abs(np.array(task["final_velocity"]) - 1.0)))
  assert os.path.exists(os.path.join(out, "curves.png"))
  assert "| EAR CEM |" in proc.stdout


@pytest.mark.parametrize("args, line", [
    (["--runs=foo=/x"], "error: bad --runs entry 'foo=/x': give kind=workdir, kinds ear, "
                          "maml, ohe, pearl"),
    (["--runs=ear=/no/such/run"], "error: no run at /no/such/run (--runs ear)"),
    (["--runs=ear={ear}", "--methods=pearl"], "error: no run for pearl (--runs pearl=<workdir>)"),
    (["--runs=ear={ear}", "--family=halfcheetah_vel"],
     "error: --runs ear={ear} trained point_vel, not halfcheetah_vel")])
def test_bad_input_is_refused_in_one_line(tiny_ear_run, args, line):
  args = [a.format(ear=tiny_ear_run) for a in args]
  family = [] if any(a.startswith("--family") for a in args) else ["--family=point_vel"]
  proc = run_cli(*family, *args)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [line.format(ear=tiny_ear_run)]
