"""brax's own env classes and physics pipelines next to earjax's MJX envs.

  python -m benchmarks.brax_backends [--envs=halfcheetah,hopper] [--batch=256] [--out=F.json]

Measures env-steps/s of ``brax.envs.get_environment(name, backend=...)`` for each
pipeline (``mjx``, ``generalized``, ``positional``, ``spring``) at the same batch, random
actions, ``lax.scan`` of 50 steps, median of 3 timed calls after a warm-up.  earjax offers
a brax pipeline as a backend only where one beats its MJX env for the family.
"""
from absl import app
from absl import flags
import brax.envs
import jax

from benchmarks import common
from earjax.compilation_cache import enable_compilation_cache

_ENVS = flags.DEFINE_list("envs", ["halfcheetah", "hopper"], "brax env names.")
_BACKENDS = flags.DEFINE_list("backends", ["mjx", "generalized", "positional", "spring"],
                              "brax pipelines.")
_BATCH = flags.DEFINE_integer("batch", 256, "Envs stepped together.")
_STEPS = flags.DEFINE_integer("steps", 50, "Steps per timed call.")
_OUT = flags.DEFINE_string("out", None, "Write the records to this JSON file.")


def measure(name, backend, batch_size, steps):
  env = brax.envs.get_environment(name, backend=backend)
  state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch_size))
  rate, first_call, _ = common.random_action_throughput(
      jax.vmap(env.step), state, batch_size, env.action_size, steps, repeats=3)
  return rate, first_call


def main(argv):
  del argv
  enable_compilation_cache()
  records = []
  for name in _ENVS.value:
    for backend in _BACKENDS.value:
      settings = {"env": name, "backend": backend, "batch": _BATCH.value}
      try:
        rate, first_call = measure(name, backend, _BATCH.value, _STEPS.value)
      except Exception as e:  # a pipeline that does not run on this jax is a result too
        print(f"{name:<12}{backend:<12} failed: {type(e).__name__}: {str(e)[:120]}")
        records.append(common.record(f"brax/{name}/{backend}/env_steps_per_s", 0.0,
                                     "env-steps/s", error=f"{type(e).__name__}: {e}"[:300],
                                     **settings))
        continue
      print(f"{name:<12}{backend:<12}{rate:10.0f} env-steps/s  first call {first_call:5.1f} s",
            flush=True)
      records.append(common.record(f"brax/{name}/{backend}/env_steps_per_s", rate,
                                   "env-steps/s", first_call_s=first_call, **settings))
  common.write(records, _OUT.value)


if __name__ == "__main__":
  app.run(main)
