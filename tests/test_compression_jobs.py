"""The compression's four jobs on the ``tiny`` preset (Point-Vel, with a tiny EAR run for
the CEM side) and its CLI's one-line refusals; a file of its own so that the suite's two
workers share the compression tests."""
import json
import os
import subprocess
import sys

import jax
import numpy as np

from earjax import envs
from earjax.compression import autoencoder as ae_lib
from earjax.compression import jobs, store
from earjax.compression.dataset import PolicyDataset
from earjax.compression.policies import PolicySpace
from experiments.configs import compression as compression_config
from tiny_policies import ae_config, small_dataset
from tiny import REPO


def test_the_jobs_run_on_the_tiny_preset(tmp_path, tiny_ear_run):
  config = compression_config.get_config("tiny")
  workdir = str(tmp_path / "run")
  summary = jobs.build_dataset(config, workdir)
  assert summary["policies"] == config.dataset.size
  rows = jobs.train_autoencoders(config, workdir)
  assert [r["latent_dim"] for r in rows] == list(config.latent_dims)
  assert store.latent_dims(workdir) == list(config.latent_dims)
  config.goal_return = -1e6        # below every Point-Vel return: every seed reaches it
  recovered = jobs.recovery(config, workdir)
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  num_tasks, seeds = len(dataset.task_names), config.search_seeds
  # Θ, then per latent size PGPE in Z and random codes, for every (task, seed).
  assert len(recovered) == (1 + 2 * len(config.latent_dims)) * num_tasks * seeds
  assert {r["space"] for r in recovered} == {"theta", "latent", "random"}
  assert all(np.isfinite(r["best_return"]) and r["reached_goal"] for r in recovered)
  # Point-Vel's rewards are never positive: best over best is undefined, said so.
  assert all(r["dataset_best_return"] < 0 and r["recovery"] is None for r in recovered)
  # The dataset's best policy per task, decoded: one row per (latent size, task).
  decoded = jobs.read_decoded(workdir)
  assert [(r["latent_dim"], r["task"]) for r in decoded] == [
      (1, name) for name in dataset.task_names]
  best = {r["task"]: r["dataset_best_return"] for r in recovered}
  assert all(np.isfinite(r["decoded_return"]) and r["decoded_recovery"] is None
             and r["dataset_best_return"] == best[r["task"]] for r in decoded)
  # The 1-D grid: grid_codes codes from the smallest to the largest dataset code.
  with open(os.path.join(workdir, "grid_z1.json")) as f:
    grid = json.load(f)
  codes = store.load(workdir, 1).codes[:, 0]
  np.testing.assert_allclose(grid["codes"], np.linspace(codes.min(), codes.max(),
                                                        config.grid_codes), rtol=1e-6)
  for entry in grid["tasks"].values():
    assert len(entry["returns"]) == config.grid_codes
    assert entry["best_return"] == max(entry["returns"])
    assert entry["codes_reaching_goal"] == config.grid_codes
  # The decoder check alone (--stages=decoded) gives the same rows and grid.
  assert jobs.decoder_check(config, workdir) == decoded
  with open(os.path.join(workdir, "grid_z1.json")) as f:
    assert json.load(f) == grid
  table = jobs.recovery_table(recovered, decoded)
  assert "n/a (return" in table and "decoded best, z1" in table
  with open(os.path.join(workdir, "recovery_summary.json")) as f:
    summary = json.load(f)
  assert summary == jobs.recovery_summary(recovered, decoded, {1: grid})
  assert all(space["seeds_reaching_goal"] == seeds
             for entry in summary.values() for space in entry["spaces"].values())
  config.adapt.ear_workdir = tiny_ear_run        # a tiny EAR run on the same family
  result = jobs.adaptation(config, workdir)
  env = envs.make(config.adapt.env_name)
  assert list(result["methods"]) == ["latent_pgpe_z1", "theta_pgpe", "ear_cem"]
  assert result["methods"]["ear_cem"]["env_steps"][-1] == (
      config.adapt.cem_generations * 90 * env.episode_length)
  for res in result["methods"].values():
    assert list(res["tasks"]) == list(env.adapt_task_names)
    assert len(res["tasks"][env.adapt_task_names[0]]["final_return"]) == config.search_seeds
  with open(os.path.join(workdir, "adapt_summary.json")) as f:
    assert json.load(f) == jobs.adaptation_summary(result)


def test_the_cli_refuses_a_missing_dataset_or_ear_run_in_one_line(tmp_path):
  def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments.compress",
         "--config=experiments/configs/compression.py:tiny", *args], cwd=REPO,
        capture_output=True, text=True, timeout=300)
  proc = run(f"--workdir={tmp_path}/none", "--stages=recovery")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      f"error: recovery: no policy dataset at {tmp_path}/none/dataset.npz (build one with "
      "experiments.compress --stages=dataset)"]
  # A missing EAR run fails before any search (nothing computed is lost).
  dataset = small_dataset(n=4, space=PolicySpace(2, 1, hidden=(4,)))
  dataset.env_name = "point_vel"
  compressor, state = ae_lib.train(dataset, ae_config(), jax.random.PRNGKey(0))
  dataset.save(store.dataset_path(str(tmp_path)))
  store.save_autoencoder(str(tmp_path), compressor, state.params, dataset)
  proc = run(f"--workdir={tmp_path}", "--stages=adapt",
             f"--config.adapt.ear_workdir={tmp_path}/no_ear_run")
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: adapt: ") and "no_ear_run" in lines[0]
  assert not os.path.exists(tmp_path / "adapt.json")
