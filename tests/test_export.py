"""``experiments.export``: the EAR actor as ONNX (checked against onnxruntime) and as a
``jax.export`` artifact (reloaded), with the LTE an input or baked in; bad input refused
in one line."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import onnxruntime
import pytest

from earjax import export
from earjax import skills
from earjax.policy import load_run
from tiny import REPO


def run_cli(*args):
  return subprocess.run([sys.executable, "-m", "experiments.export", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run(tiny_ear_run):
  """The tiny run with its weights re-drawn N(0, 0.5^2): its 2 epochs leave actions of
  about 1e-3 (the last layer starts at +-3e-3), against which 1e-5 would test little."""
  trained = load_run(tiny_ear_run)
  leaves, tree = jax.tree.flatten(trained.policy.params)
  keys = jax.random.split(jax.random.PRNGKey(0), len(leaves))
  params = jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, x.shape, x.dtype)
                                     for k, x in zip(keys, leaves)])
  return dataclasses.replace(trained, policy=trained.policy.replace(params=params),
                             ltes=trained.run.networks.lte_table(params))


def random_inputs(run, batch, seed=0):
  """Observations ~ N(0, 2^2) and LTEs uniform on the unit sphere."""
  rng = np.random.default_rng(seed)
  obs = (2.0 * rng.normal(size=(batch, run.env.observation_size))).astype(np.float32)
  lte = rng.normal(size=(batch, run.lte_dim))
  return obs, (lte / np.linalg.norm(lte, axis=-1, keepdims=True)).astype(np.float32)


def jax_actions(run, obs, lte):
  """The frozen policy's own deterministic action (``FrozenPolicy.act``)."""
  return np.asarray(jax.vmap(lambda z, o: run.policy.act(z, o, jax.random.PRNGKey(0),
                                                         False))(lte, obs))


def test_onnx_with_the_lte_as_input_matches_jax_within_1e5(run, tmp_path):
  path, _ = export.write(run, "onnx", str(tmp_path / "policy.onnx"))
  session = onnxruntime.InferenceSession(path)
  assert [i.name for i in session.get_inputs()] == ["observation", "lte"]
  for batch in (1, 37):   # one model, any batch size
    obs, lte = random_inputs(run, batch, seed=batch)
    action = session.run(None, {"observation": obs, "lte": lte})[0]
    assert action.shape == (batch, run.env.action_size)
    assert batch == 1 or action.std() > 0.1   # actions of the order of their range
    np.testing.assert_allclose(action, jax_actions(run, obs, lte), atol=1e-5, rtol=0)


def test_onnx_with_a_baked_interpolated_lte_matches_jax_and_the_lte_steers(run, tmp_path):
  a, b = run.task_names[0], run.task_names[-1]
  expression = f"0.5*{a} + 0.5*{b}"
  lte = skills.resolve(run, expression)
  path, meta = export.write(run, "onnx", str(tmp_path / "mix.onnx"), lte, expression)
  session = onnxruntime.InferenceSession(path)
  assert [i.name for i in session.get_inputs()] == ["observation"]
  obs, _ = random_inputs(run, 64)
  action = session.run(None, {"observation": obs})[0]
  np.testing.assert_allclose(action, jax_actions(run, obs, np.tile(lte, (64, 1))),
                             atol=1e-5, rtol=0)
  # the baked LTE matters: task a's own LTE gives other actions
  assert np.abs(action - jax_actions(run, obs, np.tile(run.ltes[0], (64, 1)))).max() > 0.05
  with open(meta) as f:
    sidecar = json.load(f)
  assert sidecar["baked_lte"]["expression"] == expression
  np.testing.assert_allclose(sidecar["baked_lte"]["vector"], lte, atol=1e-7)
  assert list(sidecar["training_ltes"]) == list(run.task_names)


def test_the_jax_export_artifact_reloads_and_takes_any_batch(run, tmp_path):
  path, meta = export.write(run, "jax", str(tmp_path / "policy.jax"))
  policy = export.load_jax(path)
  for batch in (1, 23):
    obs, lte = random_inputs(run, batch, seed=batch)
    np.testing.assert_allclose(np.asarray(policy(obs, lte)), jax_actions(run, obs, lte),
                               atol=1e-6, rtol=0)
  with open(meta) as f:
    sidecar = json.load(f)
  assert sidecar["jax_platforms"] == ["cpu", "cuda"]
  assert [i["shape"] for i in sidecar["inputs"]] == [
      ["B", run.env.observation_size], ["B", run.lte_dim]]


def test_the_command_writes_the_artifact_and_its_sidecar(tiny_ear_run, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(tiny_ear_run, workdir)
  trained = load_run(workdir)
  task = trained.task_names[1]
  proc = run_cli(f"--workdir={workdir}", "--format=jax", f"--lte={task}")
  assert proc.returncode == 0, proc.stderr
  path = os.path.join(workdir, "export", f"policy_{task}.jax")
  assert f"wrote {path}" in proc.stdout and os.path.exists(path + ".json")
  obs, _ = random_inputs(trained, 5)
  np.testing.assert_allclose(np.asarray(export.load_jax(path)(obs)),
                             jax_actions(trained, obs, np.tile(trained.ltes[1], (5, 1))),
                             atol=1e-6, rtol=0)


@pytest.mark.parametrize("args, line", [
    (["--lte=nosuchtask"], "error: bad LTE expression 'nosuchtask': unknown name 'nosuchtask' (known: "
                       "vel-1.5, vel1.5)"),
    (["--format=tflite"], "error: flag --format=tflite: value should be one of <onnx|jax>"),
    (["--workdir=/no/such/run"], "error: '/no/such/run' holds no training run (no config.json)")])
def test_bad_input_is_refused_in_one_line(tiny_ear_run, args, line):
  workdir = [] if any(a.startswith("--workdir") for a in args) else [
      f"--workdir={tiny_ear_run}"]
  proc = run_cli(*workdir, *args)
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines() == [line]
