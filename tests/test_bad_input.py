"""Bad input and non-finite values lose nothing: a non-finite parameter stops the job
with one line naming the epoch and network (or rolls back), bad flags, config values and
workdirs are refused in one line before anything is written.  (Preemption, kill -9 and
the watchdog: test_reliability.py.)  Every run is the tiny Point-Vel config of
``tiny.py``.
"""
import os
import shutil

import numpy as np
import pytest

from earjax import checkpoint, load_policy
from earjax.config import validate
from earjax.training import (ConfigError, NonFiniteError, describe_nonfinite, load_config,
                             train_and_evaluate)
from tiny import (cli, leaves, metrics_rows, restored_state, state_epochs, tiny_config,
                  tiny_flags)


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
     "config file: ValueError: unknown preset 'gpu'; valid presets: paper, cpu, cpu_release, cpu_all, cpu_meta"),
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
                              "playground_walker_speed, got 'cheetah'"),
    ({"sac.update_order": "actor_first"},
     "sac.update_order must be one of alpha_first, critic_first, got 'actor_first'"),
    ({"min_replay_size": -1}, "min_replay_size must be a non-negative integer, got -1"),
    ({"watchdog_factor": 0}, "watchdog_factor must be a positive number, got 0.0"),
    ({"ear_sac.lte_noise_std": -0.1}, "ear_sac.lte_noise_std must be a number >= 0, got -0.1"),
    ({"network.actor_hidden": ()}, "network.actor_hidden must be a non-empty list of "
                                   "positive integers, got ()"),
    ({"tau": 0.0}, "tau must be in (0, 1], got 0.0"),
    ({"task_ids": (0, 0)}, "task_ids must not repeat a task, got (0, 0)"),
    ({"replay_capacity": 5}, "replay_capacity (5) must hold one epoch of transitions per "
                             "task (envs_per_task * env_steps_per_epoch = 10)"),
    ({"env_name": "hopper_vel", "env.backend": "spring"},
     "env.backend must be one of mjx for hopper_vel, got 'spring'"),
    ({"env.episode_length": 0}, "env.episode_length must be a positive integer, got 0"),
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


def test_a_setting_another_family_has_is_named_with_the_familys_settings():
  """Point-Vel has no solver: a MuJoCo family's setting in its ``env`` section is named,
  with the settings Point-Vel does have."""
  config = tiny_config()
  config.env.unlock()
  config.env.solver_iterations = 4
  assert validate(config) == [
      "unknown config key 'env.solver_iterations' (point_vel has no such setting; its "
      "settings: episode_length, num_test_tasks, num_train_tasks, success_velocity_fraction, "
      "task_interval, task_seed)"]


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
    (lambda w: {"ear_sac.lte_dim": 4}, ConfigError,
     "holds a run with ear_sac.lte_dim=3, this config has 4; use another workdir"),
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


@pytest.mark.parametrize("damage", [truncate_every_file, alter_one_array_keeping_its_digest])
def test_a_bad_checkpoint_names_the_flag_for_an_earlier_one_and_deletes_nothing(
    trained, tmp_path, damage):
  """Checkpoint 2 cut short or altered: the error says how to continue from checkpoint 1
  (``--config.resume_epoch=1``), never to delete anything; with the flag the run resumes
  from epoch 1 and goes on, the bad checkpoint 2 moved aside (kept), not deleted."""
  workdir = copy_of(trained, tmp_path)
  damage(workdir)
  with pytest.raises(checkpoint.CheckpointError) as caught:
    train_and_evaluate(tiny_config(num_epochs=3), workdir)
  text = str(caught.value)
  assert text.endswith("; to continue from an earlier checkpoint, pass "
                       "--config.resume_epoch=1 (kept: 1)"), text
  assert "delete" not in text and "\n" not in text
  row = train_and_evaluate(tiny_config(num_epochs=3, resume_epoch=1), workdir)
  assert row["epoch"] == 3
  assert [r["epoch"] for r in metrics_rows(workdir)] == [1, 2, 3]
  load_policy(workdir)   # a best checkpoint of the resumed run is kept
  superseded = os.listdir(os.path.join(workdir, "checkpoints", "superseded"))
  assert "state_2" in [name.rsplit("_", 1)[0] for name in superseded]   # kept aside


def test_a_resume_epoch_that_is_not_kept_is_refused_in_one_line(trained, tmp_path):
  workdir = copy_of(trained, tmp_path)
  with pytest.raises(checkpoint.CheckpointError, match=r"^no training checkpoint of epoch 7 "
                                                       r"in .*; kept: 1, 2$"):
    train_and_evaluate(tiny_config(num_epochs=3, resume_epoch=7), workdir)
