"""A run has a home (``earjax.run``): the import graph, one config read, saved runs from
before the ``env`` section, the agent interface's kinds, and the evaluation readings."""
import ast
import glob
import json
import os
import shutil

import numpy as np
import pytest

import earjax
from earjax import agents
from earjax import config as config_lib
from earjax import envs
from earjax import evaluation
from earjax import run as run_lib
from earjax.run import Run
from earjax.training import epochs, train_and_evaluate
from earjax.training.trainer import Trainer
from tiny import REPO, tiny_config

OLD_RUN = os.path.join(os.path.dirname(__file__), "data", "run_before_env_section")
OLD_HCV_CONFIG = os.path.join(os.path.dirname(__file__), "data",
                              "config_before_env_section_hcv.json")


def imports(path: str) -> set[str]:
  """Every module ``path`` imports, at any depth (function-level imports too)."""
  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      out.add(node.module)
      out.update(f"{node.module}.{a.name}" for a in node.names)
  return out


def test_readers_of_a_run_never_import_training():
  """``policy``, ``adaptation``, ``skills``, ``evaluation`` and ``run`` itself reach a run
  through ``earjax.run``; none of them imports ``earjax.training``."""
  readers = [f"earjax/{name}.py" for name in ("policy", "skills", "run", "evaluation")]
  readers += sorted(glob.glob(os.path.join(REPO, "earjax/adaptation/*.py")))
  for path in readers:
    found = imports(os.path.join(REPO, path))
    assert not any(m == "earjax.training" or m.startswith("earjax.training.")
                   for m in found), path
  # load_policy reaches the checkpoint through policy -> run -> checkpoint.
  assert "earjax.run" in imports(os.path.join(REPO, "earjax/policy.py"))
  assert "earjax.checkpoint" in imports(os.path.join(REPO, "earjax/run.py"))


def test_load_policy_reads_the_config_once(monkeypatch):
  reads = []
  original = run_lib.load_config
  monkeypatch.setattr(run_lib, "load_config", lambda w: reads.append(w) or original(w))
  policy, ltes = earjax.load_policy(OLD_RUN)
  assert reads == [OLD_RUN]
  assert ltes.shape == (2, 3)
  np.testing.assert_allclose(np.linalg.norm(ltes, axis=-1), 1.0, rtol=1e-5)
  assert policy(np.zeros((2, 2)), ltes).shape == (2, 1)


def test_a_run_saved_before_the_env_section_loads_and_resumes(tmp_path):
  """A tiny EAR run trained by earjax before this change (flat physics keys, EAR keys in
  ``network``): its config migrates, its policy loads, and training resumes it; the new
  ``config.json`` has the ``env`` section and the agent's sections alone."""
  config = run_lib.load_config(OLD_RUN)
  assert config_lib.validate(config) == []
  # Its env section: the family's defaults (keys added since take theirs: its own targets).
  assert dict(config.env) == dict(envs.default_config("point_vel"))
  assert config.env.episode_length == 200 and config.env.task_interval == ()
  assert tuple(config.ear_sac.state_encoder_hidden) == (8,)   # was network.state_encoder_hidden
  workdir = str(tmp_path / "old")
  shutil.copytree(OLD_RUN, workdir)
  row = train_and_evaluate(tiny_config(num_epochs=3, checkpoints_to_keep=1), workdir)
  assert row["epoch"] == 3
  saved = json.load(open(os.path.join(workdir, "config.json")))
  assert saved["env"] == {**envs.default_config("point_vel").to_dict(), "task_interval": []}
  assert "solver_iterations" not in saved and "lse_dim" not in saved["network"]
  assert {"maml", "pearl", "tsac"}.isdisjoint(saved) and saved["ear_sac"]["lte_dim"] == 3


def test_an_old_mujoco_config_moves_its_physics_into_the_env_section():
  """The HalfCheetah-Vel ``cpu`` preset as saved before: ``solver_iterations`` 6 and
  ``backend: default`` (the family's own) land in ``env``."""
  config = config_lib.from_saved(json.load(open(OLD_HCV_CONFIG)))
  assert config_lib.validate(config) == []
  assert (config.env.solver_iterations, config.env.ls_iterations, config.env.backend,
          config.env.impl, config.env.unroll_substeps) == (6, 8, "mjx", "jax", True)
  assert tuple(config.ear_sac.task_encoder_hidden) == (64,)
  assert not {"solver_iterations", "backend", "impl"} & set(config)


def test_no_physics_default_outside_the_families():
  """The solver budget, unroll and implementation are declared by the MJX families'
  ``default_config`` alone: no training config or preset carries them at the top."""
  assert not {"solver_iterations", "ls_iterations", "unroll_substeps", "impl",
              "backend"} & set(config_lib.default_config("hopper_vel"))
  for path in glob.glob(os.path.join(REPO, "earjax/**/*.py"), recursive=True):
    if path.endswith(os.path.join("envs", "base.py")):
      continue
    source = open(path).read()
    assert "solver_iterations = " not in source and "ls_iterations = 8" not in source, path


def test_no_agent_field_is_used_by_exactly_one_method():
  """Every field of ``Agent`` is one that several methods set (the required ones: all);
  a field with a default counts for the methods that change it."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  built = {name: Run.from_config(tiny_config(agent=name)).agent for name in agents.names()}
  for field in dataclasses.fields(agents.Agent):
    if field.default is dataclasses.MISSING:
      continue
    users = [n for n, a in built.items() if getattr(a, field.name) != field.default]
    assert len(users) != 1, (field.name, users)


def test_the_epoch_is_the_agents_kind():
  for name in agents.names():
    trainer = Trainer(Run.from_config(tiny_config(agent=name)))
    want = epochs.on_policy if name == "maml" else epochs.off_policy
    assert trainer._epoch_of_kind is want, name   # pylint: disable=protected-access


def test_a_run_of_another_method_is_refused_in_one_line():
  with pytest.raises(ValueError, match=r"^PEARL's adaptation needs a run of agent pearl; "
                                       r".* trained 'ear_sac'$"):
    Run.load(OLD_RUN, agent="pearl", what="PEARL's adaptation")


def test_evaluation_metrics_and_table_by_hand():
  """Point-Vel declares one reading, the velocity, with the task's target: its error is
  |v - p|; the means are over the tasks."""
  env = envs.make("point_vel")
  assert [r.name for r in env.readings()] == ["velocity"]
  result = {"return": np.array([-10.0, -20.0]), "length": np.array([200.0, 150.0]),
            "success": np.array([1.0, 0.5]), "velocity": np.array([-1.25, 0.75])}
  out = evaluation.metrics(env, np.array([[-1.5], [0.5]]), ("vel-1.5", "vel0.5"), result)
  assert out["eval/velocity_error/vel-1.5"] == pytest.approx(0.25)
  assert out["eval/velocity_error/vel0.5"] == pytest.approx(0.25)
  assert out["eval/velocity_error_mean"] == pytest.approx(0.25)
  assert (out["eval/return_mean"], out["eval/success_rate"]) == (-15.0, 0.75)
  text = evaluation.table({"epoch": 3, "env_steps": 60, "wall_time": 1.0, **out})
  lines = text.strip().splitlines()
  assert lines[1].split() == ["task", "return", "length", "velocity", "velocity_error",
                              "success"]
  assert lines[2].split() == ["vel-1.5", "-10.0", "200", "-1.25", "0.25", "1.00"]
  assert "mean velocity_error: 0.250" in lines and "success rate: 0.75" in lines


def test_ant_dir_reads_the_heading_and_metaworld_reads_nothing():
  ant = envs.make("ant_dir", unroll_substeps=False)
  assert [r.name for r in ant.readings()] == ["velocity", "heading"]
  heading = ant.readings()[1]
  assert heading.target(np.array([90.0])) == 90.0 and heading.error(350.0, 10.0) == 20.0
  assert ant.readings()[0].target(np.array([90.0])) is None
  assert evaluation.targets(ant, np.array([90.0])) == {"heading": 90.0}


def test_the_job_evaluates_a_tiny_run_through_the_family_readings(tmp_path):
  row = train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  for name in ("vel-1.5", "vel1.5"):
    target = float(name[3:])
    assert row[f"eval/velocity_error/{name}"] == pytest.approx(
        abs(row[f"eval/velocity/{name}"] - target))
