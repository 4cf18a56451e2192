"""Shared pieces of the benchmarks: timing with warm-up and medians, the matmul peak,
persistent-cache hits, peak memory, JSON records."""
import glob
import gzip
import json
import os
import platform
import resource
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
from jax import monitoring

from benchmarks import model_options
from benchmarks.machine_load import background_load  # noqa: F401  (re-exported)

_CACHE_HITS = [0]
monitoring.register_event_listener(
    lambda event, **kwargs: _CACHE_HITS.__setitem__(
        0, _CACHE_HITS[0] + (event == "/jax/compilation_cache/cache_hits")))


def cache_hits() -> int:
  """Compiles served by the persistent compilation cache so far in this process."""
  return _CACHE_HITS[0]


def median_seconds(fn, repeats: int) -> float:
  """Median wall time of ``fn()`` (which blocks) over ``repeats`` calls."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  times.sort()
  return times[len(times) // 2]


def timed_first_call(fn):
  """(result, seconds, "hit" or "miss") of the first call of a jitted ``fn()``: its
  compile time, or with a hit of the persistent cache the time to load it."""
  hits = cache_hits()
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - start, "hit" if cache_hits() > hits else "miss"


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
  """Dense f32 matmul GFLOP/s of a jitted ``size`` x ``size`` product, median."""
  a = jnp.ones((size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, a))
  seconds = median_seconds(lambda: jax.block_until_ready(matmul(a, a)), repeats)
  return 2 * size**3 / seconds / 1e9


def traced(fn) -> tuple[list[dict], float]:
  """(the events of a ``jax.profiler`` trace of one ``fn()`` call, which blocks, and the
  call's wall seconds): XLA's own timing of every op it ran (Perfetto's JSON events)."""
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"),
                     recursive=True)[0]
    with gzip.open(path) as f:
      trace = json.load(f)
  return (trace["traceEvents"] if isinstance(trace, dict) else trace), wall


def peak_rss_mb(children: bool = False) -> float:
  """Peak resident memory of this process (or of its finished children), MiB."""
  who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
  return resource.getrusage(who).ru_maxrss / 1024


def median_rate(fn, units_per_call: float, repeats: int = 5) -> float:
  """Units per second of ``fn()`` (which blocks), median over ``repeats`` after warm-up."""
  fn()
  return units_per_call / median_seconds(fn, repeats)


def random_action_throughput(step, state, batch_size: int, action_size: int, steps: int,
                             repeats: int) -> tuple[float, float, str]:
  """(env-steps/s, seconds of the first call, its persistent-cache "hit"/"miss") of
  ``step(state, actions) -> state`` run ``steps`` times with uniform random actions
  inside one jitted ``lax.scan``."""
  @jax.jit
  def run(state, key):
    def body(state, key):
      actions = jax.random.uniform(key, (batch_size, action_size), minval=-1, maxval=1)
      state = step(state, actions)
      return state, state.reward
    state, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state, rewards.sum()

  (state, _), first_call, cache = timed_first_call(lambda: run(state, jax.random.PRNGKey(1)))
  holder = {"state": state}

  def call():
    holder["state"], total = run(holder["state"], jax.random.PRNGKey(2))
    jax.block_until_ready(total)

  return median_rate(call, batch_size * steps, repeats), first_call, cache


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
          "cpu_count": os.cpu_count(), "machine": platform.machine(), "git_commit": commit,
          "load_avg_1m": os.getloadavg()[0], "xla_flags": os.environ.get("XLA_FLAGS", "")}


def env_model_options(env) -> dict | None:
  """What the env's compiled MJX model runs (``model_options.read``: solver, iterations,
  line search, timestep, substeps, ...), a Playground family's read off Playground's own
  env; None for an env without one (a brax pipeline, a pure-JAX or host family)."""
  playground = getattr(env, "playground", None)
  if playground is not None:
    return model_options.read(playground.mjx_model.opt, playground.n_substeps)
  if getattr(env, "backend", None) != "mjx" or not hasattr(env, "mjx_model"):
    return None
  return model_options.read(env.mjx_model.opt, env.substeps)


def record(name: str, value: float, unit: str, **settings) -> dict:
  return {"name": name, "value": value, "unit": unit, "settings": settings,
          **environment()}


def write(records: list[dict], path: str | None) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(records, f, indent=1)


def markdown_table(records: list[dict]) -> str:
  """The records as a Markdown table: name, value, unit."""
  rows = ["| record | value | unit |", "|---|---:|---|"]
  for r in records:
    value = "failed: " + r["settings"].get("failed", "") if r["value"] is None else (
        f"{r['value']:,.1f}" if abs(r["value"]) >= 10 else f"{r['value']:.2f}")
    rows.append(f"| `{r['name']}` | {value} | {r['unit']} |")
  return "\n".join(rows)


def print_table(records: list[dict]) -> None:
  width = max(len(r["name"]) for r in records)
  for r in records:
    value = "failed" if r["value"] is None else f"{r['value']:.1f}"
    print(f"{r['name']:<{width}}  {value:>12} {r['unit']}")
