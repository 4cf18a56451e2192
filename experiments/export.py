"""Exports a trained EAR policy: ONNX for any runtime, ``jax.export`` for JAX users.

  python -m experiments.export --workdir=runs/halfcheetah_vel_cpu --format=onnx \
      [--lte="0.5*vel1 + 0.5*vel2"] [--out=DIR/export/policy.onnx] [--checkpoint=best]

The deterministic actor with the LTE as an input (``observation`` [B, obs], ``lte``
[B, d] -> ``action`` [B, act]), so the exported policy stays steerable by any LTE; with
``--lte`` (a task name or any LTE expression of ``earjax.skills``) that LTE is baked in
and the observation is the only input.  Writes the artifact (default
``DIR/export/policy[_<lte>].onnx`` or ``.jax``) and a JSON sidecar beside it with the
inputs, outputs and the run's training LTEs by task name (``earjax.export``).
"""
import os

from absl import app
from absl import flags

from earjax import checkpoint
from earjax import export
from earjax import skills
from earjax.policy import load_run
from experiments import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained EAR run.", required=True)
_CHECKPOINT, _SEED_INDEX = cli.define_checkpoint_flags()
_FORMAT = flags.DEFINE_enum("format", "onnx", export.FORMATS, "onnx: an ONNX model "
                            "(jax2onnx); jax: a serialised jax.export artifact.")
_LTE = flags.DEFINE_string("lte", None, "Bake this LTE in (a training task, a saved "
                           "skill, an LTE expression or x,y,z); default: the LTE is an input.")
_OUT = flags.DEFINE_string("out", None, "The artifact's path (default "
                           "DIR/export/policy[_<lte>].<format>); its sidecar is <out>.json.")


def main(argv):
  cli.start(argv)
  try:
    run = load_run(_WORKDIR.value, _CHECKPOINT.value, _SEED_INDEX.value)
    lte = None if _LTE.value is None else skills.lte_or_task(run, _LTE.value)[0]
  except (ValueError, checkpoint.CheckpointError) as e:
    cli.fail([str(e)])
  name = "policy" if lte is None else f"policy_{cli.slug(_LTE.value)}"
  out = _OUT.value or os.path.join(run.workdir, "export", f"{name}.{_FORMAT.value}")
  try:
    path, meta = export.write(run, _FORMAT.value, out, lte, _LTE.value)
  except ImportError as e:
    cli.fail([str(e)])
  inputs = ", ".join(f"{name} [B, {size}]" for name, size in
                     export.input_sizes(run, lte is not None))
  print(f"wrote {path} ({inputs} -> action [B, {run.env.action_size}]; "
        f"{run.which} checkpoint, epoch {run.epoch}) and {meta}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
