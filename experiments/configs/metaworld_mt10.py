"""Meta-World MT10 on the host (envpool), MTSAC by default (``ohe_sac`` with a temperature
per task); ``--config.agent=tsac`` runs TSAC on the same settings.

``paper``: the MT10 MTSAC setting TSAC is compared against (Yu et al. 2019's MT10; the
numbers as rainx0r/metaworld-algorithms' ``mtsac_mt10.py`` runs them): actor and critics
400x3, one env per task, 500-step episodes, 2M env steps per task (20M in all), one
gradient step per step of the ten envs with 128 transitions of every task (batch 1280),
replay 1M (100k per task), Adam 3e-4, 4,000 random warm-start steps, evaluation every
200k env steps on 50 episodes per task, success = any step's success flag.
``cpu``: what a 2-core CPU runs in well under an hour (experiments/RESULTS.md, "TSAC vs
MTSAC on Meta-World MT10"): 200 epochs (100k env steps per task), 256x2 networks, 64
transitions per task, 250 gradient steps per epoch (one per 20 env steps, half the
paper's ratio), 5 evaluation episodes per task every 10 epochs.
"""
import ml_collections

from earjax.config import default_config

PRESETS = ("paper", "cpu")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
  c = default_config("metaworld_mt10")
  c.agent = "ohe_sac"
  c.sac.per_task_alpha = True           # MTSAC: a temperature per task
  c.sac.update_order = "critic_first"   # as metaworld-algorithms' MTSAC updates
  c.network.actor_hidden = (400,) * 3
  c.network.critic_hidden = (400,) * 3
  c.envs_per_task = 1
  c.env_steps_per_epoch = 500           # one episode of every env
  c.grad_steps_per_epoch = 500          # one per step of the ten envs
  c.batch_size_per_task = 128
  c.replay_capacity = 100_000
  c.learning_rate = 3e-4
  c.random_epochs = 1                   # 500 random steps of each env (>= 4,000 in all)
  c.min_replay_size = 4_000
  c.num_epochs = 4_000                  # 2M steps per task
  c.eval_every = 40                     # 200k env steps
  c.eval_episodes = 50
  c.success_rule = "any"                # Meta-World: an episode succeeds if one step does
  c.checkpoint_every = 10
  if preset == "cpu":
    c.network.actor_hidden = (256, 256)
    c.network.critic_hidden = (256, 256)
    c.batch_size_per_task = 64
    c.grad_steps_per_epoch = 250     # half the paper's ratio
    c.num_epochs = 200
    c.eval_every = 10
    c.eval_episodes = 5
  return c
