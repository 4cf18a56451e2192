"""The agent interface: what a method gives the generic trainer (``earjax.training``).

A method is a package ``earjax/agents/<method>/`` that exports ``METHODS``, a dict from
the name a config selects (``config.agent``) to a ``Method``: its ``make_networks(config,
spec)`` and ``make_agent(config, spec)``.  Optionally it exports ``CONFIG_SECTIONS``, the
config sections it reads (``{section: (defaults() -> ConfigDict, validate(section) ->
[problem lines])}``), which ``earjax.config.default_config`` then carries, so a method's
settings are ordinary ``--config.<section>.<key>`` flags.  Nothing else in earjax names a
method: the trainer, the job, checkpoints and evaluation work with any ``Agent``.

The agent says what kind of method it is through the data its update takes
(``Agent.data``), and the trainer runs the epoch of that kind (``training.epochs``):
``ReplayData`` (off-policy: collect with ``agent.act``, store the transitions in the
task-partitioned replay, ``grad_steps_per_epoch`` calls of ``agent.update`` on
task-balanced batches in a ``lax.scan``) or ``EpisodeData`` (on-policy: one
``agent.update`` that draws its own episodes).  Evaluation acts with
``agent.act(..., deterministic=True)``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Union

import jax

LearnerState = Any   # a pytree of arrays (flax.struct dataclass): parameters, optimisers
Params = Any
Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class AgentSpec:
  """What a method needs to know of the env and the run to build its networks."""
  observation_size: int
  action_size: int
  num_tasks: int


@dataclasses.dataclass(frozen=True)
class ContextData:
  """A method's context buffer (PEARL's encoder buffer, Rakelly et al. 2019, Algorithm 1
  line 4 and oyster's ``enc_replay_buffer``): per task, for each of the task's envs, the
  transitions of the latest epoch in which that env acted task-agnostically, so a context
  drawn from it looks like the first context of an adaptation.

  - ``exploring(learner_state) -> bool [num_tasks, envs_per_task]``: which envs act
    task-agnostically in the coming epoch (read before its collection); their epoch's
    transitions replace their slots of the buffer (every slot in the random-action epochs
    and the first epoch);
  - ``per_task``: the update's batch also holds ``"context"``, that many transitions of
    every task drawn from the buffer ([num_tasks, per_task, ...] replay fields), apart
    from the RL batch.
  """
  per_task: int
  exploring: Callable[[LearnerState], jax.Array]


@dataclasses.dataclass(frozen=True)
class ReplayData:
  """An off-policy method's data: replayed transitions (``obs``, ``action``, ``reward``,
  ``next_obs``, ``discount``, ``task``), in task-balanced batches of
  ``batch_size_per_task`` per task.

  - ``extra_fields``: env metrics of each step (``State.metrics``, e.g. ``"success"``) the
    replay keeps beside the transition; they reach ``update`` as batch fields of the same
    names (TSAC's sparse reward).
  - ``context``: a ``ContextData`` if the method reads a context buffer (PEARL).
  """
  extra_fields: tuple[str, ...] = ()
  context: ContextData | None = None


@dataclasses.dataclass(frozen=True)
class EpisodeData:
  """An on-policy method's data: ``episodes_per_task`` whole episodes of each task of the
  update's meta-batch, which the update draws itself with the ``episodes`` function it is
  given (``acting.rollout`` with sampled actions and the transitions kept); nothing is
  replayed.  ``tasks_per_update``: the meta-batch, that many of the run's training tasks
  drawn uniformly with replacement at every update (MAML's meta-batch of 40 sampled
  tasks); 0: every training task in every update."""
  episodes_per_task: int
  tasks_per_update: int = 0


@dataclasses.dataclass(frozen=True)
class Agent:
  """A method as pure functions over its ``LearnerState``.

  - ``init(key) -> LearnerState``: fresh parameters and optimiser states.
  - ``act(policy_params, obs [B, o], task_index [B] int, key, deterministic) -> [B, a]``:
    actions in [-1, 1]; ``deterministic`` is a Python bool (evaluation) .
  - ``policy_params(state)``: what ``act`` needs (what evaluation and the best
    checkpoint's ``"policy"`` item hold).
  - ``update``, by the kind of ``data``; ``metrics`` are scalars plus ``"finite"``:
    {quantity: bool}, in the order the step computes them, which the trainer reports on
    a non-finite value:
    - ``ReplayData``: ``update(state, batch, key) -> (state, metrics)``, one gradient
      step on a batch of replay fields ([B, ...]; see ``ReplayData``);
    - ``EpisodeData``: ``update(state, episodes, task_params [K, p], key) -> (state,
      metrics)``, one whole iteration that draws its own episodes,
      ``episodes(act, policy_inputs, task_params, keys) -> acting.Episode``, on the
      run's K tasks (MAML's meta-iteration).
  - ``data``: ``ReplayData`` (the default) or ``EpisodeData``, what ``update`` takes.
  - ``best_items(state)``: the items of the best checkpoint, ``{"policy": ...}`` and
    whatever else adaptation baselines need (SAC: the critics).
  - ``parameter_health(state) -> {name: bool}``: every network's parameters finite.
  - ``networks``: the method's networks (read by tools that use its parts, e.g. the LTE
    functions of EAR).
  """
  name: str
  networks: Any
  init: Callable[[jax.Array], LearnerState]
  act: Callable[..., jax.Array]
  policy_params: Callable[[LearnerState], Params]
  best_items: Callable[[LearnerState], dict[str, Params]]
  parameter_health: Callable[[LearnerState], dict[str, jax.Array]]
  update: Callable[..., tuple[LearnerState, dict]]
  data: Union[ReplayData, EpisodeData] = ReplayData()

  @property
  def on_policy(self) -> bool:
    """Whether the update draws its own episodes (``EpisodeData``) instead of replaying."""
    return isinstance(self.data, EpisodeData)


def number_problems(section: str, values, checks: dict[str, tuple[Callable, str]]) -> list[str]:
  """One line per key of ``checks`` (key -> (ok(value), what it must be)) whose value in
  the config section ``values`` is not a number (bools are not) or fails ``ok``."""
  problems = []
  for key, (ok, what) in checks.items():
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
      problems.append(f"{section}.{key} must be a number {what}, got {value!r}")
  return problems


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def positive_int_problems(section: str, values, keys) -> list[str]:
  """One line per key of ``keys`` whose value is not a positive integer."""
  return [f"{section}.{key} must be a positive integer, got {values[key]!r}"
          for key in keys if not _is_int(values[key]) or values[key] < 1]


def widths_problems(section: str, values, key: str) -> list[str]:
  """One line if ``values[key]`` is not a non-empty list of positive integers."""
  widths = values[key]
  if (isinstance(widths, (tuple, list)) and widths
      and all(_is_int(w) and w > 0 for w in widths)):
    return []
  return [f"{section}.{key} must be a non-empty list of positive integers, got {widths!r}"]


def bool_problems(section: str, values, keys) -> list[str]:
  return [f"{section}.{key} must be true or false, got {values[key]!r}"
          for key in keys if not isinstance(values[key], bool)]


def abstract_best_items(agent: Agent) -> dict[str, Params]:
  """The shapes of ``agent.best_items`` (restore targets of the best checkpoint), traced
  without creating any parameter."""
  return jax.eval_shape(agent.best_items, jax.eval_shape(agent.init, jax.random.PRNGKey(0)))


class Method(NamedTuple):
  """A registered method: ``make_networks(config, spec)``, ``make_agent(config, spec)``
  and the config sections they read (``CONFIG_SECTIONS`` of any agent package): a run of
  the method keeps those alone."""
  make_networks: Callable[..., Any]
  make_agent: Callable[..., Agent]
  sections: tuple[str, ...] = ()
