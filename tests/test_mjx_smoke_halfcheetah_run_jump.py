"""The end-to-end training smoke (``mjx_smoke.py``) of halfcheetah_run_jump: one file per family, so
that the suite's two workers share the five MJX compiles evenly."""
from mjx_smoke import check_two_epochs_of_training


def test_two_epochs_of_training(tmp_path):
  check_two_epochs_of_training("halfcheetah_run_jump", tmp_path)
