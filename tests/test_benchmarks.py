"""The benchmark suite runs in ``--quick`` mode and writes well-formed records.

Speeds are never asserted here: ``python -m benchmarks.run`` measures them.  The quick
run compiles one small env rollout, a tiny update and the tiny training epoch of
``tests/test_training.py`` (same shapes, so the persistent cache shares it).
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"name", "value", "unit", "settings", "jax", "backend", "device", "git_commit"}


def test_quick_suite_writes_records(tmp_path):
  out = tmp_path / "suite.json"
  subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", f"--out={out}"],
                 cwd=REPO, check=True, capture_output=True, text=True,
                 env=dict(os.environ, JAX_PLATFORMS="cpu"))
  records = json.loads(out.read_text())
  assert isinstance(records, list) and records
  for r in records:
    assert KEYS <= set(r), r
    assert isinstance(r["name"], str) and isinstance(r["unit"], str)
    assert isinstance(r["settings"], dict) and r["settings"]["quick"] is True
    assert r["value"] is None or isinstance(r["value"], (int, float))
  names = {r["name"] for r in records}
  assert len(names) == len(records)
  assert "train/brax_matched/env_steps_per_s" in names
  for section in ("peak/", "env/", "learner/", "train/", "memory/"):
    assert any(n.startswith(section) for n in names), section


def test_model_options_are_read_from_the_compiled_models():
  """brax's HalfCheetah asset and earjax's HalfCheetah-Vel: the same MJCF, timestep and
  substeps, solver budgets 4/50 and 4/8, read from the models, not typed."""
  from benchmarks import model_options  # pylint: disable=import-outside-toplevel
  from earjax import envs  # pylint: disable=import-outside-toplevel
  from earjax.envs import base  # pylint: disable=import-outside-toplevel
  brax_model = base._load_model("half_cheetah.xml")  # pylint: disable=protected-access
  brax_options = model_options.read(brax_model.opt, 5)   # brax's HalfCheetah: n_frames 5
  ours = envs.make("halfcheetah_vel")
  earjax_options = model_options.read(ours.mjx_model.opt, ours.substeps)
  assert (brax_options["iterations"], brax_options["ls_iterations"]) == (4, 50)
  assert (earjax_options["iterations"], earjax_options["ls_iterations"]) == (4, 8)
  assert model_options.mismatches(brax_options, earjax_options) == [
      "model ls_iterations: brax 50, earjax 8"]
  matched = model_options.read(envs.make("halfcheetah_vel", ls_iterations=50).mjx_model.opt,
                               ours.substeps)
  assert model_options.mismatches(brax_options, matched) == []


def test_the_matched_summary_takes_medians_and_reads_the_models(tmp_path):
  """``benchmarks.peers.matched`` over 3 hand-made repeats of one budget: medians,
  their ratio, and settings_match false as soon as one pair's models differ."""
  from benchmarks.peers import matched  # pylint: disable=import-outside-toplevel
  options = {"substeps": 5, "solver": 2, "iterations": 4, "ls_iterations": 8,
             "integrator": 0, "cone": 0, "timestep": 0.01, "tolerance": 1e-8,
             "ls_tolerance": 0.01}
  train = {"num_envs": 64, "batch": 256, "env_steps_per_epoch": 25,
           "grad_steps_per_epoch": 400, "actor_hidden": [256, 256],
           "critic_hidden": [256, 256], "model_options": options}
  brax_settings = {"train_kwargs": {"num_envs": 64, "batch_size": 256,
                                    "grad_updates_per_step": 16},
                   "policy_hidden": [256, 256], "q_hidden": [256, 256],
                   "model_options": options}
  def write(budget, rep, rates, options, brax_options):
    b, e, be, ee = rates
    d = tmp_path / f"r{rep}" / budget
    d.mkdir(parents=True)
    (d / "brax_sac.json").write_text(json.dumps(
        {"name": "brax_sac/halfcheetah_mjx/env_steps_per_s", "value": b,
         "settings": dict(brax_settings, model_options=brax_options)}))
    (d / "earjax_train.json").write_text(json.dumps(
        [{"name": f"train/{matched.BUDGETS[budget]}/env_steps_per_s", "value": e,
          "settings": dict(train, model_options=options)}]))
    (d / "brax_env.json").write_text(json.dumps(
        {"value": be, "settings": {"batch": 64, "model_options": options}}))
    (d / "earjax_env.json").write_text(json.dumps(
        [{"name": "env/halfcheetah_vel/solver4_8/b64/env_steps_per_s", "value": ee,
          "settings": {"batch": 64, "model_options": options}}]))

  for rep, rates in enumerate([(600, 690, 2000, 2100), (620, 700, 2100, 2000),
                               (610, 640, 1900, 2300)], start=1):
    write("earjax", rep, rates, options,
          dict(options, ls_iterations=50) if rep == 3 else options)
    write("brax", rep, (200, 300, 700, 600 + rep), dict(options, ls_iterations=50),
          dict(options, ls_iterations=50))
  summary = matched.summarise(str(tmp_path))["budgets"]
  assert summary["brax"]["settings_match"] and summary["brax"]["mismatches"] == []
  assert summary["brax"]["train"]["ratio_earjax_over_brax"] == 1.5
  assert summary["brax"]["env"]["earjax_median"] == 602
  entry = summary["earjax"]
  assert entry["repeats"] == 3
  assert entry["train"]["brax_median"] == 610 and entry["train"]["earjax_median"] == 690
  assert entry["train"]["ratio_earjax_over_brax"] == 690 / 610
  assert entry["env"]["ratio_earjax_over_brax"] == 2100 / 2000
  assert not entry["settings_match"]
  assert entry["mismatches"] == ["model ls_iterations: brax 50, earjax 8"]


def test_time_to_target_reads_the_first_evaluation_at_or_below_the_target(tmp_path):
  """By hand on rows, then a tiny Point-Vel run trained in 1-epoch chunks: it stops at
  the first evaluation that reaches the (here loose) target, its figures from that row."""
  from benchmarks import time_to_target as ttt  # pylint: disable=import-outside-toplevel
  from tiny import tiny_config  # pylint: disable=import-outside-toplevel
  rows = [{"epoch": 10, ttt.METRIC: 0.5}, {"epoch": 20, ttt.METRIC: 0.2},
          {"epoch": 30, ttt.METRIC: 0.1}]
  assert ttt.first_crossing(rows, 0.2)["epoch"] == 20
  assert ttt.first_crossing(rows, 0.05) is None
  assert ttt.spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0,
                                              "q1": 1.75, "q3": 4.75}
  workdir = str(tmp_path / "seed_0")
  out = ttt.run_seed(tiny_config(), 0, workdir, target=100.0, max_epochs=3, chunk=1)
  rows = ttt.read_rows(workdir)
  assert out["reached"] and out["epoch"] == 1 == out["epochs_trained"]
  assert (out["env_steps"], out["wall_time_s"]) == (rows[0]["env_steps"], rows[0]["wall_time"])
  never = ttt.run_seed(tiny_config(), 0, str(tmp_path / "never"), target=-1.0,
                       max_epochs=2, chunk=1)
  assert not never["reached"] and never["epochs_trained"] == 2 and never["epoch"] is None


_HLO = """HloModule update

%fused_dot (p0: f32[2,3], p1: f32[3,4]) -> f32[2,4] {
  %p0 = f32[2,3]{1,0} parameter(0)
  %p1 = f32[3,4]{1,0} parameter(1)
  ROOT %dot.1 = f32[2,4]{1,0} dot(f32[2,3]{1,0} %p0, f32[3,4]{1,0} %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_adam (p0: f32[4]) -> f32[4] {
  %p0 = f32[4]{0} parameter(0)
  ROOT %multiply.2 = f32[4]{0} multiply(f32[4]{0} %p0, f32[4]{0} %p0)
}

ENTRY %main (a: f32[2,3], b: f32[3,4], c: f32[4]) -> (f32[2,4], f32[4]) {
  %a = f32[2,3]{1,0} parameter(0)
  %b = f32[3,4]{1,0} parameter(1)
  %c = f32[4]{0} parameter(2)
  %fusion.7 = f32[2,4]{1,0} fusion(%a, %b), kind=kOutput, calls=%fused_dot
  %fusion.8 = f32[4]{0} fusion(%c), kind=kLoop, calls=%fused_adam
  %ynn_fusion.3 = f32[2,4]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_adam
  %while.9 = (s32[], f32[4]{0}) while((s32[], f32[4]{0}) %t), condition=%cond, body=%body
  ROOT %tuple.4 = (f32[2,4]{1,0}, f32[4]{0}) tuple(%fusion.7, %fusion.8)
}
"""


def test_the_update_profile_sorts_instructions_by_what_they_compute():
  from benchmarks import update_profile
  kinds = update_profile.instruction_kinds(_HLO)
  assert kinds["fusion.7"] == "matmul"          # its fused computation holds a dot
  assert kinds["fusion.8"] == "elementwise"     # Adam-like arithmetic only
  assert kinds["ynn_fusion.3"] == "matmul"      # XLA:CPU's YNNPACK fusion around dots
  assert kinds["while.9"] == "loop"
  assert kinds["tuple.4"] == "elementwise"


def test_the_flat_optimizer_layout_takes_the_same_adam_step():
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from benchmarks import update_profile
  real_adam = optax.adam
  params = {"a": jnp.arange(6.0).reshape(2, 3), "b": {"c": jnp.ones(4)}}
  grads = jax.tree.map(lambda x: jnp.sin(x) + 0.5, params)
  steps = {}
  for layout in update_profile.LAYOUTS:
    with update_profile.optimizer_layout(layout):
      opt = optax.adam(1e-2)
    state = opt.init(params)
    steps[layout] = opt.update(grads, state, params)[0]
    assert (jax.tree.structure(state) == jax.tree.structure(optax.adam(1e-2).init(params))) \
        == (layout == "tree")                   # flat: Adam's moments are one vector
  for x, y in zip(jax.tree.leaves(steps["tree"]), jax.tree.leaves(steps["flat"])):
    np.testing.assert_allclose(x, y, rtol=1e-6)
  assert optax.adam is real_adam                # the patch ends with the block
  with pytest.raises(ValueError, match="layout must be one of"):
    with update_profile.optimizer_layout("fused"):
      pass
