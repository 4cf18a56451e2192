"""The end-to-end training smoke (``mjx_smoke.py``) of the HalfCheetah families."""
import pytest

from mjx_rollouts import FAMILIES
from mjx_smoke import check_two_epochs_of_training


@pytest.mark.parametrize("name", [f for f in FAMILIES if f.startswith("halfcheetah")])
def test_two_epochs_of_training(tmp_path, name):
  check_two_epochs_of_training(name, tmp_path)
