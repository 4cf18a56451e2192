"""Where the MountainCar autoencoders leave the dataset's goal-reaching policies (issue 32).

For each trained latent size of a compression run: how many dataset policies reached the
goal (single-episode return >= the preset's goal_return), the behavioural reconstruction
error on the probe states of those policies and of all (per policy, then averaged),
where their 1-D codes lie within the codes' range, and, for the dataset's best policy
(``decoded.jsonl``'s), the squared action error of its decoded copy along its own
goal-reaching episode, beside the ranges of that episode's states and of the probe
states.

  PYTHONPATH=. python experiments/results/compression/mountaincar/goal_policies.py \
      runs/compress/mountaincar OUT.json       # after the recovery (or decoded) stage
"""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from earjax import acting
from earjax import envs
from earjax.compression import jobs
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
  best = jobs.read_decoded(workdir)[0]["dataset_index"]
  space, env = dataset.space(), envs.make(dataset.env_name)
  episode = acting.rollout(env, space.act_fn(), jnp.asarray(dataset.params[best])[None],
                           jnp.asarray(dataset.task_params[:1]),
                           jax.random.split(jax.random.PRNGKey(0), 1), keep_states=True)
  visited = np.asarray(episode.obs[:-1, 0])[np.asarray(episode.alive[:, 0]) > 0]
  actions = np.asarray(space.act(jnp.asarray(dataset.params[best]), jnp.asarray(visited)))
  span = lambda x: [x.min(0).tolist(), x.max(0).tolist()]
  record["best_policy"] = {"dataset_index": int(best), "episode_return": float(episode.ret[0]),
                           "episode_states_min_max": span(visited),
                           "probe_states_min_max": span(dataset.probe_states),
                           "mean_abs_action_on_episode": float(np.abs(actions).mean())}
  for d in store.latent_dims(workdir):
    compressed = store.load(workdir, d)
    entry = {"error_goal_policies": float(per_policy_errors(compressed, dataset, goal).mean()),
             "error_all_policies": float(per_policy_errors(compressed, dataset, every).mean())}
    decoded = compressed.decode(jnp.asarray(compressed.codes[best]))
    entry["best_policy_error_on_its_episode"] = float(np.mean(
        (np.asarray(space.act(decoded, jnp.asarray(visited))) - actions) ** 2))
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
