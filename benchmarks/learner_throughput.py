"""Learner throughput: gradient steps/s of one SAC update and its GFLOP/s.

The update is the agent's own ``update`` (SAC: critics, actor, alpha, per-network
clipping, Polyak targets) on a fixed task-balanced batch of random data, ``steps`` of them
in one jitted ``lax.scan`` (as inside the epoch; replay sampling is left out here and
measured with the whole epoch).  FLOPs per update are XLA's own count
(``cost_analysis()["flops"]`` of one compiled update); GFLOP/s is set against the dense
matmul peak measured in the same process (``common.matmul_peak_gflops``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from benchmarks import common
from earjax.training import Trainer


def random_batch(trainer: Trainer, key: jax.Array) -> dict[str, jax.Array]:
  """A flat batch of ``batch_size_per_task`` random transitions of every task."""
  size = trainer.num_tasks * trainer.config.batch_size_per_task
  obs_key, action_key, reward_key, next_key = jax.random.split(key, 4)
  obs_shape = (size, trainer.env.observation_size)
  return {"obs": jax.random.normal(obs_key, obs_shape),
          "action": jax.random.uniform(action_key, (size, trainer.env.action_size),
                                       minval=-1, maxval=1),
          "reward": jax.random.normal(reward_key, (size,)),
          "next_obs": jax.random.normal(next_key, obs_shape),
          "discount": jnp.ones((size,)),
          "task": jnp.repeat(jnp.arange(trainer.num_tasks, dtype=jnp.int32),
                             trainer.config.batch_size_per_task),
          # env metrics the agent keeps (TSAC: ``success``, its sparse reward)
          **{name: jax.random.bernoulli(jax.random.fold_in(key, i), 0.5, (size,)).astype(
              jnp.float32) for i, name in enumerate(trainer.agent.data.extra_fields)}}


def update_flops(trainer: Trainer, state, batch) -> float:
  """XLA's FLOP count of one compiled update."""
  compiled = jax.jit(trainer.agent.update).lower(state, batch, jax.random.PRNGKey(0)).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis["flops"])


def measure(name: str, config: ml_collections.ConfigDict, steps: int, repeats: int,
            peak_gflops: float) -> list[dict]:
  """Records ``learner/<name>/...``: updates/s, MFLOP per update, GFLOP/s, % of peak."""
  trainer = Trainer.from_config(config)
  state = trainer.agent.init(jax.random.PRNGKey(0))
  batch = random_batch(trainer, jax.random.PRNGKey(1))
  flops = update_flops(trainer, state, batch)

  @jax.jit
  def run(state, key):
    step = lambda s, k: (trainer.agent.update(s, batch, k)[0], None)
    return jax.lax.scan(step, state, jax.random.split(key, steps))[0]

  holder = {"state": state}

  def call():
    holder["state"] = jax.block_until_ready(run(holder["state"], jax.random.PRNGKey(2)))

  _, first_s, cache = common.timed_first_call(call)
  rate = steps / common.median_seconds(call, repeats)
  gflops = rate * flops / 1e9
  n, e = config.network, config.ear_sac
  settings = {"agent": config.agent, "actor_hidden": list(n.actor_hidden),
              "critic_hidden": list(n.critic_hidden),
              "state_encoder_hidden": list(e.state_encoder_hidden),
              "task_encoder_hidden": list(e.task_encoder_hidden),
              "num_tasks": trainer.num_tasks, "batch": trainer.num_tasks * config.batch_size_per_task,
              "env": config.env_name, "updates_per_call": steps, "repeats": repeats,
              "peak_gflops": peak_gflops}
  prefix = f"learner/{name}"
  return [common.record(f"{prefix}/updates_per_s", rate, "updates/s", **settings),
          common.record(f"{prefix}/mflop_per_update", flops / 1e6, "MFLOP", **settings),
          common.record(f"{prefix}/gflops", gflops, "GFLOP/s", **settings),
          common.record(f"{prefix}/percent_of_peak", 100 * gflops / peak_gflops, "%",
                        **settings),
          common.record(f"{prefix}/first_call_s", first_s, "s", cache=cache, **settings)]
