"""A run's named skill library and LTE arithmetic over it.

A skill is an LTE with a name, kept beside the run that gives it meaning (an LTE drives
one frozen policy only): ``<workdir>/skills.json``, written whole or not at all.  Skill
names are ``[A-Za-z_][A-Za-z0-9_.]*`` (``runjump``, ``cem_vel1.5``); the run's training
task names (``run3``, also Point-Vel's ``vel-1.5``) are names too, bound to their rows of
the LTE table, so a skill may not take one.

``evaluate(expression, bindings)`` is the arithmetic the LTE tools accept for ``--lte``
(``experiments.render``, ``experiments.interpolate``): sums, differences and scalings of
named LTEs and numbers, e.g. ``run3 + jump10`` (composition, Sec. 4.4 of Hua, Chen & Xu,
ICLR 2023) or ``0.5*vel2 + 0.5*vel4`` (Eq. 1's mix before its normalisation), with
brackets; ``resolve(run, expression)`` binds the run's tasks and skills, evaluates, and
puts the result on the unit sphere where the run's LTEs live there (Eq. 1's normalize;
the no-hypersphere ablation's LTEs are used as they are).  A bare list of numbers
``x,y,z`` is an LTE written out.
"""
from __future__ import annotations

import datetime
import json
import os
import re
from typing import Mapping

import numpy as np

from earjax import files

FILE = "skills.json"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>[-+*/()]))")


def _path(workdir: str) -> str:
  return os.path.join(workdir, FILE)


def _read(workdir: str) -> dict:
  try:
    with open(_path(workdir)) as f:
      library = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{_path(workdir)} is unreadable: {e}") from e
  if not isinstance(library, dict):
    raise ValueError(f"{_path(workdir)} is not a skill library (a JSON object)")
  return library


def library(workdir: str) -> dict[str, np.ndarray]:
  """Every skill saved in ``workdir``, by name."""
  return {name: np.asarray(entry["lte"], np.float32)
          for name, entry in sorted(_read(workdir).items())}


def load(workdir: str, name: str) -> np.ndarray:
  """The LTE saved as ``name`` in ``workdir``."""
  saved = library(workdir)
  if name not in saved:
    raise ValueError(f"no skill {name!r} in {workdir}; saved: "
                     + (", ".join(saved) or "none"))
  return saved[name]


def save(workdir: str, name: str, lte, source: str = "") -> None:
  """Saves ``lte`` as the skill ``name`` of the EAR run in ``workdir`` (replacing a skill
  of that name), checked against the run's LTE dimension and task names; ``source`` says
  where it came from (an expression, a search)."""
  from earjax import checkpoint  # pylint: disable=import-outside-toplevel
  from earjax.run import Run  # pylint: disable=import-outside-toplevel
  try:
    run = Run.load(workdir, agent="ear_sac", what="a skill (an LTE)", impl="jax")
  except checkpoint.CheckpointError as e:   # no run there (a ConfigError is a ValueError)
    raise ValueError(str(e)) from e
  _save(workdir, name, lte, source, run.task_names, run.config.ear_sac.lte_dim)


def save_for_run(run, name: str, lte, source: str = "") -> None:
  """``save`` for a loaded ``policy.EARRun`` (its env and tasks are at hand)."""
  _save(run.workdir, name, lte, source, tuple(run.task_names), run.lte_dim)


def _save(workdir, name, lte, source, reserved, lte_dim) -> None:
  if not isinstance(name, str) or not NAME.fullmatch(name):
    raise ValueError(f"a skill name is a letter or _ then letters, digits, _ or ., "
                     f"got {name!r}")
  if name in reserved:
    raise ValueError(f"{name!r} is a task of this run; give the skill another name")
  lte = np.asarray(lte, np.float64).reshape(-1)
  if lte.size != lte_dim:
    raise ValueError(f"an LTE of this run has dimension {lte_dim}, got {lte.size}")
  if not np.all(np.isfinite(lte)):
    raise ValueError(f"skill {name!r} is not finite: {lte.tolist()}")
  saved = _read(workdir)
  saved[name] = {"lte": lte.tolist(), "source": source,
                 "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(
                     timespec="seconds")}
  files.write_json(_path(workdir), dict(sorted(saved.items())))


def _tokens(expression: str, names) -> list[tuple[str, str]]:
  """Numbers, names and operators; a name of ``names`` is read whole first, so task names
  with a ``-`` (Point-Vel's ``vel-1.5``) are names, not differences."""
  names = sorted(names, key=len, reverse=True)
  out, at = [], 0
  stripped = expression.rstrip()
  while at < len(stripped):
    while stripped[at].isspace():
      at += 1
    known = next((n for n in names if stripped.startswith(n, at) and not re.match(
        r"[A-Za-z0-9_.]", stripped[at + len(n):at + len(n) + 1])), None)
    if known is not None:
      out.append(("name", known))
      at += len(known)
      continue
    match = _TOKEN.match(stripped, at)
    if match is None:
      raise ValueError(f"bad LTE expression {expression!r}: cannot read "
                       f"{stripped[at:].strip()!r}")
    kind = match.lastgroup
    out.append((kind, match.group(kind)))
    at = match.end()
  return out


def evaluate(expression: str, bindings: Mapping[str, np.ndarray]) -> np.ndarray:
  """The LTE ``expression`` gives with the names ``bindings`` (name -> vector); see the
  module docstring.  Refuses, in one line, unknown names, a product or quotient of two
  LTEs, division by zero, a result that is a number, and malformed text."""
  tokens = _tokens(expression, bindings)
  at = 0

  def fail(message):
    raise ValueError(f"bad LTE expression {expression!r}: {message}")

  def peek():
    return tokens[at] if at < len(tokens) else ("end", "")

  def take():
    nonlocal at
    at += 1
    return tokens[at - 1]

  def atom():
    kind, text = peek()
    if kind == "end":
      fail("expected a name, a number or '(' at the end")
    take()
    if kind == "number":
      return float(text)
    if kind == "name":
      if text not in bindings:
        fail(f"unknown name {text!r} (known: {', '.join(sorted(bindings)) or 'none'})")
      return np.asarray(bindings[text], np.float64)
    if (kind, text) == ("op", "("):
      value = total()
      if peek() != ("op", ")"):
        fail("a '(' is not closed")
      take()
      return value
    if (kind, text) == ("op", "-"):
      return -atom()
    if (kind, text) == ("op", "+"):
      return atom()
    fail(f"expected a name, a number or '(' at {text!r}")

  def product():
    value = atom()
    while peek() in (("op", "*"), ("op", "/")):
      op = take()[1]
      right = atom()
      if np.ndim(value) and np.ndim(right):
        fail(f"cannot {'multiply' if op == '*' else 'divide'} two LTEs")
      if op == "*":
        value = value * right
      else:
        if np.ndim(right):
          fail("cannot divide by an LTE")
        if right == 0:
          fail("division by zero")
        value = value / right
    return value

  def total():
    value = product()
    while peek() in (("op", "+"), ("op", "-")):
      op = take()[1]
      right = product()
      if np.ndim(value) != np.ndim(right):
        fail("cannot add a number and an LTE")
      if np.ndim(value) and np.shape(value) != np.shape(right):
        fail(f"LTEs of dimensions {np.size(value)} and {np.size(right)}")
      value = value + right if op == "+" else value - right
    return value

  if not tokens:
    fail("it is empty")
  result = total()
  if at != len(tokens):
    fail(f"unexpected {tokens[at][1]!r}")
  if not np.ndim(result):
    fail(f"it gives the number {float(result)}, not an LTE")
  return result


def parse_vector(text: str) -> np.ndarray | None:
  """``x,y,z`` as a vector; None if ``text`` is not a comma list of numbers."""
  items = [s.strip() for s in text.split(",")]
  try:
    return np.asarray([float(s) for s in items], np.float64) if len(items) > 1 else None
  except ValueError:
    return None


def bindings(run) -> dict[str, np.ndarray]:
  """The names an expression may use on ``run`` (``policy.EARRun``): its training tasks'
  LTEs and its saved skills."""
  names = dict(library(run.workdir))
  names.update(zip(run.task_names, np.asarray(run.ltes, np.float64)))
  return names


def resolve(run, expression: str) -> np.ndarray:
  """The LTE ``expression`` (or ``x,y,z``) names on ``run``: [lte_dim] float32, on the
  unit sphere where the run's LTEs are (``ear_sac.normalize_lte``)."""
  vector = parse_vector(expression)
  lte = vector if vector is not None else evaluate(expression, bindings(run))
  if lte.shape != (run.lte_dim,):
    raise ValueError(f"an LTE of this run has dimension {run.lte_dim}, "
                     f"{expression!r} gives {lte.size}")
  if run.config.ear_sac.normalize_lte:
    norm = np.linalg.norm(lte)
    if not norm > 1e-8:
      raise ValueError(f"{expression!r} is the zero vector: it has no direction on the "
                       f"LTE sphere")
    lte = lte / norm
  return lte.astype(np.float32)


def lte_or_task(run, text: str) -> tuple[np.ndarray, int | None]:
  """(LTE, task index) of ``text`` naming a training task of ``run`` (a name or an index),
  else (``resolve(run, text)``, None)."""
  from earjax.adaptation import lte as lte_lib  # pylint: disable=import-outside-toplevel
  try:
    index = lte_lib.task_index(run.task_names, text)
  except ValueError:
    if text.strip().lstrip("-").isdigit():   # an index out of range: say which exist
      raise
    return resolve(run, text), None
  return np.asarray(run.ltes[index]), index
