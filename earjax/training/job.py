"""The training job around the trainer: ``train_and_evaluate(config, workdir)``.

Validation, resume from the latest checkpoint, periodic evaluation into
``metrics.jsonl``, TensorBoard and W&B (``loggers``), the best policy kept apart, a progress bar; and what
keeps a long job safe: SIGTERM/SIGINT stop it after the current epoch with a checkpoint,
a non-finite value stops it or rolls it back (``on_nonfinite``), and a watchdog ends an
epoch that makes no progress.

Each epoch runs (dispatch and the wait for its health flags) in a worker thread while the
main thread waits in short slices, so signals are handled even while an epoch is stuck
inside XLA (a blocked main thread would never run Python's signal handlers):
- an epoch taking longer than ``watchdog_factor`` times the median of the earlier epochs
  of its kind (random-action or training; at least ``watchdog_min_s``), or the first of
  its kind longer than ``watchdog_first_epoch_s`` (it compiles), prints one line and
  exits with code 3;
- after SIGTERM/SIGINT the epoch has ``stop_grace_s`` to end, else the process exits at
  once (code 128 + signal); a second signal exits at once.
Checkpoints are written only between epochs, so a forced exit leaves the last one intact.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from earjax import agents
from earjax import checkpoint
from earjax import files
from earjax import parallel
from earjax.agents.base import abstract_best_items
from earjax import config as config_lib
from earjax.config import ConfigError
from earjax.run import load_config
from earjax.training import supervisor
from earjax.training.loggers import METRICS_FILE, Loggers
from earjax.training.lock import WorkdirLock
from earjax.training.trainer import Trainer, TrainingState, trainer_for

WATCHDOG_EXIT_CODE = 3


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


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates ``workdir``, refusing an unwritable one or a run of another shape."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test.{jax.process_index()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable: {e.strerror}") from e
  if not os.path.exists(os.path.join(workdir, "config.json")):
    return
  saved = load_config(workdir)

  def shape_values(c):
    flat = config_lib.flatten(c)
    flat["env.backend"] = config_lib.backend(c)
    return {k: json.dumps(flat.get(k)) for k in config_lib.SHAPE_KEYS}

  have, want = shape_values(saved), shape_values(config)
  # Keys of a section the agent does not read are not the run's (``config_lib.for_agent``).
  unread = set(agents.CONFIG_SECTIONS) - set(agents.sections(config.agent))
  differ = [k for k in config_lib.SHAPE_KEYS
            if have[k] != want[k] and k.split(".")[0] not in unread]
  if "env_name" in differ:   # another family: its physics and task set differ with it
    differ = [k for k in differ if k not in ("env.backend", "env.impl", "task_ids")]
  elif "agent" in differ:    # another method: its sections' keys differ with it
    differ = ["agent"]
  if differ:
    raise ConfigError("\n".join(
        f"workdir {workdir!r} holds a run with {k}={have[k]}, this config has {want[k]}; "
        f"use another workdir" for k in differ))


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """The run's ``config.json``: the config with the agent's sections alone."""
  files.write_text(os.path.join(workdir, "config.json"),
                   config_lib.for_agent(config).to_json(indent=1))


_GROUPS = ("start/", "env/", "update/", "end/")


def seed_health(health: dict) -> tuple[dict[str, int], int | None]:
  """An epoch's health of one seed: ``health`` itself for one seed; for a batch (values
  per seed), the first seed with a non-finite value, or seed 0, and its index (None
  when all are finite or for one seed)."""
  arrays = {k: np.asarray(v) for k, v in health.items()}
  if all(a.ndim == 0 for a in arrays.values()):
    return {k: int(a) for k, a in arrays.items()}, None
  num_seeds = len(next(iter(arrays.values())))
  bad = [i for i in range(num_seeds) if any(a[i] >= 0 for a in arrays.values())]
  seed = bad[0] if bad else 0
  return {k: int(a[seed]) for k, a in arrays.items()}, (seed if bad else None)


def seed_row(train_metrics: dict, evaluations: list[dict]) -> dict:
  """A metrics row's figures: for one seed, its train metrics and evaluation; for a
  batch, each figure's mean over the seeds and, under ``seeds``, every seed's value
  (seed order: ``seed``, ``seed + 1``, ...)."""
  per_seed = {k: np.ravel(np.asarray(v, np.float64)).tolist()
              for k, v in train_metrics.items()}
  for key in evaluations[0]:
    per_seed[key] = [e[key] for e in evaluations]
  if len(evaluations) == 1:
    return {k: float(v[0]) for k, v in per_seed.items()}
  row = {k: float(np.mean(v)) for k, v in per_seed.items()}
  row["seeds"] = per_seed
  return row


def describe_nonfinite(health: dict[str, int], epoch: int) -> str | None:
  """One line naming what went non-finite in ``epoch`` and where, earliest first; None
  when everything was finite.  ``health`` is the epoch's ``metrics["health"]`` on host:
  ``start/<kind>/<network>`` and ``end/...`` (parameters), ``env/<field>`` (env steps)
  and ``update/<i>/<quantity>``, the i-th quantity the agent's update computes; earliest
  first means: the start, the env steps, then by gradient step and i, the end."""
  def where(name, step):
    group, rest = name.split("/", 1)
    if group == "update":
      rest = rest.split("/", 1)[1]
    if group in ("start", "end"):
      kind, network = rest.split("/")
      return f"{kind} parameters of {network} at the epoch's {group}"
    if group == "env":
      return f"env {rest} at env step {step}"
    if "_grad/" in rest:
      return f"gradient of {rest.split('/')[1]} at gradient step {step}"
    return f"{rest} at gradient step {step}"

  def order(item):
    name, step = item
    group = next(i for i, prefix in enumerate(_GROUPS) if name.startswith(prefix))
    if _GROUPS[group] == "update/":
      return (group, step, int(name.split("/")[1]))
    return (group, 0, 0)

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


def _forced_exit(line: str, code: int) -> None:
  """Ends the process at once (an epoch stuck inside XLA cannot be interrupted); the line
  goes on a line of its own below the progress bar."""
  tqdm.tqdm.write(line, file=sys.stderr)
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


class _StopOnSignal:
  """SIGTERM / SIGINT ask the loop to stop after the current epoch; a second signal
  ends the process at once.  Only the main thread can install handlers; elsewhere a
  no-op."""

  def __init__(self, describe_checkpoint):
    self.signal = None
    self.signum = 0
    self.since = None
    self._describe_checkpoint = describe_checkpoint
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    # The same signal again within a second is one stop delivered twice (a scheduler
    # that signals every process of the job, and the supervisor forwarding it).
    if (self.signal is not None and signum == self.signum
        and time.monotonic() - self.since < 1.0):
      return
    if self.signal is not None:
      _forced_exit(f"second {signal.Signals(signum).name}: exiting at once; "
                   f"{self._describe_checkpoint()}", 128 + signum)
    self.signal, self.signum = signal.Signals(signum).name, signum
    self.since = time.monotonic()

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def agreed(self) -> str | None:
    """The signal that stops the job after this epoch, the same on every process: a
    multi-host job stops when any of its processes got one (one small all-gather per
    epoch), so all checkpoint the same epoch."""
    if jax.process_count() == 1:
      return self.signal
    signums = multihost_utils.process_allgather(np.int32(self.signum))
    got = [(i, int(n)) for i, n in enumerate(np.ravel(signums)) if n]
    if not got:
      return None
    i, signum = got[0]
    name = signal.Signals(signum).name
    return name if i == jax.process_index() else f"{name} on process {i}"


class _Watchdog:
  """The time an epoch may take: a multiple of the median of the earlier epochs of its
  kind (random-action or training) in this launch, or the first-epoch allowance."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.seconds = {True: [], False: []}

  def allowance(self, training: bool) -> float:
    earlier = self.seconds[training]
    if not earlier:
      return float(self.config.watchdog_first_epoch_s)
    return max(float(self.config.watchdog_min_s),
               self.config.watchdog_factor * float(np.median(earlier)))

  def record(self, training: bool, seconds: float) -> None:
    self.seconds[training].append(seconds)


def poison_learner(state: TrainingState) -> TrainingState:
  """The ``poison_epoch`` test hook: the first leaf of the learner state (for SAC agents
  a weight of the actor) becomes NaN."""
  leaves, treedef = jax.tree.flatten(state.learner)
  leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
  return state.replace(learner=jax.tree.unflatten(treedef, leaves))


def _start(trainer: Trainer, ckpt: checkpoint.Checkpointer, metrics_path: str,
           key: jax.Array, rollback: int = 0, resume_epoch: int = 0):
  """(state, epoch, metrics rows) to continue from: the latest checkpoint (at launch,
  ``resume_epoch`` if given) or a fresh init.  Lines and best checkpoints of later epochs
  are dropped (the run redoes them; from ``resume_epoch``, the later checkpoints are
  moved to ``checkpoints/superseded/``, nothing deleted); a rollback draws a new RNG
  key."""
  epoch = resume_epoch if resume_epoch and not rollback else ckpt.latest_epoch()
  if epoch is None:
    state = trainer.init(key if not rollback else trainer.fold_in(key, rollback),
                         trainer.task_params)
    epoch = 0
  else:
    state = trainer.restored(ckpt.restore(trainer.abstract_state(key), epoch,
                                          earlier_flag="--config.resume_epoch"))
    if rollback:
      state = state.replace(rng=trainer.fold_in(state.rng, rollback))
  rows = _read_metrics(metrics_path, epoch)
  if jax.process_index() == 0:
    files.write_jsonl(metrics_path, rows)
  if resume_epoch and not rollback:   # later checkpoints kept aside, not deleted
    for moved in ckpt.set_aside_after(epoch):
      print(f"resuming from epoch {epoch}: moved {moved}", file=sys.stderr)
  ckpt.drop_best_after(epoch)
  return state, epoch, rows


def _run_epoch(trainer: Trainer, config: ml_collections.ConfigDict, state: TrainingState,
               epoch: int, stop: _StopOnSignal, watchdog: _Watchdog, describe_checkpoint):
  """(state, metrics, health on host) of one epoch, waited for in slices (see module
  docstring); never returns if the watchdog or a signal's grace period ends the
  process.  ``config`` is the job's (the trainer, shared by configs that differ in
  host-only keys, may hold another's)."""
  training = epoch >= config.random_epochs

  def work():
    if epoch + 1 == config.stall_epoch:   # test hook: the epoch's results never arrive
      threading.Event().wait()
    new_state, metrics = trainer.epoch(state)
    return new_state, metrics, jax.device_get(metrics.pop("health"))

  pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="earjax-epoch")
  future = pool.submit(work)
  start, allowed = time.monotonic(), watchdog.allowance(training)
  try:
    while True:
      try:
        result = future.result(timeout=0.2)
        break
      except concurrent.futures.TimeoutError:
        pass
      now = time.monotonic()
      if stop.signal and now - stop.since > config.stop_grace_s:
        _forced_exit(f"{stop.signal}: epoch {epoch + 1} did not end within stop_grace_s="
                     f"{config.stop_grace_s:g} s; exiting at once; {describe_checkpoint()}",
                     128 + stop.signum)
      if now - start > allowed:
        _forced_exit(
            f"watchdog: epoch {epoch + 1} made no progress in {now - start:.0f} s (allowed "
            f"{allowed:.0f} s; {trainer.num_envs} envs = {trainer.num_tasks} tasks x "
            f"{config.envs_per_task}, batch {config.batch_size_per_task} per task); likely "
            f"a deadlock of XLA's CPU runtime at this batch size (WORKSPACE.md, 'Large "
            f"batches'); {describe_checkpoint()}", WATCHDOG_EXIT_CODE)
  finally:
    pool.shutdown(wait=False)
  watchdog.record(training, time.monotonic() - start)
  return result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains (or resumes, or extends) the run in ``workdir``; returns the last evaluation.
  A multi-host config (``num_processes`` > 1) starts JAX's distributed runtime first
  (``parallel.initialize``), so every process of the job calls this alike.

  SIGTERM/SIGINT: the current epoch ends, a checkpoint is written, the function returns.
  A non-finite loss, gradient or parameter raises ``NonFiniteError`` (``on_nonfinite:
  stop``) or restarts from the last checkpoint with a new RNG key (``rollback``, at most
  ``max_rollbacks`` times); no checkpoint of a non-finite state is ever written.
  """
  problems = config_lib.validate(config)
  if problems:
    raise ConfigError("\n".join(problems))
  parallel.initialize(config)   # a multi-host job: before anything touches a device
  trainer = trainer_for(config)
  prepare_workdir(config, workdir)
  with WorkdirLock(workdir, jax.process_index()):
    try:
      return _train(trainer, config, workdir)
    except (ConfigError, checkpoint.CheckpointError, NonFiniteError):
      raise
    except Exception as e:  # pylint: disable=broad-except
      if jax.process_count() > 1:   # a peer died mid-collective? the runtime says so
        supervisor.wait_for_the_runtime(e, config.peer_timeout_s)
      raise


def _train(trainer: Trainer, config: ml_collections.ConfigDict,
           workdir: str) -> dict[str, Any]:
  """``train_and_evaluate``'s loop, with the workdir held."""
  best_items = tuple(abstract_best_items(trainer.agent))
  ckpt = checkpoint.Checkpointer(workdir, config.checkpoints_to_keep, best_items)
  key = trainer.seed_keys(config.seed)   # one per seed of a batch
  metrics_path = os.path.join(workdir, METRICS_FILE)
  try:
    state, epoch, rows = _start(trainer, ckpt, metrics_path, key,
                                resume_epoch=config.resume_epoch)
  except BaseException:
    ckpt.close()
    raise
  primary = jax.process_index() == 0   # writes the files; every process computes
  if primary:
    _write_config(config, workdir)   # only once the workdir's checkpoint fits this config

  def last_checkpoint():
    good = ckpt.latest_epoch()
    return ("no checkpoint yet" if good is None
            else f"last checkpoint {ckpt.state_path(good)} (intact)")

  # A launch with resume_epoch rewinds: resuming is the same command without it.
  resume = ("run the same command without --config.resume_epoch to resume"
            if config.resume_epoch else "run the same command to resume")

  def describe_checkpoint():
    line = last_checkpoint()
    return line if line.startswith("no ") else f"{line}; {resume}"

  supervisor.report(epoch=epoch, checkpoint=last_checkpoint(),
                    resume=f"relaunch every process with the same command"
                           f"{' without --config.resume_epoch' if config.resume_epoch else ''}"
                           f" to resume")

  loggers, failed, preempted = None, True, False
  steps_per_epoch = trainer.env_steps_per_epoch
  # The bar counts every seed's env steps (the batch's throughput); rows count one seed's.
  bar_steps = steps_per_epoch * trainer.num_seeds
  bar = tqdm.tqdm(total=config.num_epochs * bar_steps, unit="env-step",
                  unit_scale=True, dynamic_ncols=True, desc=config.env_name,
                  disable=not primary)
  rollbacks, poisoned = 0, False
  watchdog = _Watchdog(config)
  try:
    restarted = True
    with _StopOnSignal(describe_checkpoint) as stop:
      loggers = Loggers(config, workdir) if primary else None
      while epoch < config.num_epochs:
        if restarted:  # after the launch or a rollback
          bar.n, restarted = epoch * bar_steps, False
          # The best so far is that of a best checkpoint still kept (a resume from an
          # earlier epoch may have moved the only one aside).
          best = (-np.inf if ckpt.best_epoch() is None else
                  max((r["eval/return_mean"] for r in rows), default=-np.inf))
          wall_offset, start = (rows[-1]["wall_time"] if rows else 0.0), time.time()
        if epoch + 1 == config.poison_epoch and not poisoned:
          state, poisoned = poison_learner(state), True
        state, train_metrics, health = _run_epoch(trainer, config, state, epoch, stop,
                                                  watchdog, describe_checkpoint)
        epoch += 1
        supervisor.report(epoch=epoch)
        health, bad_seed = seed_health(health)
        problem = describe_nonfinite(health, epoch)
        if problem and bad_seed is not None:
          problem = f"seed {config.seed + bad_seed} (index {bad_seed} of the batch): {problem}"
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
        bar.update(bar_steps)
        final = epoch == config.num_epochs
        policy_params = trainer.agent.policy_params(state.learner)
        if epoch % config.eval_every == 0 or final:
          counters = jax.device_get((state.env_steps, state.grad_steps))
          row = {"epoch": epoch, "env_steps": int(np.ravel(counters[0])[0]),
                 "grad_steps": int(np.ravel(counters[1])[0]),
                 "wall_time": wall_offset + time.time() - start}
          row.update(seed_row(jax.device_get(train_metrics),
                              trainer.eval_metrics(policy_params, epoch, config.seed)))
          rows.append(row)
          if row["eval/return_mean"] > best:
            best = row["eval/return_mean"]
            ckpt.save_best(epoch, trainer.agent.best_items(state.learner))
          bar.set_postfix(ret=f"{row['eval/return_mean']:.1f}", refresh=False)
        stopping = stop.agreed()
        if epoch % config.checkpoint_every == 0 or final or stopping:
          ckpt.save(epoch, state, policy_params)
        if primary and rows and rows[-1]["epoch"] == epoch:   # after the epoch's checkpoints
          loggers.write(rows[-1])
        supervisor.report(epoch=epoch, checkpoint=last_checkpoint())
        if stopping and not final:
          preempted = True
          bar.close()
          print(f"stopped by {stopping} after epoch {epoch}; checkpoint "
                f"{ckpt.state_path(epoch)}; {resume}", file=sys.stderr)
          break
    failed = False
  finally:
    bar.close()
    try:
      if loggers is not None:
        loggers.close(failed=failed, preempted=preempted)
    finally:
      ckpt.close()
  return rows[-1] if rows else {}
