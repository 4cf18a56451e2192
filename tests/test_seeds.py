"""Seeds as a batch axis (``--config.num_seeds``): seed k of a batch is the run of seed
``seed + k`` alone, for every agent; the batch resumes bitwise; its metrics carry every
seed; its policies are read one seed at a time."""
import json
import os

import jax
import numpy as np
import pytest

import earjax
from earjax.config import validate
from earjax.policy import load_run, restore_critic
from earjax.run import Run
from earjax.training import train_and_evaluate, trainer_for
from tiny import assert_resumed_run_equals_straight_one, leaves, tiny_config

EPOCHS = 3   # one random-action epoch, then two with updates
# Float tolerance between a seed of the batch and its run alone: XLA's batched kernels
# may sum in another order.  Measured (experiments/results/seeds/batched_vs_alone_point_vel.json):
# equal after the first epoch's update but for MAML's 1.5e-8; at most 6e-8 after three
# epochs (MAML 4.5e-7: its standardised advantages and ridge-fit baseline magnify the
# reordering, as over four devices) and 5e-7 after twenty.
TOLERANCE = 1e-6
MAML_TOLERANCE = 1e-5


def run_epochs(config, keys):
  trainer = trainer_for(config)
  state = trainer.init(keys, trainer.task_params)
  for _ in range(EPOCHS):
    state, _ = trainer.epoch(state)
  return trainer, state


# One agent per kind of update: the SAC family's (OHE and MHMT share EAR's learner), TSAC's
# (extra replay fields), PEARL's (a context batch), MAML's (on-policy); all six were
# measured (experiments/results/seeds/batched_vs_alone_point_vel.json).
@pytest.mark.parametrize("agent", ["ear_sac", "tsac", "pearl", "maml"])
def test_seed_k_of_a_batch_is_that_seeds_run(agent, programs):
  """Two seeds batched (seed 3 and 4) against the runs of seed 3 and of seed 4 alone,
  every leaf of the state after three epochs: learner, replay, envs, RNG, counters; the
  batch's epoch is traced once (an empty program cache)."""
  del programs
  batched = tiny_config(agent=agent, seed=3, num_seeds=2)
  trainer, batch = run_epochs(batched, trainer_for(batched).seed_keys(3))
  assert trainer.epoch_traces == 1
  for k in range(2):
    alone = tiny_config(agent=agent, seed=3 + k)
    _, state = run_epochs(alone, jax.random.PRNGKey(3 + k))
    tolerance = MAML_TOLERANCE if agent == "maml" else TOLERANCE
    for x, y in zip(leaves(jax.tree.map(lambda a, k=k: a[k], batch)), leaves(state)):
      np.testing.assert_allclose(x, y, rtol=tolerance, atol=tolerance)


def test_a_batch_of_seeds_resumes_bitwise(tmp_path):
  assert_resumed_run_equals_straight_one(tmp_path, num_seeds=2)


def test_one_workdir_holds_the_batch(tmp_path):
  """metrics.jsonl: each figure's mean over the seeds and every seed's value; the
  policies of the batch are read one seed at a time, each the run of its seed."""
  workdir = str(tmp_path / "batch")
  row = train_and_evaluate(tiny_config(num_seeds=2, seed=5, num_epochs=2), workdir)
  per_seed = row["seeds"]
  assert len(per_seed["eval/return_mean"]) == 2
  assert row["eval/return_mean"] == pytest.approx(np.mean(per_seed["eval/return_mean"]))
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert [json.loads(line)["epoch"] for line in f] == [1, 2]
  alone = str(tmp_path / "seed6")
  single = train_and_evaluate(tiny_config(seed=6, num_epochs=2), alone)
  assert per_seed["eval/return_mean"][1] == pytest.approx(single["eval/return_mean"],
                                                          rel=1e-4)
  _, batch_ltes = earjax.load_policy(workdir, "latest", seed=1)
  _, alone_ltes = earjax.load_policy(alone, "latest")
  np.testing.assert_allclose(batch_ltes, alone_ltes, atol=TOLERANCE)
  with pytest.raises(ValueError, match=r"^seed_index must be in 0\.\.1 \(the run trained 2 "
                                       r"seed\(s\)\), got 2$"):
    Run.load(workdir).restore_policy("latest", 2)
  # Seed 1's critics with seed 1's best policy; a latest policy has none beside it.
  critic_apply, critic = restore_critic(load_run(workdir, "best", 1))
  assert critic_apply is not None and jax.tree.leaves(critic)[0].ndim >= 1
  with pytest.raises(ValueError, match="the critics are kept in the best checkpoint alone"):
    restore_critic(load_run(workdir, "latest", 1))


def test_host_families_refuse_a_batch_of_seeds_in_one_line():
  from experiments.configs import metaworld_mt10  # pylint: disable=import-outside-toplevel
  config = metaworld_mt10.get_config("cpu")
  config.num_seeds = 3
  assert validate(config) == [
      "num_seeds > 1 needs a JAX-stepped family; metaworld_mt10 steps on the host (run "
      "each seed as a job of its own, --config.seed)"]
  multi_host = tiny_config(num_seeds=2, num_processes=2, coordinator_address="h:1")
  assert validate(multi_host) == [
      "num_seeds > 1 runs on one host (its devices split the seeds); a multi-host job "
      "trains one seed"]
