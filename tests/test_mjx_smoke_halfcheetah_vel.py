"""The training smoke (``mjx_smoke.py``) of halfcheetah_vel, through the whole job
(evaluation and checkpoints too): one file per family, so that the suite's two workers
share the MJX compiles."""
from mjx_smoke import check_seed_batch, check_the_job


def test_two_epochs_of_the_job(tmp_path):
  check_the_job("halfcheetah_vel", tmp_path)


def test_seed_k_of_a_batch_is_that_seeds_run():
  check_seed_batch("halfcheetah_vel")
