"""Run by ``test_parallel.py`` in a process of its own with four forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before jax starts):
the tiny Point-Vel run on all four training tasks, on one device and on four, per layout
and for MAML's meta-iteration, and on two (the two-process job's reference, into the
directory given as argument).
Prints one JSON object of measurements; the test asserts on them."""
import functools
import json
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from earjax import envs
from earjax import parallel
from earjax.adaptation import cem
from earjax.policy import frozen_policy
from earjax.training import ConfigError, train_and_evaluate, trainer_for
from tiny import restored_state, tiny_config, tiny_networks

EPOCHS = 4
TWO_DEVICE_EPOCHS = 8   # the two-process job's length (test_parallel.py)


def config(num_devices, layout, **changes):
  return tiny_config(**{"num_devices": num_devices, "shard_layout": layout,
                        "task_ids": (0, 1, 2, 3), "num_epochs": EPOCHS, **changes})


def epochs(num_devices, layout, **changes):
  trainer = trainer_for(config(num_devices, layout, **changes))
  state = trainer.init(trainer.seed_keys(0), trainer.task_params)
  for _ in range(EPOCHS):
    state, _ = trainer.epoch(state)
  return trainer, state


def max_diff(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def collectives(trainer, state) -> dict:
  text = trainer.epoch.compiled_text(state)
  ops = ("all-reduce(", "all-gather(", "outfeed(", "infeed(", "send(", "recv(")
  out = {op.rstrip("("): text.count(op) for op in ops}
  out["host_callbacks"] = text.count("xla_python_cpu_callback") + text.count(
      "xla_ffi_python_cpu_callback")
  return out


def saved_ltes(workdir, cfg) -> list:
  """The LTE table of ``workdir``'s latest state as the job that saved it reads it: its
  checkpoint restored onto the job's own layout over the devices."""
  trainer, state = restored_state(workdir, cfg)
  return np.asarray(trainer.agent.networks.lte_table(state.learner.actor_params)).tolist()


def cem_over_devices() -> dict:
  """Algorithm 2 on a random tiny EAR policy, 3 tasks x 90 candidates (uneven over four
  devices), with and without the candidates laid over the devices."""
  env = envs.make("point_vel", episode_length=20)
  networks = tiny_networks("ear_sac", env.observation_size, env.action_size, 2)
  policy = frozen_policy(networks, networks.actor_init(jax.random.PRNGKey(0)))
  targets = jnp.array([[1.0], [-1.0], [0.5]])
  layout = parallel.search_layout()

  def search(policy, key, layout):
    score = cem.rollout_score_fn(env, policy, targets, layout=layout)
    return cem.cem(score, key, len(targets), 3, cem.CEMConfig(generations=2))

  key = jax.random.PRNGKey(1)
  one = jax.jit(functools.partial(search, layout=None))(policy, key)
  spread = jax.jit(functools.partial(search, layout=layout))
  many = spread(parallel.replicate(policy, layout), key)
  text = spread.lower(parallel.replicate(policy, layout), key).compile().as_text()
  return {"devices": layout.num_devices, "max_diff": max_diff(one, many),
          "collectives": text.count("all-gather(") + text.count("all-reduce(")}


def main(two_device_workdir):
  result = {"devices": jax.device_count()}
  _, one = epochs(1, "tasks")
  on_four = {}
  for layout in ("tasks", "storage"):
    trainer, four = on_four[layout] = epochs(4, layout)
    result[layout] = {
        "learner_max_diff": max_diff(one.learner, four.learner),
        "replay_max_diff": max_diff(one.replay, four.replay),
        "counters_equal": [int(one.epoch), int(one.grad_steps)] == [int(four.epoch),
                                                                    int(four.grad_steps)],
        "replay_spec": str(four.replay.data["obs"].sharding.spec),
        "env_spec": str(jax.tree.leaves(four.env_state)[0].sharding.spec),
        "learner_replicated": all(x.sharding.is_fully_replicated
                                  for x in jax.tree.leaves(four.learner)),
        "collectives": collectives(trainer, four),
    }
  # Seeds as a batch axis: four seeds over four devices (whole seeds per device) against
  # the same four seeds on one device.
  seeds = {"num_seeds": 4, "task_ids": (0, 3)}
  _, seeds_one = epochs(1, "tasks", **seeds)
  seeds_trainer, seeds_four = epochs(4, "tasks", **seeds)
  result["seeds"] = {
      "learner_max_diff": max_diff(seeds_one.learner, seeds_four.learner),
      "state_max_diff": max_diff(seeds_one, seeds_four),
      "spec": str(jax.tree.leaves(seeds_four.learner)[0].sharding.spec),
      "collectives": collectives(seeds_trainer, seeds_four)}
  # MAML's meta-iteration: its episodes over the data axis.
  _, maml_one = epochs(1, "tasks", agent="maml")
  maml_trainer, maml_four = epochs(4, "tasks", agent="maml")
  result["maml"] = {"learner_max_diff": max_diff(maml_one.learner, maml_four.learner),
                    "collectives": collectives(maml_trainer, maml_four)}
  # Through the job: a 4-device checkpoint resumed on one device (orbax reshards it)
  # continues as the 4-device run does (the job's state is ``trainer.init`` from the
  # seed's key and its epochs, as in ``epochs``).  (Resuming on as many devices as saved is
  # checked bitwise by the two-process job, test_parallel.py, against the run below.)
  four = on_four["tasks"][1]
  with tempfile.TemporaryDirectory() as moved:
    train_and_evaluate(config(4, "tasks", num_epochs=2), moved)
    train_and_evaluate(config(1, "tasks"), moved)
    _, c = restored_state(moved, config(1, "tasks"))
    result["resume_on_one_epoch"] = int(c.epoch)
    result["resume_on_one_max_diff"] = max_diff(four.learner, c.learner)
  # A run saved by four devices, kept for the readers of test_parallel.py (one device),
  # with its LTEs as the saving job reads them (its own layout).
  four_device_workdir = two_device_workdir + "_four_devices"
  train_and_evaluate(config(4, "tasks", num_epochs=2), four_device_workdir)
  result["four_device_workdir"] = four_device_workdir
  result["four_device_ltes"] = saved_ltes(four_device_workdir, config(4, "tasks",
                                                                      num_epochs=2))
  # The reference of the two-process job: two of the four devices, straight.
  two = config(2, "tasks", num_epochs=TWO_DEVICE_EPOCHS)
  train_and_evaluate(two, two_device_workdir)
  result["two_device_ltes"] = saved_ltes(two_device_workdir, two)
  refusals = {}
  for name, cfg in (("three_devices_four_tasks", config(3, "tasks")),
                    ("more_than_available", config(8, "tasks")),
                    ("storage_batch", config(3, "storage", envs_per_task=3,
                                             replay_capacity=30))):
    try:
      trainer_for(cfg)
      refusals[name] = None
    except ConfigError as e:
      refusals[name] = str(e)
  result["refusals"] = refusals
  result["cem"] = cem_over_devices()
  json.dump(result, sys.stdout)


if __name__ == "__main__":
  main(sys.argv[1])
