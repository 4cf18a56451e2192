"""The results documents' figures equal the committed JSON they cite
(benchmarks/check_figures.py), and the checker catches what it must."""
from benchmarks import check_figures

SOURCE = "experiments/results/halfcheetah_vel_cpu_metrics.jsonl"


def test_every_annotated_figure_equals_its_committed_source():
  assert check_figures.check() == []


def test_the_checker_finds_a_wrong_figure_and_an_unannotated_one():
  good = f"| 1000 | 0.12<!-- fig {SOURCE} epoch=1000 eval/velocity_error_mean --> |"
  assert check_figures.check_text(good, "doc") == []
  wrong = good.replace("0.12<", "0.48<")
  assert check_figures.check_text(wrong, "doc") == [
      f"doc:1: shows 0.48, {SOURCE} epoch=1000 eval/velocity_error_mean holds 0.115115"]
  table = "\n".join(["<!-- checked-table -->", "| epoch | error |", "|---|---|",
                     good, "| 190 | 0.48 |"])
  assert check_figures.check_text(table, "doc") == [
      "doc:5: unannotated figure in a checked table: 0.48"]
  missing = good.replace("epoch=1000", "epoch=1001")
  assert "0 lines with epoch=1001" in check_figures.check_text(missing, "doc")[0]


def test_a_seed_of_a_batched_run_is_read_by_its_index():
  # Seed 3 of the 5-seed HalfCheetah-Vel run ran its 4 m/s task at 2.3003 m/s at epoch 1000
  # (seed 1 at 3.7913).
  batched = "experiments/results/seeds/hcv_cpu_5seeds/metrics.jsonl"
  good = f"2.30<!-- fig {batched} epoch=1000 seed=3 eval/velocity/vel4 -->"
  assert check_figures.check_text(good, "doc") == []
  assert "holds 3.79" in check_figures.check_text(good.replace("seed=3", "seed=1"), "doc")[0]
