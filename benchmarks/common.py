"""Shared pieces of the benchmarks: timing with warm-up and medians, JSON records."""
import json
import os
import platform
import subprocess
import time

import jax


def median_rate(fn, units_per_call: float, repeats: int = 5) -> float:
  """Units per second of ``fn()`` (which blocks), median over ``repeats`` after warm-up."""
  fn()
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    rates.append(units_per_call / (time.perf_counter() - start))
  rates.sort()
  return rates[len(rates) // 2]


def random_action_throughput(step, state, batch_size: int, action_size: int, steps: int,
                             repeats: int) -> tuple[float, float]:
  """(env-steps/s, seconds of the first call) of ``step(state, actions) -> state`` run
  ``steps`` times with uniform random actions inside one jitted ``lax.scan``."""
  @jax.jit
  def run(state, key):
    def body(state, key):
      actions = jax.random.uniform(key, (batch_size, action_size), minval=-1, maxval=1)
      state = step(state, actions)
      return state, state.reward
    state, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state, rewards.sum()

  start = time.perf_counter()
  state, total = jax.block_until_ready(run(state, jax.random.PRNGKey(1)))
  first_call = time.perf_counter() - start
  holder = {"state": state}

  def call():
    holder["state"], total = run(holder["state"], jax.random.PRNGKey(2))
    jax.block_until_ready(total)

  return median_rate(call, batch_size * steps, repeats), first_call


def environment() -> dict:
  """jax/device/git facts stored with every record."""
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True, cwd=os.path.dirname(__file__)).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
  device = jax.devices()[0]
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "device": device.device_kind, "num_devices": jax.device_count(),
          "cpu_count": os.cpu_count(), "machine": platform.machine(), "git_commit": commit}


def record(name: str, value: float, unit: str, **settings) -> dict:
  return {"name": name, "value": value, "unit": unit, "settings": settings,
          **environment()}


def write(records: list[dict], path: str | None) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(records, f, indent=1)


def print_table(records: list[dict]) -> None:
  width = max(len(r["name"]) for r in records)
  for r in records:
    print(f"{r['name']:<{width}}  {r['value']:>12.1f} {r['unit']}")
