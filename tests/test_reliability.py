"""Reliability: preemption, kill -9, non-finite values and bad input lose nothing.

Every run is the tiny Point-Vel config of ``tiny.py``: in-process runs share one
Trainer (one trace), and the CLI children find its compiled functions in the persistent
compilation cache.  The long run (``LONG``) is trained once, uninterrupted, in-process;
the crash and signal tests must reproduce it bitwise.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from earjax import checkpoint, load_policy
from earjax.config import validate
from earjax.training import (ConfigError, NonFiniteError, describe_nonfinite, load_config,
                             train_and_evaluate)
from earjax.training.job import WATCHDOG_EXIT_CODE
from tiny import REPO, cli, cli_command, leaves, restored_state, tiny_config, tiny_flags


LONG = {"num_epochs": 60, "eval_every": 3}
# Runs that are not killed at random moments save every third epoch (a save costs more
# than a tiny epoch); the state and metrics do not depend on it.
SPARSE_SAVES = {"checkpoint_every": 3}


@pytest.fixture(scope="session")  # session: xdist may interleave modules on a worker
def reference(tmp_path_factory):
  """The uninterrupted LONG run: (workdir, final state leaves, metrics rows)."""
  workdir = str(tmp_path_factory.mktemp("reference"))
  config = tiny_config(**LONG, **SPARSE_SAVES)
  train_and_evaluate(config, workdir)
  _, state = restored_state(workdir, config)
  return workdir, leaves(state), metrics_rows(workdir)


def metrics_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for row in rows:
    row.pop("wall_time")
  return rows


def state_epochs(workdir):
  root = os.path.join(workdir, "checkpoints", "state")
  return sorted(int(n) for n in os.listdir(root) if n.isdigit()) if os.path.isdir(root) else []


def launch(workdir, **changes):
  return subprocess.Popen(cli_command(f"--workdir={workdir}",
                                      *tiny_flags(**{**LONG, **changes})),
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)


def wait_for_new_checkpoint(proc, workdir, timeout=300, epoch=None):
  """Blocks until the child has saved a checkpoint of this launch (or of ``epoch``), or
  has exited."""
  before = max(state_epochs(workdir), default=0)
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    latest = max(state_epochs(workdir), default=0)
    if (latest >= epoch) if epoch else (latest > before):
      return
    time.sleep(0.02)
  assert proc.poll() is not None, "no checkpoint within the timeout"


def assert_equals_reference(workdir, reference):
  _, want_leaves, want_rows = reference
  _, state = restored_state(workdir, tiny_config(**LONG))
  assert int(state.epoch) == LONG["num_epochs"]
  for got, want in zip(leaves(state), want_leaves):
    np.testing.assert_array_equal(got, want)
  assert metrics_rows(workdir) == want_rows   # every eval epoch once, in order, identical


def test_kill_9_at_five_random_moments_loses_nothing(tmp_path, reference):
  workdir = str(tmp_path / "crash")
  rng = random.Random(0)
  kills = []
  for _ in range(5):
    proc = launch(workdir)
    wait_for_new_checkpoint(proc, workdir)
    time.sleep(rng.uniform(0.0, 1.5))   # inside an epoch, an evaluation or a save
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    kills.append((proc.returncode, max(state_epochs(workdir), default=0)))
  assert sum(rc == -signal.SIGKILL for rc, _ in kills) >= 4, kills
  progress = [epoch for _, epoch in kills]
  assert progress == sorted(progress) and progress[-1] < LONG["num_epochs"], kills
  proc = launch(workdir)
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-2000:]
  assert_equals_reference(workdir, reference)
  # Orbax commits by renaming: no temporary checkpoint directory is ever listed.
  assert all(n.isdigit() for n in os.listdir(os.path.join(workdir, "checkpoints", "state")))


def test_sigterm_and_sigint_checkpoint_exit_0_and_resume_exactly(tmp_path, reference):
  workdir = str(tmp_path / "preempted")
  for sig in (signal.SIGTERM, signal.SIGINT):
    proc = launch(workdir, **SPARSE_SAVES)
    wait_for_new_checkpoint(proc, workdir)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    stop_line = [line for line in stderr.splitlines() if line.startswith("stopped by")]
    epoch = max(state_epochs(workdir))
    assert stop_line == [f"stopped by {sig.name} after epoch {epoch}; checkpoint "
                         f"{os.path.abspath(workdir)}/checkpoints/state/{epoch}; run the "
                         f"same command to resume"], stderr[-2000:]
    assert all(r["epoch"] <= epoch for r in metrics_rows(workdir))
  proc = launch(workdir, **SPARSE_SAVES)
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr[-2000:]
  assert_equals_reference(workdir, reference)


def test_same_seed_same_metrics_and_a_resumed_run_equals_a_straight_one(tmp_path, reference):
  workdir = str(tmp_path / "again")
  train_and_evaluate(tiny_config(**{**LONG, **SPARSE_SAVES, "num_epochs": 24}), workdir)
  train_and_evaluate(tiny_config(**LONG, **SPARSE_SAVES), workdir)
  assert_equals_reference(workdir, reference)


def test_poisoned_parameter_stops_naming_epoch_and_network(tmp_path):
  workdir = str(tmp_path / "nan")
  with pytest.raises(NonFiniteError) as error:
    train_and_evaluate(tiny_config(num_epochs=4, poison_epoch=3), workdir)
  message = str(error.value)
  assert message.startswith("epoch 3: non-finite actor parameters of action_decoder at the "
                            "epoch's start; then also env next_obs at env step 0"), message
  assert message.endswith(f"last good checkpoint: {os.path.abspath(workdir)}/checkpoints/"
                          f"state/2 (intact)"), message
  assert "\n" not in message
  assert state_epochs(workdir) == [1, 2]
  _, state = restored_state(workdir, tiny_config())
  assert int(state.epoch) == 2 and all(np.isfinite(x).all() for x in leaves(state.learner))
  assert [r["epoch"] for r in metrics_rows(workdir)] == [1, 2]


def test_cli_nonfinite_stop_is_one_line_and_exit_1(tmp_path):
  result = cli(f"--workdir={tmp_path / 'nan'}", *tiny_flags(poison_epoch=2))
  assert result.returncode == 1, result.stderr[-2000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and errors[0].startswith(
      "error: epoch 2: non-finite actor parameters of action_decoder"), result.stderr[-2000:]


def test_rollback_option_restarts_from_the_last_checkpoint_with_a_new_key(tmp_path, capsys):
  workdir = str(tmp_path / "rollback")
  train_and_evaluate(tiny_config(num_epochs=4, poison_epoch=3, on_nonfinite="rollback"),
                     workdir)
  assert "epoch 3: non-finite actor parameters of action_decoder" in capsys.readouterr().err
  assert [r["epoch"] for r in metrics_rows(workdir)] == [1, 2, 3, 4]
  _, state = restored_state(workdir, tiny_config())
  assert int(state.epoch) == 4 and all(np.isfinite(x).all() for x in leaves(state.learner))


def test_nonfinite_report_orders_by_where_it_happened():
  health = {"end/actor/action_decoder": 0, "env/next_obs": -1, "env/reward": -1,
            "start/actor/action_decoder": -1, "update/0/critic_loss": 2,
            "update/1/critic_grad/critic_0": 2, "update/2/critic_grad/critic_1": -1,
            "update/3/actor_loss": 3, "update/4/actor_grad/state_encoder": 2,
            "update/5/alpha_loss": -1, "update/6/alpha_grad": -1}
  assert describe_nonfinite(health, 7) == (
      "epoch 7: non-finite critic_loss at gradient step 2; then also gradient of critic_0 "
      "at gradient step 2, gradient of state_encoder at gradient step 2, actor_loss at "
      "gradient step 3, actor parameters of action_decoder at the epoch's end")
  assert describe_nonfinite({k: -1 for k in health}, 7) is None


# ---- bad input: flags, config values, workdirs, checkpoints --------------------------------

CLI_CASES = [  # (flags, config file, the one line on stderr)
    (["--config.learning_rate=-1"], None,
     "error: learning_rate must be a positive number, got -1.0"),
    (["--config.lerning_rate=1"], None,
     "error: unknown config key 'lerning_rate'; did you mean 'learning_rate'?"),
    (["--config.batch_size_per_task=abc"], None,
     "error: flag --config.batch_size_per_task=abc: invalid literal for int() with base 10: "
     "'abc'"),
    (["--config.on_nonfinite=maybe"], None,
     "error: on_nonfinite must be one of stop, rollback, got 'maybe'"),
    (["--bogus=1"], None, "error: Unknown command line flag 'bogus'"),
    (["extra"], None, "error: unexpected arguments extra"),
    ([], "experiments/configs/point_vel.py:gpu",
     "error: flag --config=experiments/configs/point_vel.py:gpu: Error whilst parsing "
     "config file: ValueError: unknown preset 'gpu'; valid presets: paper, cpu, cpu_release"),
    (["--config.agent=dqn"], None,
     "error: agent must be one of ear_sac, maml, mhmt_sac, ohe_sac, pearl, tsac, got 'dqn'"),
    ([], "experiments/configs/nope.py", "error: cannot load the config file: [Errno 2] No "
     "such file or directory: 'experiments/configs/nope.py'"),
]


@pytest.mark.parametrize("args, config, message", CLI_CASES)
def test_bad_flags_give_one_line_exit_2_and_touch_nothing(tmp_path, args, config, message):
  result = cli(f"--workdir={tmp_path / 'bad'}", *args,
               **({"config": config} if config else {}))
  assert (result.returncode, result.stderr.strip().splitlines()) == (2, [message])
  assert not os.path.exists(tmp_path / "bad")


CONFIG_CASES = [  # (changes to the tiny config, the one problem line)
    ({"gamma": 1.5}, "gamma must be in (0, 1], got 1.5"),
    ({"batch_size_per_task": 0}, "batch_size_per_task must be a positive integer, got 0"),
    ({"seed": -3}, "seed must be a non-negative integer, got -3"),
    ({"agent": "mlp"}, "agent must be one of ear_sac, maml, mhmt_sac, ohe_sac, pearl, tsac, "
                       "got 'mlp'"),
    ({"env_name": "cheetah"}, "env_name must be one of halfcheetah_vel, ant_dir, hopper_vel, "
                              "walker_vel, halfcheetah_run_jump, point_vel, metaworld_mt10, "
                              "halfcheetah_skills, hopper_skills, mountaincar_continuous, "
                              "got 'cheetah'"),
    ({"sac.update_order": "actor_first"},
     "sac.update_order must be one of alpha_first, critic_first, got 'actor_first'"),
    ({"min_replay_size": -1}, "min_replay_size must be a non-negative integer, got -1"),
    ({"watchdog_factor": 0}, "watchdog_factor must be a positive number, got 0.0"),
    ({"network.lte_noise_std": -0.1}, "network.lte_noise_std must be a number >= 0, got -0.1"),
    ({"network.actor_hidden": ()}, "network.actor_hidden must be a non-empty list of "
                                   "positive integers, got ()"),
    ({"tau": 0.0}, "tau must be in (0, 1], got 0.0"),
    ({"task_ids": (0, 0)}, "task_ids must not repeat a task, got (0, 0)"),
    ({"replay_capacity": 5}, "replay_capacity (5) must hold one epoch of transitions per "
                             "task (envs_per_task * env_steps_per_epoch = 10)"),
    ({"env_name": "hopper_vel", "backend": "spring"},
     "backend must be one of default, mjx for hopper_vel, got 'spring'"),
    ({"max_rollbacks": -1}, "max_rollbacks must be a non-negative integer, got -1"),
    ({"checkpoint_every": 0}, "checkpoint_every must be a positive integer, got 0"),
]


@pytest.mark.parametrize("changes, message", CONFIG_CASES)
def test_bad_config_values_are_named_in_one_line(changes, message):
  assert validate(tiny_config(**changes)) == [message]


def test_unknown_config_key_is_rejected():
  config = tiny_config()
  config.unlock()
  config.lerning_rate = 1e-3
  assert validate(config) == ["unknown config key 'lerning_rate'"]


@pytest.fixture
def trained(tiny_ear_run):
  """A finished 2-epoch tiny run (conftest's), copied by the tests that damage a workdir."""
  return tiny_ear_run


def copy_of(trained, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(trained, workdir)
  return workdir


def truncate_every_file(workdir):
  """Checkpoint 2 cut short, as by a full disk during a copy: every file at half size."""
  step = os.path.join(workdir, "checkpoints", "state", "2")
  for path in [os.path.join(d, n) for d, _, names in os.walk(step) for n in names]:
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


def alter_one_array_keeping_its_digest(workdir):
  ocp = checkpoint.ocp
  ckpt = checkpoint.Checkpointer(workdir, 2)
  try:
    manager = ckpt._state   # pylint: disable=protected-access
    saved = manager.restore(2, args=ocp.args.Composite(
        **{item: ocp.args.StandardRestore() for item in checkpoint.STATE_ITEMS}))
    state = dict(saved["state"])
    state["learner.log_alpha"] = np.asarray(state["learner.log_alpha"]) + 1.0
    shutil.rmtree(os.path.join(workdir, "checkpoints", "state", "2"))
    manager.reload()
    manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            policy=ocp.args.StandardSave(saved["policy"])),
                 force=True)
    manager.wait_until_finished()
  finally:
    ckpt.close()


def remove_config_json_and_ask_for_wider_networks(workdir):
  os.remove(os.path.join(workdir, "config.json"))
  return {"network.actor_hidden": (16,), "num_epochs": 3}


def break_config_json(workdir):
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write("{not json")


WORKDIR_CASES = [  # (damage to a copy of a trained run -> config changes, error, message)
    (lambda w: {"env_name": "hopper_vel"}, ConfigError,
     'holds a run with env_name="point_vel", this config has "hopper_vel"'),
    (lambda w: {"agent": "ohe_sac"}, ConfigError,
     'holds a run with agent="ear_sac", this config has "ohe_sac"; use another workdir'),
    (lambda w: {"network.lte_dim": 4}, ConfigError,
     "holds a run with network.lte_dim=3, this config has 4; use another workdir"),
    (lambda w: break_config_json(w), ConfigError, "config.json is not valid JSON"),
    (lambda w: truncate_every_file(w) or {"num_epochs": 3}, checkpoint.CheckpointError,
     "checkpoints/state/2 is unreadable"),
    (lambda w: alter_one_array_keeping_its_digest(w) or {"num_epochs": 3},
     checkpoint.CheckpointError,
     "checkpoints/state/2 is corrupted: learner.log_alpha does not match its digest"),
    (remove_config_json_and_ask_for_wider_networks, checkpoint.CheckpointError,
     "was written for another env, agent or network shape: learner.actor_opt.0.mu."
     "action_decoder."
     "MLP_0.Dense_0.bias is float32[8], this run needs float32[16]"),
]


@pytest.mark.parametrize("damage, error, message", WORKDIR_CASES)
def test_damaged_or_foreign_workdir_fails_in_one_line_and_stays_as_it_was(
    trained, tmp_path, damage, error, message):
  workdir = copy_of(trained, tmp_path)
  changes = damage(workdir) or {}
  before = {d: sorted(names) for d, _, names in os.walk(workdir)}
  with pytest.raises(error) as caught:
    train_and_evaluate(tiny_config(**changes), workdir)
  assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
  assert {d: sorted(names) for d, _, names in os.walk(workdir)} == before


def test_unwritable_workdir_fails_before_training(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.raises(ConfigError, match=r"workdir '.*file/run' is not writable"):
    train_and_evaluate(tiny_config(), str(blocker / "run"))


def test_task_out_of_range_fails_before_the_workdir_is_made(tmp_path):
  with pytest.raises(ConfigError, match=r"task_ids \[12\] out of range: point_vel has"
                                        r" 4 training tasks"):
    train_and_evaluate(tiny_config(task_ids=(0, 12)), str(tmp_path / "x"))
  assert not os.path.exists(tmp_path / "x")


def test_load_policy_of_a_workdir_without_a_run(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match="holds no training run"):
    load_policy(str(tmp_path))
  with pytest.raises(checkpoint.CheckpointError, match="holds no training run"):
    load_config(str(tmp_path))


# ---- an epoch that makes no progress: the watchdog, and signals during it --------------

STALL = {"num_epochs": 6, "stall_epoch": 4}


def stderr_line(stderr, start):
  lines = [line for line in stderr.splitlines() if line.startswith(start)]
  assert len(lines) == 1, stderr[-2000:]
  return lines[0]


def test_watchdog_ends_a_stalled_epoch_and_the_run_resumes(tmp_path):
  workdir = str(tmp_path / "stalled")
  proc = launch(workdir, **STALL, watchdog_min_s=2.0, watchdog_factor=5.0)
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == WATCHDOG_EXIT_CODE, stderr[-2000:]
  line = stderr_line(stderr, "watchdog: ")
  assert line.startswith("watchdog: epoch 4 made no progress in "), line
  assert ("(allowed 2 s; 4 envs = 2 tasks x 2, batch 4 per task); likely a deadlock of "
          "XLA's CPU runtime") in line, line
  assert line.endswith(f"last checkpoint {os.path.abspath(workdir)}/checkpoints/state/3 "
                       f"(intact); run the same command to resume"), line
  assert state_epochs(workdir) == [2, 3]
  proc = launch(workdir, **{**STALL, "stall_epoch": 0})
  _, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-2000:]
  assert [r["epoch"] for r in metrics_rows(workdir)] == [3, 6]


@pytest.mark.parametrize("signals, code, start", [
    ((signal.SIGTERM,), 128 + signal.SIGTERM,
     "SIGTERM: epoch 4 did not end within stop_grace_s=1 s; exiting at once; "),
    ((signal.SIGTERM, signal.SIGINT), 128 + signal.SIGINT,
     "second SIGINT: exiting at once; "),
], ids=["grace_period", "second_signal"])
def test_a_signal_during_a_stalled_epoch_ends_the_process(tmp_path, signals, code, start):
  workdir = str(tmp_path / "stalled")
  grace = 1.0 if len(signals) == 1 else 600.0
  proc = launch(workdir, **STALL, stop_grace_s=grace)
  wait_for_new_checkpoint(proc, workdir, epoch=3)
  time.sleep(0.5)
  for sig in signals:
    proc.send_signal(sig)
    time.sleep(0.3)
  _, stderr = proc.communicate(timeout=60)
  assert proc.returncode == code, stderr[-2000:]
  line = stderr_line(stderr, start.split(":")[0] + ":")
  assert line == start + (f"last checkpoint {os.path.abspath(workdir)}/checkpoints/state/3 "
                          f"(intact); run the same command to resume"), line
  assert state_epochs(workdir) == [2, 3]
  _, state = restored_state(workdir, tiny_config(**STALL))
  assert int(state.epoch) == 3
