"""How far seed k of a batch of seeds drifts from the run of that seed alone (issue 31).

  PYTHONPATH=. python experiments/results/seeds/measure_batched_vs_alone.py

Every agent on the tiny Point-Vel config (tests/tiny.py): seeds 3 and 4 batched
(``num_seeds`` 2) against the runs of seed 3 and of seed 4, 20 epochs; the largest
absolute difference over the learner's leaves (parameters and optimiser states) and both
seeds after epochs 1, 2, 3 and 20, into /tmp/seeddiff.json (committed beside as
batched_vs_alone_point_vel.json).
"""
import sys, json
sys.path.insert(0, "tests")
import jax, numpy as np
from tiny import tiny_config
from earjax.training import trainer_for
def run(config, keys, n):
  t = trainer_for(config); s = t.init(keys, t.task_params); out = []
  for e in range(n):
    s, _ = t.epoch(s); out.append(jax.device_get(s))
  return out
res = {}
for agent in ("ear_sac", "ohe_sac", "tsac", "pearl", "maml", "mhmt_sac"):
  c = tiny_config(agent=agent, seed=3, num_seeds=2)
  b = run(c, trainer_for(c).seed_keys(3), 20)
  diffs = [0.0] * 20
  for k in range(2):
    a = run(tiny_config(agent=agent, seed=3 + k), jax.random.PRNGKey(3 + k), 20)
    d = [max(float(np.max(np.abs(np.asarray(x[k], np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(bb.learner), jax.tree.leaves(aa.learner))) for bb, aa in zip(b, a)]
    diffs = [max(u, v) for u, v in zip(diffs, d)]
  res[agent] = {"epoch_1": diffs[0], "epoch_2": diffs[1], "epoch_3": diffs[2], "epoch_20": diffs[-1]}
  print(agent, res[agent], flush=True)
json.dump({"what": "max |seed k of a 2-seed batch (seeds 3, 4) - the run of seed 3 + k alone| over the learner leaves and both seeds, tiny Point-Vel config (tests/tiny.py), after 1, 2, 3 and 20 epochs; command: PYTHONPATH=. python <this script>, 2026-12-07, CPU", "agents": res}, open("/tmp/seeddiff.json", "w"), indent=1)
