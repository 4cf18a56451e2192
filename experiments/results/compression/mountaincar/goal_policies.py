"""Where the MountainCar autoencoders leave the dataset's goal-reaching policies (issue 32).

For each trained latent size of a compression run: how many dataset policies reached the
goal (single-episode return >= the preset's goal_return), the behavioural reconstruction
error on the probe states of those policies and of all (per policy, then averaged), and
where their 1-D codes lie within the codes' range.

  PYTHONPATH=. python experiments/results/compression/mountaincar/goal_policies.py \
      runs/compress/mountaincar OUT.json
"""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from earjax.compression import store
from earjax.compression.autoencoder import encoder_inputs
from earjax.compression.dataset import PolicyDataset
from experiments.configs import compression

GOAL = compression.get_config("mountaincar").goal_return


def per_policy_errors(compressed, dataset, rows):
  inputs = jnp.asarray(encoder_inputs(dataset, compressed.compressor.config.encoder_input))
  loss = jax.jit(compressed.compressor.loss)
  probe = jnp.asarray(dataset.probe_states)
  return np.array([float(loss(compressed.params, jnp.asarray(dataset.params[i:i + 1]),
                              inputs[i:i + 1], probe)) for i in rows])


def main(workdir, out):
  dataset = PolicyDataset.load(store.dataset_path(workdir))
  returns = dataset.returns[:, 0]
  goal = np.where(returns >= GOAL)[0]
  every = np.arange(dataset.size)
  record = {"workdir": workdir, "goal_return": GOAL, "policies": int(dataset.size),
            "policies_reaching_goal": int(len(goal)), "by_latent_dim": {}}
  for d in store.latent_dims(workdir):
    compressed = store.load(workdir, d)
    entry = {"error_goal_policies": float(per_policy_errors(compressed, dataset, goal).mean()),
             "error_all_policies": float(per_policy_errors(compressed, dataset, every).mean())}
    if d == 1:
      codes = compressed.codes[:, 0]
      entry["codes_range"] = [float(codes.min()), float(codes.max())]
      entry["goal_codes_quantiles_0_25_50_75_100"] = np.quantile(
          codes[goal], [0, 0.25, 0.5, 0.75, 1]).tolist()
    record["by_latent_dim"][f"z{d}"] = entry
    print(d, entry, flush=True)
  with open(out, "w") as f:
    json.dump(record, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
