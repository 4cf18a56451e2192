"""Tests of earjax.replay: ring wrap-around, per-task partitions, task-balanced sampling."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earjax import replay

TASKS, CAPACITY, OBS, ACT = 3, 5, 2, 1


def chunk(first_step, envs_per_task=2):
  """Transitions whose obs encode (task, global step): obs = [task, step]."""
  steps = first_step + np.arange(envs_per_task)
  task = np.broadcast_to(np.arange(TASKS)[:, None], (TASKS, envs_per_task))
  step = np.broadcast_to(steps, (TASKS, envs_per_task))
  obs = np.stack([task, step], -1).astype(np.float32)
  return {"obs": obs, "action": obs[..., :1], "reward": 10.0 * task + step,
          "next_obs": obs + 1.0, "discount": np.ones((TASKS, envs_per_task))}


def fill(state, num_chunks, envs_per_task=2, insert=replay.insert):
  for i in range(num_chunks):
    state = insert(state, chunk(envs_per_task * i, envs_per_task))
  return state


@pytest.mark.parametrize("capacity", [0, -3, None])
def test_capacity_must_be_positive(capacity):
  with pytest.raises(ValueError, match="capacity_per_task"):
    replay.init(TASKS, capacity, OBS, ACT)


def test_init_shapes():
  state = replay.init(TASKS, CAPACITY, OBS, ACT)
  chex.assert_shape([state.data["obs"], state.data["next_obs"]], (TASKS, CAPACITY, OBS))
  chex.assert_shape(state.data["action"], (TASKS, CAPACITY, ACT))
  chex.assert_shape([state.data["reward"], state.data["discount"]], (TASKS, CAPACITY))
  chex.assert_type([state.insert_pos, state.size], jnp.int32)
  assert state.capacity == CAPACITY and state.num_tasks == TASKS


def test_ring_wraps_around_a_capacity_not_multiple_of_the_chunk():
  # Steps 0..7 in chunks of 2 into 5 slots: slot s holds the latest step = s (mod 5).
  state = fill(replay.init(TASKS, CAPACITY, OBS, ACT), 4)
  assert int(state.insert_pos) == 3 and int(state.size) == CAPACITY
  expected_steps = np.array([5, 6, 7, 3, 4])
  for task in range(TASKS):
    np.testing.assert_array_equal(state.data["obs"][task, :, 0], task)
    np.testing.assert_array_equal(state.data["obs"][task, :, 1], expected_steps)
    np.testing.assert_array_equal(state.data["reward"][task], 10.0 * task + expected_steps)
    np.testing.assert_array_equal(state.data["next_obs"][task, :, 1], expected_steps + 1)


def test_partial_fill_and_oversized_chunk():
  state = fill(replay.init(TASKS, CAPACITY, OBS, ACT), 1)
  assert int(state.insert_pos) == 2 and int(state.size) == 2
  np.testing.assert_array_equal(state.data["obs"][1, :, 1], [0, 1, 0, 0, 0])
  with pytest.raises(ValueError, match="capacity"):
    replay.insert(state, chunk(0, envs_per_task=CAPACITY + 1))
  with pytest.raises(ValueError, match="fields"):
    replay.insert(state, {k: v for k, v in chunk(0).items() if k != "discount"})


def test_sampling_is_task_balanced_and_within_each_partition():
  state = fill(replay.init(TASKS, 7, OBS, ACT), 2)  # 4 of 7 slots filled: steps 0..3
  batch = replay.sample(state, jax.random.PRNGKey(0), 64)
  chex.assert_shape([batch["obs"], batch["next_obs"]], (TASKS, 64, OBS))
  chex.assert_shape(batch["action"], (TASKS, 64, ACT))
  chex.assert_shape([batch["reward"], batch["discount"], batch["task"]], (TASKS, 64))
  chex.assert_type(batch["task"], jnp.int32)
  for task in range(TASKS):
    np.testing.assert_array_equal(batch["task"][task], task)
    np.testing.assert_array_equal(batch["obs"][task, :, 0], task)  # own partition only
    assert set(np.asarray(batch["obs"][task, :, 1]).tolist()) == {0, 1, 2, 3}  # filled
  np.testing.assert_array_equal(batch["discount"], 1.0)  # unfilled slots hold 0
  flat = replay.flatten_batch(batch)
  chex.assert_shape(flat["obs"], (TASKS * 64, OBS))
  chex.assert_shape(flat["task"], (TASKS * 64,))
  np.testing.assert_array_equal(flat["obs"][64:128], batch["obs"][1])


def test_insert_and_sample_jit_trace_once():
  traces = []

  @jax.jit
  def step(state, transitions, key):
    traces.append(None)
    state = replay.insert(state, transitions)
    return state, replay.sample(state, key, 4)

  state = replay.init(TASKS, CAPACITY, OBS, ACT)
  for i in range(4):
    state, batch = step(state, chunk(2 * i), jax.random.PRNGKey(i))
  assert len(traces) == 1
  np.testing.assert_array_equal(state.data["obs"][2, :, 1], [5, 6, 7, 3, 4])
  assert np.all(np.isin(np.asarray(batch["obs"][..., 1]), [3, 4, 5, 6, 7]))


def test_refresh_replaces_only_the_fresh_slots():
  """A context buffer of one chunk per task: slots where ``fresh`` take the new
  transitions, the others keep theirs; the buffer counts as full after it."""
  state = replay.init(TASKS, 2, OBS, ACT)
  first = replay.refresh(state, chunk(0), np.ones((TASKS, 2), bool))
  assert int(first.size) == 2
  np.testing.assert_array_equal(first.data["obs"][:, :, 1], [[0, 1]] * TASKS)
  fresh = np.array([[True, False], [False, False], [False, True]])
  second = replay.refresh(first, chunk(2), fresh)
  np.testing.assert_array_equal(second.data["obs"][:, :, 1], [[2, 1], [0, 1], [0, 3]])
  np.testing.assert_array_equal(second.data["reward"], [[2, 1], [10, 11], [20, 23]])
  with pytest.raises(ValueError, match="fresh has shape"):
    replay.refresh(first, chunk(2), np.ones((TASKS, 3), bool))
