"""The training smoke (``mjx_smoke.py``) of halfcheetah_vel, through the whole job
(evaluation and checkpoints too): one file per family, so that the suite's two workers
share the MJX compiles."""
from mjx_smoke import check_the_job


def test_two_epochs_of_the_job(tmp_path):
  check_the_job("halfcheetah_vel", tmp_path)
