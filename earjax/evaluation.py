"""Evaluation of a policy on a run's tasks, for any family: the jitted episodes and their
per-task figures, the metrics rows and the CLI table.

``evaluate`` runs deterministic episodes of every task in one ``acting.rollout`` (a host
family: ``evaluate_batch`` on its own batch) and returns per task ``return``, ``length``,
``success`` and every reading the family declares (``envs.readings``: HalfCheetah's
velocity, Ant-Dir's velocity and heading, none for Meta-World).  ``metrics`` turns them
into ``eval/*`` keys with each reading's error to the task's target and the means over
tasks; ``table`` prints a row of them.  Nothing here knows a family.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from earjax import acting
from earjax import envs


def evaluate(env: envs.TaskFamilyEnv, act: acting.ActFn, task_inputs: Any,
             task_params: jax.Array, key: jax.Array, episodes: int,
             success: acting.SuccessRule) -> dict[str, jax.Array]:
  """Deterministic episodes of every task, ``episodes`` each, in one ``rollout``: per task
  mean ``return``, ``length``, ``success`` (the fraction of episodes that met the goal,
  ``acting.episode_success``) and the family's readings by name.

  ``task_inputs`` (leading axis K) is the policy input of task k (its index for an agent),
  ``task_params`` [K, p] its parameter.
  """
  num_tasks = task_params.shape[0]
  repeat = lambda x: jnp.repeat(x, episodes, axis=0)
  episode = acting.rollout(env, act, jax.tree.map(repeat, task_inputs), repeat(task_params),
                           jax.random.split(key, num_tasks * episodes),
                           success=success)
  per_task = lambda x: x.reshape(num_tasks, episodes).mean(1)
  out = {"return": per_task(episode.ret), "length": per_task(episode.length),
         "success": per_task(episode.success)}
  for reading in env.readings():
    out[reading.name] = reading.measure(episode.metrics, episode.alive, num_tasks)
  return out


def evaluate_batch(batch_env, act: Callable, task_inputs: jax.Array, task_params: jax.Array,
                   key: jax.Array, episodes: int,
                   success: acting.SuccessRule) -> dict[str, jax.Array]:
  """``evaluate``'s per-task ``return``, ``length`` and ``success`` from an auto-reset
  batch (``envs.HostBatch``: a host family has no per-env ``reset``/``step`` to vmap,
  and declares no readings).

  One env per episode, ``batch_env.episode_length`` steps from a fresh reset; steps
  after an env's episode ended (the batch resets it) are masked out, as ``rollout``
  stops accumulating.  ``act(obs [B, o], task_index [B], key) -> actions [B, a]`` is
  the deterministic policy.
  """
  num_tasks = task_params.shape[0]
  repeat = lambda x: jnp.repeat(x, episodes, axis=0)
  reset_key, act_key = jax.random.split(key)
  inputs = repeat(task_inputs)
  state = batch_env.reset(jax.random.split(reset_key, num_tasks * episodes),
                          repeat(jnp.asarray(task_params, jnp.float32)))

  def step(carry, key):
    state, alive = carry
    nxt = batch_env.step(state, act(state.obs, inputs, key))
    out = {"reward": alive * nxt.reward, "alive": alive,
           "success": alive * nxt.metrics["success"]}
    return (nxt, alive * (1.0 - nxt.done)), out

  _, out = jax.lax.scan(step, (state, jnp.ones(inputs.shape[:1])),
                        jax.random.split(act_key, batch_env.episode_length))
  per_task = lambda x: x.reshape(num_tasks, episodes).mean(1)
  return {"return": per_task(out["reward"].sum(0)), "length": per_task(out["alive"].sum(0)),
          "success": per_task(acting.episode_success(out["success"], out["alive"],
                                                     success))}


def targets(env: envs.TaskFamilyEnv, task_param) -> dict[str, float]:
  """``{reading: target}`` of the readings a task asks something of."""
  out = {}
  for reading in env.readings():
    want = reading.target(np.asarray(task_param))
    if want is not None:
      out[reading.name] = want
  return out


def metrics(env: envs.TaskFamilyEnv, task_params: np.ndarray, task_names: Sequence[str],
            result: dict) -> dict[str, float]:
  """``evaluate``'s result (on host) as metrics: ``eval/<figure>/<task>`` for return,
  length, success and every reading; ``eval/<error_name>/<task>`` where the task has a
  target; ``eval/return_mean``, ``eval/success_rate`` and ``eval/<error_name>_mean``."""
  out, errors = {}, {}
  readings = [r for r in env.readings() if r.name in result]
  for i, name in enumerate(task_names):
    for figure in ("return", "length", "success"):
      out[f"eval/{figure}/{name}"] = float(result[figure][i])
    for reading in readings:
      value = float(result[reading.name][i])
      out[f"eval/{reading.name}/{name}"] = value
      want = reading.target(np.asarray(task_params[i]))
      if want is not None:
        error = float(reading.error(value, want))
        out[f"eval/{reading.error_name}/{name}"] = error
        errors.setdefault(reading.error_name, []).append(error)
  out["eval/return_mean"] = float(np.mean(result["return"]))
  out["eval/success_rate"] = float(np.mean(result["success"]))
  out.update({f"eval/{k}_mean": float(np.mean(v)) for k, v in errors.items()})
  return out


def table(row: dict) -> str:
  """One evaluation row (``metrics`` plus ``epoch``, ``env_steps``, ``wall_time``) as a
  table, one line per task: return, length, every reading and its error, success; then
  the means over tasks."""
  tasks = [k.split("/", 2)[2] for k in row if k.startswith("eval/return/")]
  figures = []
  for key in row:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "eval" and parts[1] not in figures:
      figures.append(parts[1])
  figures = (["return", "length"] + [f for f in figures if f not in
                                     ("return", "length", "success")] + ["success"])
  width = max([12] + [len(t) + 2 for t in tasks])
  size = {f: max(9, len(f) + 2) for f in figures}
  digits = {"return": 1, "length": 0, "heading": 0, "direction_error": 0}
  lines = [f"\nepoch {row['epoch']}, {row['env_steps']} env steps, "
           f"{row['wall_time']:.0f} s",
           f"{'task':<{width}}" + "".join(f"{f:>{size[f]}}" for f in figures)]
  for task in tasks:
    cells = []
    for f in figures:
      value = row.get(f"eval/{f}/{task}")
      cells.append(("" if value is None else f"{value:.{digits.get(f, 2)}f}").rjust(size[f]))
    lines.append(f"{task:<{width}}" + "".join(cells))
  lines += [f"mean {k[len('eval/'):-len('_mean')]}: {v:.3f}" for k, v in row.items()
            if k.startswith("eval/") and k.endswith("_mean") and k != "eval/return_mean"]
  if "eval/success_rate" in row:
    lines.append(f"success rate: {row['eval/success_rate']:.2f}")
  return "\n".join(lines)
