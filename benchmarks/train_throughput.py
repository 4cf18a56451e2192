"""End-to-end training throughput: env-steps/s of the jitted, donated training epoch.

``Trainer.from_config(config).epoch`` is called once (compile, or load from the persistent cache),
once more as a warm-up, then ``repeats`` times; env-steps/s is
``num_envs * env_steps_per_epoch`` over the median epoch time (each epoch also runs its
``grad_steps_per_epoch`` updates).
"""
from __future__ import annotations

import jax
import ml_collections

from benchmarks import common
from benchmarks import settings as settings_lib
from earjax.training import Trainer


def measure(name: str, config: ml_collections.ConfigDict, repeats: int,
            trainer: Trainer | None = None) -> list[dict]:
  """Records ``train/<name>/...``: env-steps/s, grad-steps/s, epoch and first-call s, of
  ``trainer`` (a new Trainer of ``config`` if None; a caller that passes one keeps its
  compiled programs)."""
  trainer = trainer or Trainer.from_config(config)
  state = trainer.init(trainer.seed_keys(config.seed), trainer.task_params)
  holder = {"state": state}

  def call():
    holder["state"], metrics = trainer.epoch(holder["state"])
    jax.block_until_ready(metrics)

  _, first_s, cache = common.timed_first_call(call)
  call()
  seconds = common.median_seconds(call, repeats)
  # Every seed's env steps (a batch of seeds: the sum over them).
  env_steps = trainer.num_envs * config.env_steps_per_epoch * trainer.num_seeds
  settings = {**settings_lib.describe(config), "num_envs": trainer.num_envs,
              "num_seeds": trainer.num_seeds,
              "batch": trainer.num_tasks * config.batch_size_per_task, "repeats": repeats,
              "epoch_traces": trainer.epoch_traces,
              "model_options": common.env_model_options(trainer.env)}
  prefix = f"train/{name}"
  return [common.record(f"{prefix}/env_steps_per_s", env_steps / seconds, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/grad_steps_per_s",
                        config.grad_steps_per_epoch / seconds, "updates/s", **settings),
          common.record(f"{prefix}/epoch_s", seconds, "s", **settings),
          common.record(f"{prefix}/first_epoch_s", first_s, "s", cache=cache, **settings)]
