"""Env-only throughput: env-steps/s of each family's auto-reset batch, tasks mixed.

  python -m benchmarks.env_throughput [--batch=256] [--envs=hopper_vel,...] [--out=F.json]
      [--timeout_s=300] [--backend=spring] [--impl=warp] [--solver=4,50]

Every training task of the family appears in the batch (task i at env i mod num_tasks);
actions are uniform random; a jitted ``lax.scan`` of ``--steps`` steps is timed after a
warm-up call, median over repeats.  The first calls of reset and of the step scan give
their compile times (with a hit of the persistent cache, the time to load them; the
records say which).  Each family runs in a child process with ``--timeout_s`` (memory
and a hung compile or run stay there; the record then says it failed and why);
``--timeout_s=0`` measures in this process.
"""
import json
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from earjax import envs
from earjax.compilation_cache import enable_compilation_cache



def measure(name: str, batch_size: int, steps: int, repeats: int,
            backend: str = "default", impl: str = "jax",
            solver: tuple[int, int] | None = None) -> list[dict]:
  """Records of one family at one batch: env-steps/s, first calls of reset and step;
  ``solver`` (iterations, line-search iterations) replaces the family's."""
  options = {} if backend == "default" else {"backend": backend}
  if impl != "jax":
    options["impl"] = impl
  if solver:
    options.update(solver_iterations=solver[0], ls_iterations=solver[1])
  env = envs.make(name, **options).with_worlds(batch_size)
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks[np.arange(batch_size) % env.num_tasks])
  keys = jax.random.split(jax.random.PRNGKey(0), batch_size)
  state, reset_s, reset_cache = common.timed_first_call(
      lambda: jax.jit(batch.reset)(keys, tasks))
  rate, step_s, step_cache = common.random_action_throughput(
      batch.step, state, batch_size, env.action_size, steps, repeats)
  settings = {"env": name, "backend": backend, "impl": impl, "batch": batch_size,
              "steps_per_call": steps,
              "repeats": repeats,
              "peak_rss_mb": common.peak_rss_mb()}
  if hasattr(env, "mj_model"):
    settings.update(solver_iterations=int(env.mj_model.opt.iterations),
                    ls_iterations=int(env.mj_model.opt.ls_iterations),
                    model_options=common.env_model_options(env))
  prefix = f"env/{name}" if backend in ("default", "mjx") else f"env/{name}/{backend}"
  prefix += "" if impl == "jax" else f"/{impl}"
  prefix += f"/solver{solver[0]}_{solver[1]}" if solver else ""
  return [common.record(f"{prefix}/b{batch_size}/env_steps_per_s", rate, "env-steps/s",
                        **settings),
          common.record(f"{prefix}/b{batch_size}/reset_first_call_s", reset_s, "s",
                        cache=reset_cache, **settings),
          common.record(f"{prefix}/b{batch_size}/step_first_call_s", step_s, "s",
                        cache=step_cache, **settings)]


def child(name: str, batch: int, steps: int, repeats: int, timeout_s: int,
          backend: str = "default", impl: str = "jax",
          solver: tuple[int, int] | None = None) -> list[dict]:
  """``measure`` in a child process; on a timeout or a crash, one record saying so."""
  with tempfile.NamedTemporaryFile(suffix=".json") as out:
    try:
      subprocess.run([sys.executable, "-m", "benchmarks.env_throughput", f"--envs={name}",
                      f"--batch={batch}", f"--steps={steps}", f"--repeats={repeats}",
                      f"--backend={backend}", f"--impl={impl}", "--timeout_s=0",
                      *([f"--solver={solver[0]},{solver[1]}"] if solver else []),
                      f"--out={out.name}"],
                     capture_output=True, text=True, check=True, timeout=timeout_s)
      with open(out.name) as f:
        return json.load(f)
    except subprocess.TimeoutExpired:
      problem = f"no result within {timeout_s} s"
    except subprocess.CalledProcessError as e:
      problem = (e.stderr.strip().splitlines() or ["crashed"])[-1]
  return [common.record(f"env/{name}/b{batch}/env_steps_per_s", None, "env-steps/s",
                        env=name, batch=batch, steps_per_call=steps, failed=problem)]


FLAGS = flags.FLAGS


def define_flags():
  """The command-line flags, defined only when run as a program (``benchmarks.run``
  imports this module, and absl flags are global)."""
  flags.DEFINE_integer("batch", 256, "Envs stepped together.")
  flags.DEFINE_integer("steps", 100, "Env steps per timed call.")
  flags.DEFINE_list("envs", list(envs.jax_names()), "Families to measure.")
  flags.DEFINE_string("backend", "default", "Physics backend (envs.make option).")
  flags.DEFINE_string("impl", "jax", "MJX's implementation, jax or warp (envs.make option).")
  flags.DEFINE_list("solver", [], "iterations,ls_iterations: the MJX solver budget "
                    "instead of the family's (envs.make options).")
  flags.DEFINE_integer("repeats", 5, "Timed calls; the median is reported.")
  flags.DEFINE_string("out", None, "Write the records to this JSON file.")
  flags.DEFINE_integer("timeout_s", 300, "Give up on a family after this long "
                       "(each runs in a child process); 0: in this process.")


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  solver = tuple(int(v) for v in FLAGS.solver) or None
  if solver is not None and len(solver) != 2:
    raise app.UsageError(f"--solver takes iterations,ls_iterations, got {FLAGS.solver}")
  for name in FLAGS.envs:
    if FLAGS.timeout_s:
      found = child(name, FLAGS.batch, FLAGS.steps, FLAGS.repeats, FLAGS.timeout_s,
                    FLAGS.backend, FLAGS.impl, solver)
    else:
      found = measure(name, FLAGS.batch, FLAGS.steps, FLAGS.repeats, FLAGS.backend,
                      FLAGS.impl, solver)
    records += found
    common.print_table(found)
  common.write(records, FLAGS.out)


if __name__ == "__main__":
  define_flags()
  app.run(main)
