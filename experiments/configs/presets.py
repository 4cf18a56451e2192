"""Presets shared by the family configs.

- ``paper``: the original release (piao-0429/EAR ``config/train/*.json`` and ``EARSAC``):
  its widths, batch, replay, the SAC update order ``alpha_first``, no mean/log-std
  regularisers, the clean LTE in the critic target, 20 random-action "pretrain" epochs
  on top of the family's training epochs and no update before 10,000 transitions.
- ``cpu``: small enough to learn on a 2-core CPU in under 30 minutes (4 tasks, 256-wide
  networks, 16 envs), with earjax's SAC choices: ``critic_first``, regularisers 1e-3
  (the release's code defaults), LTE noise in the target action, 5 random epochs.
- ``cpu_release``: the ``cpu`` sizes with the ``paper`` preset's SAC behaviour (20
  random epochs on top of 1000, ``min_replay_size`` 10,000), to compare the two.
- ``cpu_all``: the ``cpu`` preset on every training task of the family (HalfCheetah-Vel's
  ten targets 1..10 m/s, so that its held-out 1.5, 4.5 and 7.5 lie inside the trained
  range; issue 15).
- ``cpu_meta``: the ``cpu`` preset on the meta-RL references' task protocol (issue 36):
  100 training and 30 held-out targets drawn from the family's ``meta_tasks`` interval
  (``env.task_interval``; HalfCheetah-Vel: PEARL's U(0, 3) with its control cost 0.05),
  one env per task and 16 transitions per task in a batch (1,600 in all; PEARL: 16 tasks
  x 256), MAML's meta-batch of 40 tasks.  Every method of the adaptation comparison
  trains on it.
"""
import ml_collections

from earjax.config import default_config

PRESETS = ("paper", "cpu", "cpu_release", "cpu_all", "cpu_meta")
# The presets of a family without one velocity target (no meta-RL task interval).
PRESETS_WITHOUT_META = PRESETS[:-1]
CPU_EPOCHS = 1000


def family_config(env_name: str, preset: str, *, epochs: int, cpu_task_ids: tuple[int, ...],
                  meta_tasks: dict | None = None,
                  **paper_overrides) -> ml_collections.ConfigDict:
  """``env_name``'s config for ``preset``: the release's settings with ``paper_overrides``
  (the family's batch and replay) and ``epochs`` training epochs; the cpu presets train
  ``cpu_task_ids``, ``cpu_meta`` the ``env`` settings ``meta_tasks`` (its interval)."""
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
  config = default_config(env_name)
  for key, value in paper_overrides.items():
    config[key] = value
  config.num_epochs = config.random_epochs + epochs
  if preset.startswith("cpu"):
    config.task_ids = cpu_task_ids
    config.network.actor_hidden = (256, 256)
    config.network.critic_hidden = (256, 256)
    config.ear_sac.state_encoder_hidden = (256,)
    config.ear_sac.task_encoder_hidden = (64,)
    config.envs_per_task = 4
    config.env_steps_per_epoch = 50
    config.grad_steps_per_epoch = 100
    config.batch_size_per_task = 64
    config.replay_capacity = 50_000
    config.learning_rate = 1e-3
    config.eval_every = 10
    config.checkpoint_every = 20
    config.num_epochs = config.random_epochs + CPU_EPOCHS
  if preset in ("cpu_all", "cpu_meta"):
    config.task_ids = ()
  if preset == "cpu_meta":
    if meta_tasks is None:
      raise ValueError(f"{env_name} has no meta-RL task interval: the cpu_meta preset is "
                       "for families with one velocity target")
    for key, value in meta_tasks.items():
      config.env[key] = value
    config.envs_per_task = 1
    config.batch_size_per_task = 16
    config.maml.meta_batch = 40       # pytorch-maml-rl's meta-batch
  if preset in ("cpu", "cpu_all", "cpu_meta"):
    config.random_epochs = 5
    config.min_replay_size = 0
    config.num_epochs = CPU_EPOCHS
    config.sac.update_order = "critic_first"
    config.sac.policy_mean_reg = 1e-3
    config.sac.policy_std_reg = 1e-3
    config.sac.target_lte_noise = True
  return config
