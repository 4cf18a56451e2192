"""The paper's adaptation baseline: an OHE-SAC policy fine-tuned with SAC on a new task.

The new task gets no new input: it reuses the one-hot slot of a source training task
(the one whose policy scores best on the new task, found by rollouts counted in the
budget), and actor and critics, with the run's temperature, continue SAC from the
source run's best checkpoint on the new task's rewards.  ``Finetuner`` is the generic
``Trainer`` over one env group that acts with task index 0 of the source's
``ohe_sac`` agent (K one-hot inputs); moving the chosen source's weights into slot 0
(``move_slot_to_front``) lets every new task share one compiled epoch, since the task
parameter travels in the env state.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from earjax import envs
from earjax import evaluation
from earjax.agents.sac import learner as sac_learner
from earjax.run import Run
from earjax.training.trainer import Trainer, TrainingState


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
  """The baseline's settings, the one home of their defaults (``experiments.finetune``'s
  flags, ``experiments.compare_adaptation``'s ``finetune_*`` ones and
  ``comparison.run_method`` read them): envs while fine-tuning, epochs between
  evaluations, episodes per evaluation and per source slot when choosing the slot.  The
  budget per task is CEM's (``adaptation.cem.DEFAULT_BUDGET``), for an equal-budget
  comparison."""
  envs_per_task: int = 16
  eval_every: int = 20
  eval_episodes: int = 5
  source_episodes: int = 2


FINETUNE_DEFAULTS = FinetuneSettings()


def move_slot_to_front(params, slot: int, num_tasks: int):
  """Swaps one-hot input rows 0 and ``slot`` of the first layer of every MLP in
  ``params`` (the one-hot is the last ``num_tasks`` inputs), so that one-hot 0 then acts
  as one-hot ``slot`` did."""
  order = np.arange(num_tasks)
  order[[0, slot]] = order[[slot, 0]]

  def swap(path, x):
    if jax.tree_util.keystr(path).endswith("['Dense_0']['kernel']"):
      rows = x.shape[-2] - num_tasks + order
      return jnp.concatenate([x[..., :x.shape[-2] - num_tasks, :],
                              jnp.take(x, jnp.asarray(rows), axis=-2)], axis=-2)
    return x

  return jax.tree_util.tree_map_with_path(swap, params)


@dataclasses.dataclass(frozen=True)
class Finetuner:
  """The source run's OHE-SAC agent and a ``Trainer`` of one env group on task slot 0."""
  source_config: ml_collections.ConfigDict
  trainer: Trainer
  source_names: tuple[str, ...]

  @property
  def num_source_tasks(self) -> int:
    return len(self.source_names)

  def start(self, actor_params, critic_params, log_alpha, task_param,
            key: jax.Array) -> TrainingState:
    """A fine-tuning run of ``task_param`` [p] from given (slot-0) parameters: fresh Adam
    states, empty replay."""
    learner = sac_learner.from_params(actor_params, critic_params, log_alpha,
                                      optax.adam(self.trainer.config.learning_rate))
    return self.trainer.start(learner, key, jnp.asarray(task_param)[None])

  def evaluate(self, actor_params, task_param, key):
    """Deterministic return, velocity and length of slot 0 on ``task_param``."""
    return self.trainer.evaluate(actor_params, key, jnp.asarray(task_param)[None])

  @functools.partial(jax.jit, static_argnums=(0, 4))
  def score_sources(self, actor_params, task_param, key, episodes: int) -> jax.Array:
    """Each source one-hot's deterministic return on the new task [num_source_tasks]."""
    tasks = jnp.broadcast_to(task_param, (self.num_source_tasks,) + task_param.shape)
    return evaluation.evaluate(self.trainer.env, self.trainer.act_on_task(actor_params),
                               jnp.arange(self.num_source_tasks), tasks, key, episodes,
                               self.trainer.success_rule)["return"]

  def adapt(self, actor_params, critic_params, log_alpha, task_param, key: jax.Array,
            env_steps: int, eval_every: int, source_episodes: int) -> dict:
    """Fine-tunes on ``task_param`` [p] for as many whole epochs as ``env_steps`` env
    steps allow, the source scoring (``source_episodes`` per slot) included (never more;
    a budget without one epoch is a ValueError): the chosen ``source_slot``, the sources'
    returns and ``evaluations``, one row per ``eval_every`` epochs (and the first and
    the last): epoch, env steps used, deterministic return and velocity (and
    |velocity - target| where the task has one)."""
    env = self.trainer.env
    used = self.num_source_tasks * source_episodes * env.episode_length
    epochs = (env_steps - used) // self.trainer.env_steps_per_epoch
    if epochs < 1:
      raise ValueError(
          f"a budget of {env_steps} env steps leaves no fine-tuning epoch: scoring the "
          f"{self.num_source_tasks} sources takes {used} and an epoch "
          f"{self.trainer.env_steps_per_epoch}")
    scores = np.asarray(self.score_sources(actor_params, task_param, key, source_episodes))
    slot = int(np.argmax(scores))
    n = self.num_source_tasks
    state = self.start(move_slot_to_front(actor_params, slot, n),
                       move_slot_to_front(critic_params, slot, n), log_alpha, task_param,
                       key)
    target = env.velocity_target(task_param)
    rows = []

    def record(epoch, state):
      out = jax.device_get(self.evaluate(state.learner.actor_params, task_param,
                                         jax.random.fold_in(key, epoch)))
      row = {"epoch": epoch, "env_steps": used + int(state.env_steps),
             "return": float(out["return"][0]), "velocity": float(out["velocity"][0])}
      if target is not None:
        row["velocity_error"] = abs(row["velocity"] - target)
      rows.append(row)

    record(0, state)
    for epoch in range(1, epochs + 1):
      state, _ = self.trainer.epoch(state)
      if epoch % eval_every == 0 or epoch == epochs:
        record(epoch, state)
    return {"task_param": np.asarray(task_param).tolist(), "source_slot": slot,
            "source_task": self.source_names[slot], "source_returns": scores.tolist(),
            "evaluations": rows}

  def __hash__(self):   # static argument of score_sources: one compile per Finetuner
    return id(self)


def make_finetuner(source: Run, envs_per_task: int, eval_episodes: int) -> Finetuner:
  """The ``source`` run's agent with ``envs_per_task`` envs on one new task, no
  random-action epochs and no replay minimum, ``eval_episodes`` per evaluation, on one
  device (one task's batches are small; the source run's layout is not its concern)."""
  if source.config.agent != "ohe_sac":
    raise ValueError(f"fine-tuning is the OHE-SAC baseline; got a {source.config.agent!r} run")
  if source.config.sac.per_task_alpha:
    raise ValueError("fine-tuning continues one shared temperature; the run has per-task ones")
  envs.require_per_env(source.env, "fine-tuning")
  run = source.with_config(envs_per_task=envs_per_task, random_epochs=0, min_replay_size=0,
                           eval_episodes=eval_episodes, num_devices=1, num_seeds=1)
  return Finetuner(source_config=source.config, trainer=Trainer(run, task_index=[0]),
                   source_names=source.task_names)


def load_source(source: Run, seed_index: int = 0):
  """(actor, critic, log_alpha, epoch) of the OHE run's best checkpoint (of a seed batch,
  seed ``seed_index``'s)."""
  best, epoch = source.restore_best_items(seed_index)
  return best["policy"], best["critic"], best["temperature"], epoch
