"""Policy-space compression (arXiv 2509.22566): the dataset, the autoencoders, the searches.

  python -m experiments.compress --config=experiments/configs/compression.py:halfcheetah \
      --workdir=runs/compress_halfcheetah [--stages=dataset,train,recovery,adapt]

Stages (``earjax.compression.jobs``), each reading what the one before wrote in DIR:
``dataset`` (novelty search -> dataset.npz), ``train`` (one autoencoder per latent size),
``recovery`` (latent PGPE and PGPE in Θ on every task -> recovery.jsonl), ``adapt``
(latent PGPE vs Θ-PGPE vs EAR's CEM on held-out targets -> adapt.json); ``decoded``
(not a default stage: recovery's decoder check alone -> decoded.jsonl, grid_z1.json).  Plots and
tables: ``python -m experiments.plot_compression --workdir=DIR``.
Exit codes: 0 done; 2 bad flags, config or workdir (one line; the stages before the
failing one keep what they wrote).
"""
import json

from absl import app
from absl import flags
from ml_collections import config_flags

from earjax import checkpoint
from earjax.compression import jobs
from experiments import cli

STAGES = {"dataset": jobs.build_dataset, "train": jobs.train_autoencoders,
          "recovery": jobs.recovery, "adapt": jobs.adaptation, "decoded": jobs.decoder_check}
DEFAULT_STAGES = ("dataset", "train", "recovery", "adapt")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. experiments/configs/compression.py:halfcheetah.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Compression run directory.")
_STAGES = flags.DEFINE_list("stages", list(DEFAULT_STAGES), f"Stages to run, in order: "
                            f"{', '.join(STAGES)} (decoded: recovery's decoder check "
                            f"alone, without the searches).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  cli.start(argv)
  unknown = [s for s in _STAGES.value if s not in STAGES]
  if unknown:
    cli.fail([f"unknown stage(s) {', '.join(unknown)}; valid: {', '.join(STAGES)}"])
  config = cli.load_config(_CONFIG)
  for stage in _STAGES.value:
    if stage == "adapt" and not config.adapt.env_name:
      print("adapt: skipped (config.adapt.env_name is empty: no held-out tasks for "
            f"{config.env_name})")
      continue
    try:
      summary = STAGES[stage](config, _WORKDIR.value)
    except (ValueError, OSError, checkpoint.CheckpointError) as e:
      cli.fail([f"{stage}: {str(e).splitlines()[0]}"])
    if stage == "dataset":
      print(json.dumps(summary, indent=1))
    elif stage == "train":
      for row in summary:
        print(f"z{row['latent_dim']:<3} |θ|/|z| {row['compression_ratio']:9.1f}  "
              f"reconstruction error {row['reconstruction_error']:.4f} "
              f"(action variance {row['action_variance']:.4f})")
    elif stage == "recovery":
      print(jobs.recovery_table(summary, jobs.read_decoded(_WORKDIR.value)))
    elif stage == "decoded":
      for row in summary:
        print(f"z{row['latent_dim']:<3} {row['task']}: the dataset's best "
              f"({row['dataset_best_return']:.1f}) decoded returns {row['decoded_return']:.1f}")
    else:
      print(jobs.adaptation_table(summary))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
