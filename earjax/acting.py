"""Acting: a policy steps every task's envs together, for data and for evaluation.

``collect`` runs ``num_steps`` steps of the auto-reset batch inside one ``lax.scan`` and
returns the transitions task-major ([num_tasks, envs_per_task * num_steps, ...]) as the
replay stores them.  Exploration samples the agent's stochastic policy (EAR: the
tanh-Gaussian with the clean LTE; the LTE noise of Algorithm 1 perturbs the gradient
steps, not the behaviour policy).

``rollout`` is the one episode runner of earjax: one episode for each entry of a batch
of (policy input, task parameter, key), vmapped over the batch and scanned over time.
Evaluation (``evaluate``: deterministic episodes of every task, the policy input is the
task index) and the LTE tools (``earjax.adaptation``: the policy input is an LTE, for
interpolation, composition and every CEM candidate of every task) both run on it.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

from flax import struct
import jax
import jax.numpy as jnp

from earjax import envs

# act(policy_input, obs [o], key, stochastic) -> action [a], for one env.
ActFn = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]


def collect(batch_env: envs.AutoResetBatch, act: Callable, env_state: envs.State,
            env_task_index: jax.Array, num_tasks: int, key: jax.Array, num_steps: int,
            random_actions: jax.Array, metrics: tuple[str, ...] = ()):
  """``num_steps`` steps of every env; uniform actions where ``random_actions`` (bool).

  ``act(obs [B, o], task_index [B], key) -> actions [B, a]`` is the behaviour policy;
  ``env_task_index`` [B] with the envs ordered task-major (env i runs task
  i // envs_per_task).  Returns (env_state, transitions) with replay's fields and the
  env ``metrics`` named (of the step's end state), each [num_tasks, envs_per_task *
  num_steps, ...].
  """
  def step(env_state, key):
    policy_key, uniform_key = jax.random.split(key)
    action = act(env_state.obs, env_task_index, policy_key)
    uniform = jax.random.uniform(uniform_key, action.shape, minval=-1.0, maxval=1.0)
    action = jnp.where(random_actions, uniform, action)
    next_state = batch_env.step(env_state, action)
    terminated = next_state.done * (1.0 - next_state.info["truncation"])
    transition = {"obs": env_state.obs, "action": action, "reward": next_state.reward,
                  "next_obs": next_state.info["terminal_obs"],
                  "discount": 1.0 - terminated,
                  **{name: next_state.metrics[name] for name in metrics}}
    return next_state, transition

  env_state, transitions = jax.lax.scan(step, env_state, jax.random.split(key, num_steps))

  def task_major(x):  # [T, num_envs, ...] -> [num_tasks, envs_per_task * T, ...]
    return jnp.moveaxis(x, 0, 1).reshape((num_tasks, -1) + x.shape[2:])

  return env_state, jax.tree.map(task_major, transitions)


@struct.dataclass
class Episode:
  """One episode per batch entry: totals [B] and per-step traces [T, B, ...]."""
  ret: jax.Array             # return under the episode's own task
  scores: jax.Array          # [B, S] returns under each of ``score_params``
  velocity: jax.Array        # mean forward velocity over the steps alive
  length: jax.Array          # steps alive
  alive: jax.Array           # [T, B], 1 while the episode has not terminated
  success: Optional[jax.Array]  # [B] if asked: 1 if the episode met its goal under the
                                # ``success`` rule (``episode_success``)
  metrics: dict              # name -> [T, B]: the env's metrics and ``min_contact``
  obs: Optional[jax.Array]   # [T + 1, B, obs_size] if asked (LSE plots, rendering)
  qpos: Optional[jax.Array]  # [T + 1, B, nq] if asked (rendering)
  transitions: Optional[dict] = None  # if asked: replay's fields [T, B, ...] (PEARL's
                                      # context); steps where ``alive`` is 0 are not real


def min_contact_distance(data) -> jax.Array:
  """The smallest signed distance of MJX's contact candidates (> 0: airborne); +inf
  where the physics state keeps no contacts (brax pipelines, pure-JAX families)."""
  contact = getattr(getattr(data, "_impl", data), "contact", None)
  if contact is None or contact.dist.size == 0:
    return jnp.full((), jnp.inf)
  return jnp.min(contact.dist)


def rollout(env: envs.TaskFamilyEnv, act: ActFn, policy_inputs: Any,
            task_params: jax.Array, keys: jax.Array, stochastic=False, *,
            score_params: Optional[jax.Array] = None, keep_states: bool = False,
            length: Optional[int] = None,
            success: Optional["SuccessRule"] = None,
            keep_transitions: bool = False, remat: bool = False,
            truncate: int = 0) -> Episode:
  """One episode per entry b of ``policy_inputs`` (a pytree with leading axis B: task
  indices, LTEs, ...) on the task ``task_params[b]`` [B, p].

  ``keys`` [B]: each episode's reset noise and its action samples; ``stochastic``
  (bool, or [B] bools, traced) asks ``act`` for a sample, else its deterministic action.
  Entry b depends on its own inputs alone, so a batch gives the same episodes as one
  rollout per entry.  ``score_params`` [S, p] also scores every step under other tasks
  (``env.reward``; e.g. both sources of an interpolation).  Rewards stop accumulating at
  termination.  ``success``: a ``SuccessRule``, also ``Episode.success`` (``episode_success``).
  ``keep_transitions``: also ``Episode.transitions`` (obs, action, reward, next_obs).
  The env (and ``score_params``' rewards) get the action clipped to the action space
  [-1, 1] (a no-op for the tanh policies; MAML's Gaussian samples are not bounded); the
  transitions keep ``act``'s.  ``remat``: each step is recomputed in the backward pass
  (``jax.checkpoint``) instead of kept, for gradients through long episodes.
  ``truncate`` > 0: truncated backpropagation through time: the env state enters every
  ``truncate``-th step (0, truncate, 2 truncate, ...) with its gradient stopped, so a
  derivative of the rewards reaches the policy's inputs through at most ``truncate``
  steps of dynamics (0: through the whole episode).
  Jit it with ``env``, ``act``, ``keep_states``, ``length``, ``success``,
  ``keep_transitions``, ``remat`` and ``truncate`` static.
  """
  steps = int(length or env.episode_length)
  score_params = (jnp.zeros((0, env.task_param_size)) if score_params is None
                  else jnp.asarray(score_params, jnp.float32))

  def one(policy_input, task_param, key, stochastic):
    reset_key, act_key = jax.random.split(key)
    state = env.reset(reset_key, task_param)

    def step(carry, t):
      state, alive = carry
      if truncate:
        cut = t % truncate == 0
        state = jax.tree.map(lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x), state)
      action = act(policy_input, state.obs, jax.random.fold_in(act_key, t), stochastic)
      applied = jnp.clip(action, -1.0, 1.0)
      nxt = env.step(state, applied)
      scores = jax.vmap(lambda p: env.reward(state.data, nxt.data, applied, p)[0])(
          score_params)
      out = {"reward": alive * nxt.reward, "scores": alive * scores, "alive": alive,
             "metrics": dict(nxt.metrics, min_contact=min_contact_distance(nxt.data))}
      if keep_states:
        out["obs"], out["qpos"] = nxt.obs, env.qpos(nxt.data)
      if keep_transitions:
        out["transitions"] = {"obs": state.obs, "action": action, "reward": nxt.reward,
                              "next_obs": nxt.obs}
      return (nxt, alive * (1.0 - nxt.done)), out

    _, out = jax.lax.scan(jax.checkpoint(step) if remat else step, (state, jnp.ones(())),
                          jnp.arange(steps))
    if keep_states:
      out["obs"] = jnp.concatenate([state.obs[None], out["obs"]])
      out["qpos"] = jnp.concatenate([env.qpos(state.data)[None], out["qpos"]])
    return out

  task_params = jnp.asarray(task_params, jnp.float32)
  stochastic = jnp.broadcast_to(jnp.asarray(stochastic, bool), task_params.shape[:1])
  out = jax.vmap(one)(policy_inputs, task_params, keys, stochastic)
  time_major = lambda x: jnp.moveaxis(x, 1, 0)  # [B, T, ...] -> [T, B, ...]
  alive = time_major(out["alive"])
  velocity = time_major(out["metrics"]["velocity"])
  return Episode(
      ret=out["reward"].sum(1), scores=out["scores"].sum(1),
      velocity=(alive * velocity).sum(0) / alive.sum(0), length=alive.sum(0),
      alive=alive, metrics={k: time_major(v) for k, v in out["metrics"].items()},
      success=(None if success is None else episode_success(
          time_major(out["metrics"]["success"]), alive, success)),
      obs=time_major(out["obs"]) if keep_states else None,
      qpos=time_major(out["qpos"]) if keep_states else None,
      transitions=(jax.tree.map(time_major, out["transitions"]) if keep_transitions
                   else None))


SUCCESS_RULES = ("held", "any")


class SuccessRule(NamedTuple):
  """When an evaluation episode met its goal, from the env's per-step ``success``.

  - ``held`` (earjax's default): the indicator holds on at least ``fraction`` of the
    second half of the steps the episode ran, and the episode ran at least half its
    length (a fall in the first half fails; Point-Vel's fast targets reach the end of
    the track, a termination, after two thirds of the episode).  A fraction of the
    episode's time is the same for every family whatever its control step
    (HalfCheetah's 0.05 s, Hopper's 0.008 s), a brief touch of the target fails, and a
    task must be held, not passed through; the first half is left to get up to speed.
  - ``any``: any one step (Meta-World's rule: an object, once placed, stays; the MT10
    preset).
  """
  rule: str = "held"
  fraction: float = 0.8


def episode_success(success: jax.Array, alive: jax.Array, rule: SuccessRule) -> jax.Array:
  """1.0 per episode that met its goal under ``rule``, else 0.0; ``success`` [T, B] is
  the per-step indicator, ``alive`` [T, B] 1 while the episode runs, T its length."""
  success = success * alive
  if rule.rule == "any":
    return (success.max(0) > 0).astype(jnp.float32)
  ran = alive.sum(0)                                   # [B]
  t = jnp.arange(success.shape[0])[:, None]
  second_half = (t >= ran // 2) & (t < ran)
  held = (success * second_half).sum(0) / jnp.maximum(second_half.sum(0), 1)
  long_enough = 2 * ran >= success.shape[0]
  return (long_enough & (held >= rule.fraction)).astype(jnp.float32)
