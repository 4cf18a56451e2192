"""The training smoke (``mjx_smoke.py``) of ant_dir, through the whole job: its evaluation
is the one that reports headings (a planar family); one file per family, so that the
suite's two workers share the MJX compiles."""
from earjax.envs import readings
from mjx_smoke import check_the_job

DIRECTIONS = {"dir0deg": 0.0, "dir15deg": 15.0}   # the smoke's task_ids (0, 1)


def test_two_epochs_of_the_job_report_the_heading_and_its_angle_to_the_direction(tmp_path):
  result = check_the_job("ant_dir", tmp_path)
  for name, direction in DIRECTIONS.items():
    heading = result[f"eval/heading/{name}"]
    assert 0.0 <= heading < 360.0
    assert result[f"eval/direction_error/{name}"] == readings.angle_difference(heading,
                                                                               direction)
  assert result["eval/direction_error_mean"] == sum(
      result[f"eval/direction_error/{n}"] for n in DIRECTIONS) / 2
