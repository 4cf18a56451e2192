"""Policy-space compression (arXiv 2509.22566; earjax.compression): every setting, once.

  python -m experiments.compress --config=experiments/configs/compression.py:halfcheetah \
      --workdir=runs/compress/halfcheetah

Presets: ``halfcheetah`` and ``hopper`` (the paper's bodies and tasks, ``*_skills``,
sized to build in minutes on a 2-core CPU), ``mountaincar`` (MountainCarContinuous with
the 2 -> 400 -> 300 -> 1 policy of 121,801 parameters and latent sizes 1-3: the paper's
largest ratio), ``tiny`` (Point-Vel, seconds: the tests).
What the paper does not say (``shared/METHOD_NOTES.md``) is earjax's choice, marked so.
"""
import ml_collections

PRESETS = ("halfcheetah", "hopper", "mountaincar", "tiny")


def get_config(preset: str = "halfcheetah"):
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
  c = ml_collections.ConfigDict()
  c.env_name = {"halfcheetah": "halfcheetah_skills", "hopper": "hopper_skills",
                "mountaincar": "mountaincar_continuous", "tiny": "point_vel"}[preset]
  c.seed = 0
  c.policy_hidden = (32, 32)          # earjax's choice (the paper's widths are unknown)
  c.dataset = ml_collections.ConfigDict(dict(
      size=20_000,                    # the paper: 50k-100k (MountainCar)
      generation_size=1000,
      keep_fraction=0.1,              # the paper: the top 10 % of each generation
      k=10,                           # earjax's choice
      num_probe_states=64,            # earjax's choice
      probe_source="visited",         # earjax's choice ("box": the visited states' box)
      probe_policies=64,
      mutation_fraction=0.5,          # earjax's choice (the paper: random inits)
      mutation_std=0.1,
      states_per_policy=8))
  c.latent_dims = (2, 5, 8, 16)       # the paper's 5/8/16 for these bodies, 2 for a picture
  c.autoencoder = ml_collections.ConfigDict(dict(
      latent_dim=8,                   # replaced by each of latent_dims in training
      hidden=(256, 256),              # earjax's choice
      encoder_input="parameters",     # the paper's; "actions": the descriptor
      learning_rate=1e-3,
      batch_policies=64,
      batch_states=256,
      epochs=40,
      input_components=0,             # k > 0: the encoder reads θ's whitened top-k PCA
      own_states=0))                  # k > 0: each policy's loss also on k of its states
  # evosax PGPE with the first author's defaults where evosax has them (search.py).
  # Latent PGPE starts at the codes' mean with the codes' own std per dimension
  # (std_init 1.0 x their std: issue 32; 0.1 x before, which never left the start on
  # MountainCar); PGPE in Θ at 0.1 x the parameters' std (theta_std_init).
  c.pgpe = ml_collections.ConfigDict(dict(
      population=30, generations=30,  # 900 episodes = 180k env steps: EAR CEM's budget
      center_lr=0.15, center_lr_end=0.2, std_init=1.0, theta_std_init=0.1, std_lr=0.1,
      std_max_change=0.2, fitness_shaping="centered_rank"))
  c.search_seeds = 5
  c.eval_episodes = 10                # fresh episodes re-evaluating each best policy
  c.recovery_dataset_top = 32         # dataset policies re-evaluated for its best per task
  c.grid_codes = 101                  # a 1-D latent's codes run on a grid (0: none)
  c.goal_return = ml_collections.config_dict.placeholder(float)   # a task's solved
                                      # threshold, where the env has one (None: not set)
  # The adaptation comparison: held-out HalfCheetah-Vel targets, same env-step budget.
  c.adapt = ml_collections.ConfigDict(dict(
      env_name="halfcheetah_vel", latent_dim=8, ear_workdir="runs/halfcheetah_vel_cpu",
      cem_generations=10))  # ear_workdir: `make run`'s EAR run; CEM 90 x 10 gens = 180k steps
  if preset in ("hopper", "mountaincar"):
    c.adapt.env_name = ""             # no held-out task family to adapt to
  if preset == "mountaincar":
    c.policy_hidden = (400, 300)      # 121,801 parameters
    c.dataset.update(size=2000, generation_size=200)   # 1 GB of θ (the paper: 50k-100k)
    c.latent_dims = (1, 2, 3)         # the paper's MountainCar latent sizes
    # The encoder reads each policy's actions on the probe states: reading θ, its
    # 121,801 x 256 first layer kept every autoencoder at the mean policy or worse
    # (RESULTS.md, "MountainCarContinuous"; earjax's choice, the paper's is θ).
    c.autoencoder.update(batch_states=64, epochs=20, encoder_input="actions")
    c.goal_return = 90.0              # MountainCarContinuous-v0's solved threshold
  if preset == "tiny":
    c.dataset.update(size=64, generation_size=16, keep_fraction=0.25, k=3,
                     num_probe_states=8, probe_policies=4, states_per_policy=4)
    c.latent_dims = (1,)              # 1-D: the grid runs too
    c.autoencoder.update(hidden=(16,), batch_policies=16, batch_states=32, epochs=3)
    c.pgpe.update(population=18, generations=5)   # 90 episodes: CEM's one generation
    c.search_seeds = 2
    c.grid_codes = 5
    c.eval_episodes = 2
    c.recovery_dataset_top = 4
    c.adapt.update(env_name="point_vel", latent_dim=1, ear_workdir="", cem_generations=1)
  return c
