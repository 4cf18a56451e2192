"""Where one SAC update's time goes: XLA's own profile, op by op, per optimizer layout.

  python -m benchmarks.update_profile --layouts=tree,flat --rounds=3 \
      --out=benchmarks/results/update_profile_cpu.json

The update is the agent's own (``learner_throughput``: the brax-matched SAC step on a
fixed random batch, ``--updates`` of them in one jitted ``lax.scan``).  Each layout's
program is profiled (``jax.profiler``, a Perfetto trace) and its thunks' durations summed
per HLO instruction, then per kind read off the compiled HLO:

- ``matmul``: dots and the fusions around them (XLA:CPU's ``ynn_fusion`` and
  ``dot`` thunks; the learner FLOPs);
- ``elementwise``: every other fusion or op (Adam's moments, clipping, Polyak, the
  finite checks, RNG, tanh/log-prob math, reductions, copies);
- ``loop``: the ``while`` thunks' own time (their bodies' ops are counted above).

Layouts: ``tree`` (earjax's: Adam on every parameter array) and ``flat``
(``optax.flatten``: every network's gradient raveled into one vector, so Adam runs as a
few large fusions, at the price of a concatenate and slices).  Both compute the same
update; the record keeps the largest parameter difference after ``--updates`` steps.
Layouts alternate over ``--rounds``; medians are reported.  Updates/s are timed outside
the profiler, interleaved the same way, and set against the matmul peak measured in the
same process (``common.matmul_peak_gflops``, the roofline's).
"""
from __future__ import annotations

import collections
import contextlib
import re
import statistics
from unittest import mock

from absl import app
from absl import flags
import jax
import numpy as np
import optax

from benchmarks import common
from benchmarks import learner_throughput
from benchmarks import settings as settings_lib
from earjax.training import Trainer

LAYOUTS = ("tree", "flat")
_LAYOUTS = flags.DEFINE_list("layouts", list(LAYOUTS), "Optimizer layouts to profile.")
_UPDATES = flags.DEFINE_integer("updates", 50, "Updates per profiled call.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds of every layout.")
_TOP = flags.DEFINE_integer("top", 12, "Instructions listed per layout.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


@contextlib.contextmanager
def optimizer_layout(layout: str):
  """Agents built inside run Adam on ``layout``: ``tree`` as they are, ``flat`` through
  ``optax.flatten``."""
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
  if layout == "tree":
    yield
    return
  adam = optax.adam
  with mock.patch.object(optax, "adam", lambda *a, **k: optax.flatten(adam(*a, **k))):
    yield


def _instruction(line: str) -> tuple[str, str] | None:
  """``(name, opcode)`` of one HLO instruction line (``%n = shape opcode(...)``, the
  shape possibly a tuple), or None."""
  m = re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.*)$", line)
  if not m:
    return None
  name, rest = m.groups()
  if rest.startswith("("):                         # a tuple shape: skip to its close
    depth = 0
    for i, ch in enumerate(rest):
      depth += {"(": 1, ")": -1}.get(ch, 0)
      if depth == 0:
        rest = rest[i + 1:]
        break
  else:
    rest = rest.split(" ", 1)[1] if " " in rest else ""
  op = re.match(r"\s*([\w\-]+)\(", rest)
  return (name, op.group(1)) if op else None


def instruction_kinds(hlo_text: str) -> dict[str, str]:
  """``{instruction name: "matmul" | "loop" | "elementwise"}`` of a compiled module: a
  fusion is a matmul when its fused computation holds a ``dot`` (or it is a YNNPACK
  fusion, which XLA:CPU forms around dots)."""
  computations, current = {}, None
  for line in hlo_text.splitlines():
    head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if head:
      current = computations.setdefault(head.group(1), [])
    elif current is not None:
      current.append(line)
  has_dot = {name: any((_instruction(l) or ("", ""))[1] == "dot" for l in lines)
             for name, lines in computations.items()}
  kinds = {}
  for lines in computations.values():
    for line in lines:
      parsed = _instruction(line)
      if parsed is None:
        continue
      name, op = parsed
      called = re.findall(r"calls=%?([\w.\-]+)", line)
      if op == "dot" or name.startswith("ynn_fusion") or any(has_dot.get(c) for c in called):
        kinds[name] = "matmul"
      elif op == "while":
        kinds[name] = "loop"
      else:
        kinds[name] = "elementwise"
  return kinds


def profile(run, state, key) -> dict[str, float]:
  """``{instruction: microseconds}`` of one call of ``run(state, key)``, from its trace."""
  events = common.traced(lambda: jax.block_until_ready(run(state, key)))[0]
  totals = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and not e.get("name", "").startswith(("$", "ThunkExecutor",
                                                                 "PjitFunction", "Slinky",
                                                                 "CommonPjRt")):
      totals[e["name"]] += e.get("dur", 0.0)
  return dict(totals)


def build(layout: str, updates: int):
  """(jitted ``run(state, key)``: ``updates`` SAC updates, its first state, its HLO kinds,
  the learner's XLA FLOPs per update)."""
  with optimizer_layout(layout):
    trainer = Trainer.from_config(settings_lib.brax_matched())
  state = trainer.agent.init(jax.random.PRNGKey(0))
  batch = learner_throughput.random_batch(trainer, jax.random.PRNGKey(1))

  @jax.jit
  def run(state, key):
    step = lambda s, k: (trainer.agent.update(s, batch, k)[0], None)
    return jax.lax.scan(step, state, jax.random.split(key, updates))[0]

  compiled = run.lower(state, jax.random.PRNGKey(2)).compile()
  flops = learner_throughput.update_flops(trainer, state, batch)
  return run, state, instruction_kinds(compiled.as_text()), flops


def main(argv):
  del argv
  unknown = sorted(set(_LAYOUTS.value) - set(LAYOUTS))
  if unknown:
    raise app.UsageError(f"unknown layout(s) {', '.join(unknown)}; valid: {', '.join(LAYOUTS)}")
  n = _UPDATES.value
  built = {layout: build(layout, n) for layout in _LAYOUTS.value}
  finals = {}
  for layout, (run, state, _, _) in built.items():   # warm-up, and the same-math check
    finals[layout] = jax.block_until_ready(run(state, jax.random.PRNGKey(3)))
  peak = common.matmul_peak_gflops()
  times = {layout: [] for layout in built}
  tables = {layout: [] for layout in built}
  for r in range(_ROUNDS.value):
    for layout in (list(built) if r % 2 == 0 else list(built)[::-1]):
      run, state, _, _ = built[layout]
      times[layout].append(common.median_seconds(
          lambda: jax.block_until_ready(run(state, jax.random.PRNGKey(4))), 3) / n)
      tables[layout].append(profile(run, state, jax.random.PRNGKey(4)))

  records = []
  first = list(built)[0]
  for layout, (_, _, kinds, flops) in built.items():
    names = set().union(*tables[layout])
    per_update = {name: statistics.median(t.get(name, 0.0) for t in tables[layout]) / n
                  for name in names}                         # microseconds per update
    by_kind = collections.Counter()
    for name, us in per_update.items():
      by_kind[kinds.get(name, "elementwise")] += us
    profiled = sum(by_kind.values())
    seconds = statistics.median(times[layout])
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(
        jax.tree.leaves(finals[layout].actor_params), jax.tree.leaves(finals[first].actor_params)))
    top = sorted(per_update.items(), key=lambda kv: -kv[1])[:_TOP.value]
    settings = {"layout": layout, "updates_per_call": n, "rounds": _ROUNDS.value,
                "flops_per_update": flops, "peak_gflops": peak,
                "thunks_per_update": sum(1 for v in per_update.values() if v > 0),
                "top_instructions_us": [[k, kinds.get(k, "elementwise"), v] for k, v in top],
                f"max_actor_param_difference_vs_{first}": diff}
    prefix = f"update_profile/brax_matched/{layout}"
    records += [common.record(f"{prefix}/update_ms", 1e3 * seconds, "ms", **settings),
                common.record(f"{prefix}/percent_of_matmul_peak",
                              100 * flops / seconds / 1e9 / peak, "%", **settings)]
    for kind in ("matmul", "elementwise", "loop"):
      records.append(common.record(f"{prefix}/{kind}_ms", by_kind[kind] / 1e3, "ms",
                                   **settings))
      records.append(common.record(f"{prefix}/{kind}_fraction",
                                   by_kind[kind] / profiled if profiled else 0.0, "fraction",
                                   **settings))
  common.print_table(records)
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
