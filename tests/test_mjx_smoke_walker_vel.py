"""The training smoke (``mjx_smoke.py``) of walker_vel: the trainer's init and two epochs
through MJX; one file per family, so that the suite's two workers share the MJX compiles."""
from mjx_smoke import check_two_epochs_of_training


def test_two_epochs_of_training():
  check_two_epochs_of_training("walker_vel")
