"""The skill library and LTE arithmetic (``earjax.skills``), the interpolation tool that
takes them and its linearity measures, and the video writers (``experiments.video``).

Arithmetic is checked by hand on unit vectors; the library and the tools on the tiny EAR
run of Point-Vel (tasks ``vel-1.5`` and ``vel1.5``)."""
import json
import os
import shutil
import subprocess
import sys

import av
import chex
import numpy as np
import pytest

from earjax import skills
from earjax.adaptation import lte as lte_lib
from earjax.policy import load_run
from experiments import video
from experiments.cli import slug
from tiny import REPO

X, Y, Z = np.eye(3)
BINDINGS = {"run3": X, "jump10": Y, "vel-1.5": Z}


@pytest.fixture(scope="module")
def run_dir(tiny_ear_run, tmp_path_factory):
  """A copy of the tiny EAR run (its skill library is this file's to write)."""
  return shutil.copytree(tiny_ear_run, str(tmp_path_factory.mktemp("skills") / "run"))


@pytest.mark.parametrize("expression,want", [
    ("run3 + jump10", X + Y),
    ("0.5*run3 + 0.5*jump10", 0.5 * X + 0.5 * Y),
    ("-(run3 - 2*jump10)/4", -0.25 * X + 0.5 * Y),
    ("jump10*3 - vel-1.5", 3 * Y - Z),          # a task name with a '-' is one name
    ("1e-1 * (run3 + +jump10)", 0.1 * (X + Y)),
])
def test_arithmetic_by_hand(expression, want):
  np.testing.assert_allclose(skills.evaluate(expression, BINDINGS), want)


@pytest.mark.parametrize("expression,why", [
    ("run3 * jump10", "cannot multiply two LTEs"),
    ("2 / run3", "cannot divide by an LTE"),
    ("run3 / 0", "division by zero"),
    ("run3 + 1", "cannot add a number and an LTE"),
    ("2 * 3", "it gives the number 6.0, not an LTE"),
    ("run3 +", "expected a name, a number or '(' at the end"),
    ("(run3 + jump10", "a '(' is not closed"),
    ("run3 jump10", "unexpected 'jump10'"),
    ("run3 ^ 2", "cannot read '^ 2'"),
    ("", "it is empty"),
    ("run4", "unknown name 'run4' (known: jump10, run3, vel-1.5)"),
])
def test_bad_expressions_are_refused_in_one_line(expression, why):
  with pytest.raises(ValueError) as e:
    skills.evaluate(expression, BINDINGS)
  assert str(e.value) == f"bad LTE expression {expression!r}: {why}"


def test_the_library_round_trips_and_resolves_on_the_run(run_dir):
  run = load_run(run_dir)
  assert run.task_names == ("vel-1.5", "vel1.5")
  # Eq. 1 at beta = 0.5 is the arithmetic mean put back on the sphere.
  mix = skills.resolve(run, "0.5*vel-1.5 + 0.5*vel1.5")
  np.testing.assert_allclose(
      mix, lte_lib.interpolate(run.ltes[0], run.ltes[1], [0.5])[0], rtol=1e-5)
  chex.assert_shape(mix, (run.lte_dim,))
  skills.save(run_dir, "middle", mix, source="0.5*vel-1.5 + 0.5*vel1.5")
  skills.save_for_run(run, "back", -np.asarray(run.ltes[1]))
  np.testing.assert_allclose(skills.load(run_dir, "middle"), mix, rtol=1e-6)
  assert list(skills.library(run_dir)) == ["back", "middle"]
  with open(os.path.join(run_dir, skills.FILE)) as f:
    assert json.load(f)["middle"]["source"] == "0.5*vel-1.5 + 0.5*vel1.5"
  # Saved skills are names of the arithmetic, beside the tasks.
  np.testing.assert_allclose(skills.resolve(run, "middle + back"),
                             (mix - run.ltes[1]) / np.linalg.norm(mix - run.ltes[1]),
                             rtol=1e-5)
  np.testing.assert_allclose(skills.resolve(run, ",".join(["2"] + ["0"] * (run.lte_dim - 1))),
                             np.eye(run.lte_dim)[0])


@pytest.mark.parametrize("name,lte,why", [
    ("vel1.5", None, "'vel1.5' is a task of this run; give the skill another name"),
    ("2fast", None, "a skill name is a letter or _ then letters, digits, _ or ., got '2fast'"),
    ("ok", [1.0], "an LTE of this run has dimension 3, got 1"),
    ("ok", [np.nan, 0.0, 0.0], "skill 'ok' is not finite: [nan, 0.0, 0.0]"),
])
def test_bad_skills_are_refused_and_the_library_is_unchanged(run_dir, name, lte, why):
  before = skills.library(run_dir)
  with pytest.raises(ValueError) as e:
    skills.save(run_dir, name, [1.0, 0.0, 0.0] if lte is None else lte)
  assert str(e.value) == why
  assert skills.library(run_dir).keys() == before.keys()
  with pytest.raises(ValueError, match="no skill 'nope' in .*; saved: "):
    skills.load(run_dir, "nope")


def test_resolve_refuses_the_zero_vector_and_another_dimension(run_dir):
  run = load_run(run_dir)
  with pytest.raises(ValueError, match="'vel1.5 - vel1.5' is the zero vector"):
    skills.resolve(run, "vel1.5 - vel1.5")
  with pytest.raises(ValueError, match="dimension 3, '1,0' gives 2"):
    skills.resolve(run, "1,0")


def test_linearity_by_hand():
  line = lte_lib.linearity([0, 0.5, 1], [1.0, 2.0, 3.0])
  assert line == {"monotone": True, "r2_vs_line": 1.0}
  # v = 1, 3, 3 against the line 1, 2, 3: SS_res = 1, SS_tot = 8/3, R^2 = 1 - 3/8.
  bent = lte_lib.linearity([1, 0.5, 0], [3.0, 3.0, 1.0])
  assert bent["monotone"] and bent["r2_vs_line"] == pytest.approx(0.625)
  assert not lte_lib.linearity([0, 0.5, 1], [1.0, 0.5, 3.0])["monotone"]
  assert lte_lib.linearity([0.25, 0.5, 1], [1.0, 2.0, 3.0])["r2_vs_line"] is None


def test_arc_fraction_by_hand():
  """Ends 90 degrees apart: the mix of beta 0.25 is (0.25, 0.75), atan(1/3) = 18.43
  degrees from Z_j, 0.2048 of the arc; 160 degrees apart: atan2(0.25 sin 160,
  0.75 + 0.25 cos 160) = 9.425 degrees, 0.05891 of it."""
  e_i, e_j = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
  np.testing.assert_allclose(lte_lib.arc_fraction(e_i, e_j, [0, 0.25, 0.5, 1]),
                             [0.0, 0.20483, 0.5, 1.0], atol=1e-5)
  far = np.array([np.cos(np.radians(160)), np.sin(np.radians(160)), 0.0])
  assert np.degrees(lte_lib.angle(far, 3 * e_i)) == pytest.approx(160)
  np.testing.assert_allclose(lte_lib.arc_fraction(far, e_i, [0, 0.25, 0.75, 1]),
                             [0.0, 0.05891, 0.94109, 1.0], atol=1e-5)
  # The angles of Eq. 1's normalised mixes themselves, and the straight mix of the same
  # directions at other lengths (no hypersphere) points the same way as its own formula.
  betas = np.linspace(0, 1, 9)
  mixes = np.asarray(lte_lib.interpolate(far, e_i, betas))
  np.testing.assert_allclose(lte_lib.arc_fraction(far, e_i, betas),
                             np.degrees(np.arccos(np.clip(mixes @ e_i, -1, 1))) / 160,
                             atol=1e-4)
  straight = np.asarray(lte_lib.interpolate(2 * far, 0.5 * e_i, betas, normalize=False))
  angles = np.degrees(np.arctan2(straight[:, 1], straight[:, 0]))
  np.testing.assert_allclose(lte_lib.arc_fraction(2 * far, 0.5 * e_i, betas), angles / 160,
                             atol=1e-5)


def test_composition_by_hand():
  """Run end beta = 1 (3 m/s, peak 0.1 m), jump end beta = 0 (peak 0.5 m): margin 0.4;
  a beta qualifies with v >= 1.5 and peak >= 0.1 + 0.2."""
  betas, v = [0, 0.25, 0.5, 0.75, 1], [0.0, 1.0, 2.0, 2.5, 3.0]
  got = lte_lib.composition(betas, v, [0.5, 0.45, 0.35, 0.25, 0.1])
  assert got == {"run_beta": 1.0, "run_speed": 3.0, "jump_margin": pytest.approx(0.4),
                 "betas": [0.5], "exists": True}
  # The same sweep the other way round (run at beta = 0): the same betas mirrored.
  mirrored = lte_lib.composition([1 - b for b in betas], v, [0.5, 0.45, 0.35, 0.25, 0.1])
  assert mirrored["run_beta"] == 0.0 and mirrored["betas"] == [0.5]
  # Speed kept but not the height, or no margin at all.
  assert lte_lib.composition(betas, v, [0.5, 0.45, 0.25, 0.2, 0.1])["exists"] is False
  assert lte_lib.composition(betas, v, [0.1, 0.1, 0.1, 0.1, 0.2])["exists"] is None
  # A jump end 4 mm above the run gait does not jump (the default margin is 5 cm): any
  # mix would pass on noise.
  standing = [0.104, 0.1, 0.103, 0.103, 0.1]
  assert lte_lib.composition(betas, v, standing)["exists"] is None
  assert lte_lib.composition(betas, v, standing, min_jump_margin=0.0)["betas"] == [0.5, 0.75]
  assert lte_lib.composition([0.25, 1], [1.0, 3.0], [0.5, 0.1])["exists"] is None
  # A jump end fast enough on its own does not count: only mixes do.
  assert lte_lib.composition([0, 0.5, 1], [2.0, 2.5, 3.0], [0.5, 0.1, 0.1])["exists"] is False


def test_interpolate_between_a_skill_and_a_task(run_dir, tmp_path):
  run = load_run(run_dir)
  skills.save_for_run(run, "slowest", run.ltes[0])
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.interpolate", f"--workdir={run_dir}",
       "--task_a=slowest", "--task_b=vel1.5", "--reward_a=vel-1.5", "--betas=0,0.5,1",
       "--seeds=2", f"--out_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(tmp_path / "slowest_vel1.5.json") as f:
    result = json.load(f)
  assert (result["reward_a"], result["reward_b"]) == ("vel-1.5", "vel1.5")
  np.testing.assert_allclose(result["lte_a"], run.ltes[0], rtol=1e-6)
  fit = result["linearity"]["deterministic"]
  velocities = [r["deterministic"]["velocity"]["mean"] for r in result["betas"]]
  assert fit == lte_lib.linearity([0, 0.5, 1], velocities)
  refused = subprocess.run(
      [sys.executable, "-m", "experiments.interpolate", f"--workdir={run_dir}",
       "--task_a=slowest", "--task_b=vel1.5"], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert refused.returncode == 2
  assert refused.stderr.strip().splitlines() == [
      "error: task_a is not a task of this run: name the task whose reward to report "
      "with --reward_a"]


def test_side_by_side_panels_and_the_mp4(tmp_path):
  panels = [[np.full((5, 7, 3), 40 * i + t, np.uint8) for t in range(6)] for i in range(3)]
  images = video.side_by_side(panels, ["beta 0", "beta 0.5", "beta 1"])
  assert len(images) == 6 and images[0].shape == (5, 21, 3)
  video.write_mp4(images, str(tmp_path / "v.mp4"), fps=20.0)
  video.write_gif(images, str(tmp_path / "v.gif"), fps=20.0)
  with av.open(str(tmp_path / "v.mp4")) as container:
    stream = container.streams.video[0]
    frames = list(container.decode(stream))
    assert (stream.codec_context.name, stream.average_rate) == ("h264", 20)
  assert len(frames) == 6
  assert (frames[0].width, frames[0].height) == (20, 4)   # yuv420p: even sizes


def test_slug():
  assert slug("0.5*vel2 + 0.5*vel4") == "0.5_x_vel2_plus_0.5_x_vel4"
  assert slug("cem_vel1.5") == "cem_vel1.5" and slug("vel-1.5") == "vel_minus_1.5"


def test_interpolation_off_the_sphere_is_the_straight_mix():
  """A no-hypersphere run's LTEs are not unit vectors: its ends must stay its own."""
  a, b = np.array([2.0, 0.0, 0.0]), np.array([0.0, 0.5, 0.0])
  np.testing.assert_allclose(lte_lib.interpolate(a, b, [1.0, 0.5, 0.0], normalize=False),
                             [a, [1.0, 0.25, 0.0], b])
  np.testing.assert_allclose(lte_lib.interpolate(a, b, [1.0])[0], [1.0, 0.0, 0.0])


def test_an_index_out_of_range_names_the_tasks(run_dir):
  with pytest.raises(ValueError, match="unknown task '7'; this run's tasks are 0=vel-1.5"):
    skills.lte_or_task(load_run(run_dir), "7")
