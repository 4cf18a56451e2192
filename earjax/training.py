"""Training: the jitted epoch of multi-task SAC (Algorithm 1) and the job around it.

``Trainer`` holds what is static (env, networks, losses, optimizer) and two compiled
functions: ``epoch(state) -> (state, metrics)``, one ``jax.jit`` with the state donated,
in which every task's envs step together for ``env_steps_per_epoch`` steps, the
transitions enter the per-task replay, and ``grad_steps_per_epoch`` SAC updates run in a
``lax.scan``; and ``evaluate(actor_params, key)``, deterministic episodes of every task.
No host round-trip happens inside an epoch.

``train_and_evaluate(config, workdir)`` runs a whole job: validation, resume from the
latest checkpoint, periodic evaluation into ``metrics.jsonl`` and TensorBoard, the best
policy kept apart, a progress bar.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from flax import struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tensorboardX import SummaryWriter
import tqdm

from earjax import acting
from earjax import checkpoint
from earjax import config as config_lib
from earjax import envs
from earjax import learner
from earjax import replay
from earjax.learner import finite_by_network
from earjax.losses import make_losses
from earjax.networks import Networks, make_networks


class ConfigError(ValueError):
  """A config or workdir this job cannot run with; the message has one line per problem."""


@struct.dataclass
class TrainingState:
  """Everything that evolves during training; a checkpoint saves all of it."""
  learner: learner.LearnerState
  replay: replay.ReplayState
  env_state: envs.State
  rng: jax.Array
  epoch: jax.Array        # epochs completed
  env_steps: jax.Array    # env steps taken, all envs together
  grad_steps: jax.Array


def make_env(config: ml_collections.ConfigDict) -> envs.TaskFamilyEnv:
  try:
    return envs.make(config.env_name, solver_iterations=config.solver_iterations,
                     ls_iterations=config.ls_iterations, backend=config.backend)
  except ValueError as e:
    raise ConfigError(str(e)) from e


def task_ids(config: ml_collections.ConfigDict, env: envs.TaskFamilyEnv) -> list[int]:
  """The run's training tasks, as indices into ``env.train_tasks``."""
  return list(config.task_ids) or list(range(env.num_tasks))


def networks_from_config(config: ml_collections.ConfigDict, env: envs.TaskFamilyEnv,
                         num_tasks: int) -> Networks:
  n = config.network
  return make_networks(
      n.kind, env.observation_size, env.action_size, num_tasks,
      actor_hidden=tuple(n.actor_hidden), critic_hidden=tuple(n.critic_hidden),
      state_encoder_hidden=tuple(n.state_encoder_hidden),
      task_encoder_hidden=tuple(n.task_encoder_hidden), lse_dim=n.lse_dim,
      lte_dim=n.lte_dim, lte_noise_std=n.lte_noise_std, normalize_lte=n.normalize_lte,
      release_noise_bug=n.release_noise_bug)


class Trainer:
  """The static parts of a run and its two compiled functions."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.env = make_env(config)
    ids = task_ids(config, self.env)
    problems = config_lib.check_task_ids(ids, self.env.num_tasks, config.env_name)
    if problems:
      raise ConfigError("\n".join(problems))
    self.task_params = jnp.asarray(self.env.train_tasks[ids])
    self.task_names = [self.env.task_names[i] for i in ids]
    self.velocity_targets = [self.env.velocity_target(self.env.train_tasks[i]) for i in ids]
    self.num_tasks = len(ids)
    self.num_envs = self.num_tasks * config.envs_per_task
    self.batch_env = envs.AutoResetBatch(self.env)
    # Envs are task-major: env i runs task i // envs_per_task.
    self.env_task_params = jnp.repeat(self.task_params, config.envs_per_task, axis=0)
    self.env_task_onehot = jnp.repeat(jnp.eye(self.num_tasks), config.envs_per_task, axis=0)
    self.networks = networks_from_config(config, self.env, self.num_tasks)
    losses = make_losses(self.networks.actor_apply, self.networks.critic_apply,
                         self.env.action_size, self.num_tasks, gamma=config.gamma,
                         reward_scale=config.reward_scale)
    self.optimizer = optax.adam(config.learning_rate)
    self.sgd_step = learner.make_sgd_step(losses, self.optimizer, config.tau,
                                          config.max_grad_norm)
    self.epoch_traces = 0
    self.init = jax.jit(self._init)
    self.epoch = jax.jit(self._epoch, donate_argnums=0)
    self.evaluate = jax.jit(self._evaluate)

  def _init(self, key: jax.Array) -> TrainingState:
    """A fresh run: new parameters, empty replay, reset envs (jitted, so that no two
    leaves share a buffer and the whole state can be donated)."""
    learner_key, env_key, rng = jax.random.split(key, 3)
    c = self.config
    return TrainingState(
        learner=learner.init(self.networks, self.optimizer, learner_key, self.num_tasks,
                             c.per_task_alpha),
        replay=replay.init(self.num_tasks, c.replay_capacity, self.env.observation_size,
                           self.env.action_size),
        env_state=self.batch_env.reset(jax.random.split(env_key, self.num_envs),
                                       self.env_task_params),
        rng=rng, epoch=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32),
        grad_steps=jnp.zeros((), jnp.int32))

  def _epoch(self, state: TrainingState):
    """Algorithm 1, one epoch: collect with every task's envs, then the SAC updates."""
    self.epoch_traces += 1
    c = self.config
    rng, collect_key, update_key = jax.random.split(state.rng, 3)
    random_phase = state.epoch < c.random_epochs
    env_state, transitions = acting.collect(
        self.batch_env, self.networks, state.learner.actor_params, state.env_state,
        self.env_task_onehot, collect_key, c.env_steps_per_epoch, random_phase)
    replay_state = replay.insert(state.replay, transitions)

    def updates(learner_state):
      def one(learner_state, key):
        sample_key, step_key = jax.random.split(key)
        batch = replay.flatten_batch(replay.sample(replay_state, sample_key, c.batch_size))
        return self.sgd_step(learner_state, batch, step_key)
      return jax.lax.scan(one, learner_state,
                          jax.random.split(update_key, c.grad_steps_per_epoch))

    def no_updates(learner_state):  # zero metrics, every finiteness flag true
      shapes = jax.eval_shape(updates, learner_state)[1]
      return learner_state, jax.tree.map(
          lambda s: jnp.full(s.shape, s.dtype == jnp.bool_, s.dtype), shapes)

    learner_state, update_metrics = jax.lax.cond(random_phase, no_updates, updates,
                                                 state.learner)
    finite = update_metrics.pop("finite")
    metrics = {f"train/{k}": v.mean() for k, v in update_metrics.items()}
    metrics["train/reward"] = transitions["reward"].mean()
    metrics["health"] = self._health(state.learner, transitions, finite, learner_state)
    grad_steps = jnp.where(random_phase, 0, c.grad_steps_per_epoch)
    return TrainingState(
        learner=learner_state, replay=replay_state, env_state=env_state, rng=rng,
        epoch=state.epoch + 1,
        env_steps=state.env_steps + self.num_envs * c.env_steps_per_epoch,
        grad_steps=state.grad_steps + grad_steps), metrics

  def _health(self, start, transitions, finite, end) -> dict[str, jax.Array]:
    """``{quantity: first env or gradient step where it is non-finite, or -1}``, read by
    ``describe_nonfinite`` after every epoch."""
    def first_bad(ok):  # ok: bool[steps]
      return jnp.where(ok.all(), -1, jnp.argmin(ok)).astype(jnp.int32)

    def per_env_step(x):  # task-major [tasks, envs_per_task * T, ...] -> [T]
      x = x.reshape((self.num_tasks, self.config.envs_per_task, -1) + x.shape[2:])
      return jnp.isfinite(jnp.moveaxis(x, 2, 0)).reshape(x.shape[2], -1).all(1)

    health = {f"env/{k}": first_bad(per_env_step(transitions[k]))
              for k in ("next_obs", "reward")}
    health.update({k: first_bad(v) for k, v in finite.items()})
    for when, learner_state in (("start", start), ("end", end)):
      for name, ok in {**finite_by_network(learner_state.actor_params, "actor"),
                       **finite_by_network(learner_state.critic_params, "critic")}.items():
        health[f"{when}/{name}"] = first_bad(ok[None])
    return health

  def _evaluate(self, actor_params, key):
    return acting.evaluate(self.env, self.networks, actor_params, self.task_params, key,
                           self.config.eval_episodes)

  def eval_metrics(self, actor_params, epoch: int) -> dict[str, float]:
    """Per-task evaluation: return, episode length, velocity (mean over the steps alive),
    and |velocity - target| where the task has a target."""
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), epoch)
    result = jax.device_get(self.evaluate(actor_params, key))
    out = {}
    errors = []
    for i, name in enumerate(self.task_names):
      out[f"eval/return/{name}"] = float(result["return"][i])
      out[f"eval/velocity/{name}"] = float(result["velocity"][i])
      out[f"eval/length/{name}"] = float(result["length"][i])
      if self.velocity_targets[i] is not None:
        errors.append(abs(float(result["velocity"][i]) - self.velocity_targets[i]))
        out[f"eval/velocity_error/{name}"] = errors[-1]
    out["eval/return_mean"] = float(np.mean(result["return"]))
    if errors:
      out["eval/velocity_error_mean"] = float(np.mean(errors))
    return out


# Keys only the job loop reads: configs that differ in nothing else share a Trainer.
HOST_ONLY_KEYS = ("num_epochs", "eval_every", "checkpoint_every", "checkpoints_to_keep",
                  "on_nonfinite", "max_rollbacks", "poison_epoch")
_TRAINERS: dict[str, Trainer] = {}


def trainer_for(config: ml_collections.ConfigDict) -> Trainer:
  """The process's Trainer for ``config`` (same compiled functions for every config that
  differs only in ``HOST_ONLY_KEYS``), so repeated jobs in one process (an extension, a
  sweep, the tests) trace and compile once."""
  key = json.dumps({k: v for k, v in config_lib.flatten(config).items()
                    if k not in HOST_ONLY_KEYS}, sort_keys=True, default=str)
  if key not in _TRAINERS:
    if len(_TRAINERS) >= 4:
      _TRAINERS.pop(next(iter(_TRAINERS)))
    _TRAINERS[key] = Trainer(config)
  return _TRAINERS[key]


# ---- the job -------------------------------------------------------------------------------

def _read_metrics(path: str, max_epoch: int) -> list[dict]:
  """The metrics lines of epochs <= ``max_epoch``; a torn last line is dropped."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if row.get("epoch", max_epoch + 1) <= max_epoch:
        rows.append(row)
  return rows


def _write_metrics(path: str, rows: list[dict]) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.writelines(json.dumps(row) + "\n" for row in rows)
  os.replace(tmp, path)


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates ``workdir``, refusing an unwritable one or a run of another shape."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable: {e.strerror}") from e
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    try:
      with open(path) as f:
        saved = json.load(f)
    except json.JSONDecodeError as e:
      raise ConfigError(f"{path} is not valid JSON; not touching this workdir") from e
    given = json.loads(config.to_json())
    flat_saved = config_lib.flatten(ml_collections.ConfigDict(saved))
    flat_given = config_lib.flatten(ml_collections.ConfigDict(given))
    differ = [k for k in config_lib.SHAPE_KEYS
              if json.dumps(flat_saved.get(k)) != json.dumps(flat_given.get(k))]
    if differ:
      raise ConfigError("\n".join(
          f"workdir {workdir!r} holds a run with {k}={flat_saved.get(k)!r}, this config "
          f"has {flat_given.get(k)!r}; use another workdir" for k in differ))


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  path = os.path.join(workdir, "config.json")
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json(indent=1))
  os.replace(path + ".tmp", path)


_STAGES = ("start/", "env/", "critic_loss", "critic_grad/", "actor_loss", "actor_grad/",
           "alpha_loss", "alpha_grad", "end/")


def describe_nonfinite(health: dict[str, int], epoch: int) -> str | None:
  """One line naming what went non-finite in ``epoch`` and where, earliest first; None
  when everything was finite.  ``health`` is the epoch's ``metrics["health"]`` on host."""
  def where(name, step):
    if name.startswith(("start/", "end/")):
      when, kind, network = name.split("/")
      return (f"{kind} parameters of {network} at the epoch's "
              f"{'start' if when == 'start' else 'end'}")
    if name.startswith("env/"):
      return f"env {name[4:]} at env step {step}"
    if "_grad/" in name:
      return f"gradient of {name.split('/')[1]} at gradient step {step}"
    return f"{name} at gradient step {step}"

  def order(item):
    name, step = item
    stage = next(i for i, prefix in enumerate(_STAGES) if name.startswith(prefix))
    # Collection (env) precedes every update; the updates are ordered by step, then stage.
    return (stage > 1, stage == len(_STAGES) - 1, step if 1 < stage < 8 else 0, stage)

  bad = sorted(((k, int(v)) for k, v in health.items() if int(v) >= 0), key=order)
  if not bad:
    return None
  line = f"epoch {epoch}: non-finite {where(*bad[0])}"
  if len(bad) > 1:
    line += "; then also " + ", ".join(where(*b) for b in bad[1:])
  return line


class NonFiniteError(RuntimeError):
  """Training produced a non-finite value; the message says where, and which checkpoint
  is the last good one."""


class _StopOnSignal:
  """SIGTERM / SIGINT ask the loop to stop after the current epoch (a second signal
  interrupts at once).  Only the main thread can install handlers; elsewhere a no-op."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signal is not None:
      raise KeyboardInterrupt
    self.signal = signal.Signals(signum).name

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def poison_actor(state: TrainingState) -> TrainingState:
  """The ``poison_epoch`` test hook: the first actor weight becomes NaN."""
  leaves, treedef = jax.tree.flatten(state.learner.actor_params)
  leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
  return state.replace(learner=state.learner.replace(
      actor_params=jax.tree.unflatten(treedef, leaves)))


def _start(trainer: Trainer, ckpt: checkpoint.Checkpointer, metrics_path: str,
           key: jax.Array, rollback: int = 0):
  """(state, epoch, metrics rows) to continue from: the latest checkpoint or a fresh
  init.  Lines and best checkpoints of later epochs are dropped (the run redoes them);
  a rollback draws a new RNG key."""
  epoch = ckpt.latest_epoch()
  if epoch is None:
    state, epoch = trainer.init(key if not rollback else jax.random.fold_in(key, rollback)), 0
  else:
    state = ckpt.restore(checkpoint.abstract(jax.eval_shape(trainer.init, key)), epoch)
    if rollback:
      state = state.replace(rng=jax.random.fold_in(state.rng, rollback))
  rows = _read_metrics(metrics_path, epoch)
  _write_metrics(metrics_path, rows)
  ckpt.drop_best_after(epoch)
  return state, epoch, rows


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains (or resumes, or extends) the run in ``workdir``; returns the last evaluation.

  SIGTERM/SIGINT: the current epoch ends, a checkpoint is written, the function returns.
  A non-finite loss, gradient or parameter raises ``NonFiniteError`` (``on_nonfinite:
  stop``) or restarts from the last checkpoint with a new RNG key (``rollback``, at most
  ``max_rollbacks`` times); no checkpoint of a non-finite state is ever written.
  """
  problems = config_lib.validate(config)
  if problems:
    raise ConfigError("\n".join(problems))
  trainer = trainer_for(config)
  prepare_workdir(config, workdir)
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep)
  key = jax.random.PRNGKey(config.seed)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  try:
    state, epoch, rows = _start(trainer, ckpt, metrics_path, key)
  except BaseException:
    ckpt.close()
    raise
  _write_config(config, workdir)   # only once the workdir's checkpoint fits this config
  writer = SummaryWriter(logdir=workdir)
  steps_per_epoch = trainer.num_envs * config.env_steps_per_epoch
  bar = tqdm.tqdm(total=config.num_epochs * steps_per_epoch, unit="env-step",
                  unit_scale=True, dynamic_ncols=True, desc=config.env_name)
  rollbacks, poisoned = 0, False
  try:
    restarted = True
    with _StopOnSignal() as stop:
      while epoch < config.num_epochs:
        if restarted:  # after the launch or a rollback
          bar.n, restarted = epoch * steps_per_epoch, False
          best = max((r["eval/return_mean"] for r in rows), default=-np.inf)
          wall_offset, start = (rows[-1]["wall_time"] if rows else 0.0), time.time()
        if epoch + 1 == config.poison_epoch and not poisoned:
          state, poisoned = poison_actor(state), True
        state, train_metrics = trainer.epoch(state)
        epoch += 1
        problem = describe_nonfinite(jax.device_get(train_metrics.pop("health")), epoch)
        if problem:
          good = ckpt.latest_epoch()
          problem += (f"; last good checkpoint: {ckpt.state_path(good)} (intact)"
                      if good is not None else "; no checkpoint yet")
          if config.on_nonfinite == "stop" or rollbacks == config.max_rollbacks:
            raise NonFiniteError(problem)
          rollbacks += 1
          print(f"warning: {problem}; rolling back with a new RNG key "
                f"({rollbacks} of {config.max_rollbacks})", file=sys.stderr)
          state, epoch, rows = _start(trainer, ckpt, metrics_path, key, rollbacks)
          restarted = True
          continue
        bar.update(steps_per_epoch)
        final = epoch == config.num_epochs
        if epoch % config.eval_every == 0 or final:
          row = {"epoch": epoch, "env_steps": int(state.env_steps),
                 "grad_steps": int(state.grad_steps),
                 "wall_time": wall_offset + time.time() - start}
          row.update({k: float(v) for k, v in jax.device_get(train_metrics).items()})
          row.update(trainer.eval_metrics(state.learner.actor_params, epoch))
          with open(metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
          rows.append(row)
          for k, v in row.items():
            if k not in ("epoch", "env_steps"):
              writer.add_scalar(k, v, row["env_steps"])
          writer.flush()
          if row["eval/return_mean"] > best:
            best = row["eval/return_mean"]
            ckpt.save_best(epoch, {"actor_params": state.learner.actor_params,
                                   "critic_params": state.learner.critic_params})
          bar.set_postfix(ret=f"{row['eval/return_mean']:.1f}", refresh=False)
        if epoch % config.checkpoint_every == 0 or final or stop.signal:
          ckpt.save(epoch, state)
        if stop.signal and not final:
          bar.close()
          print(f"stopped by {stop.signal} after epoch {epoch}; checkpoint "
                f"{ckpt.state_path(epoch)}; run the same command to resume", file=sys.stderr)
          break
  finally:
    bar.close()
    writer.close()
    ckpt.close()
  return rows[-1] if rows else {}
