"""The program cache: a relaunch traces nothing and computes the same, bit for bit; a
changed config traces afresh; a damaged entry is traced again; no cache, plain jit."""
import os

import jax
import numpy as np
from earjax import program_cache
from earjax.training import Trainer
from tiny import leaves, tiny_config


def three_epochs(config, evaluate=True, epochs=3):
  """A new Trainer (as a relaunched process makes) runs init, 3 epochs, an evaluation."""
  trainer = Trainer.from_config(config)
  state = trainer.init(jax.random.PRNGKey(0), trainer.task_params)
  for _ in range(epochs):
    state, metrics = trainer.epoch(state)
  evaluation = (trainer.evaluate(state.learner.actor_params, jax.random.PRNGKey(1))
                if evaluate else None)
  return trainer, state, metrics, evaluation


def test_a_relaunch_loads_every_program_and_computes_the_same_bits(programs):
  first, state, metrics, evaluation = three_epochs(tiny_config())
  assert first.epoch_traces == 1     # once for three epochs
  assert sorted(name.split("-")[0] for name in os.listdir(programs)) == [
      "epoch", "evaluate", "init"]
  again, state2, metrics2, evaluation2 = three_epochs(tiny_config())
  assert again.epoch_traces == 0
  for x, y in zip(leaves((state, metrics, evaluation)), leaves((state2, metrics2,
                                                                evaluation2))):
    np.testing.assert_array_equal(x, y)
  # The kept program's output shapes serve a resume's restore target.
  want = jax.eval_shape(again._init, jax.random.PRNGKey(0), again.task_params)  # pylint: disable=protected-access
  got = again.init.eval_shape(jax.random.PRNGKey(0), again.task_params)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  assert [(x.shape, x.dtype) for x in jax.tree.leaves(got)] == [
      (x.shape, x.dtype) for x in jax.tree.leaves(want)]


def test_another_config_traces_afresh(programs):
  three_epochs(tiny_config(), evaluate=False, epochs=1)
  trainer, *_ = three_epochs(tiny_config(learning_rate=1e-3), evaluate=False, epochs=1)
  assert trainer.epoch_traces == 1
  assert len([n for n in os.listdir(programs) if n.startswith("epoch-")]) == 2


def test_a_damaged_entry_is_traced_again(programs):
  three_epochs(tiny_config())
  for name in os.listdir(programs):
    with open(os.path.join(programs, name), "wb") as f:
      f.write(b"not a program")
  trainer, *_ = three_epochs(tiny_config())
  assert trainer.epoch_traces == 1


def test_without_a_cache_the_functions_are_plain_jit():
  before = program_cache.directory()
  program_cache.disable()
  try:
    trainer, state, _, _ = three_epochs(tiny_config(), evaluate=False, epochs=2)
  finally:
    if before is not None:
      program_cache.enable(before)
  assert trainer.epoch_traces == 1 and int(state.epoch) == 2


def test_the_source_digest_changes_with_any_source_or_asset_but_not_with_bytecode(tmp_path):
  (tmp_path / "envs").mkdir()
  (tmp_path / "a.py").write_text("x = 1\n")
  (tmp_path / "envs" / "model.xml").write_text("<mujoco/>")
  digest = program_cache.source_digest(str(tmp_path))
  (tmp_path / "__pycache__").mkdir()
  (tmp_path / "__pycache__" / "a.py").write_text("bytecode")
  (tmp_path / "notes.txt").write_text("not code")
  assert program_cache.source_digest(str(tmp_path)) == digest
  (tmp_path / "envs" / "model.xml").write_text("<mujoco model='b'/>")
  changed = program_cache.source_digest(str(tmp_path))
  assert changed != digest
  (tmp_path / "a.py").write_text("x = 2\n")
  assert program_cache.source_digest(str(tmp_path)) not in (digest, changed)
