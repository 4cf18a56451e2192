"""The methods earjax trains, found by name: ``get(name)``, ``names()``.

Every subpackage of ``earjax.agents`` that exports ``METHODS`` is registered (see
``base.py`` for the interface), with its ``CONFIG_SECTIONS`` and ``SHAPE_KEYS`` (config
keys of its sections that change its networks' shapes), so a new method is added by writing
``earjax/agents/<method>/`` alone.  ``sac`` is the multi-task SAC the SAC-family agents
(``ear_sac``, ``ohe_sac``, ``mhmt_sac``) share; it registers no agent of its own.
"""
from __future__ import annotations

import importlib
import pkgutil

from earjax.agents.base import (Agent, AgentSpec, ContextData, EpisodeData, Method,
                               ReplayData, abstract_best_items)


def _discover():
  methods, sections, shape_keys = {}, {}, ()
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not info.ispkg:
      continue
    module = importlib.import_module(f"{__name__}.{info.name}")
    methods.update(getattr(module, "METHODS", {}))
    sections.update(getattr(module, "CONFIG_SECTIONS", {}))
    shape_keys += tuple(getattr(module, "SHAPE_KEYS", ()))
  return methods, sections, shape_keys


_METHODS, CONFIG_SECTIONS, SHAPE_KEYS = _discover()


def names() -> tuple[str, ...]:
  """The names ``config.agent`` accepts."""
  return tuple(_METHODS)


def get(name: str) -> Method:
  if name not in _METHODS:
    raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(names())}")
  return _METHODS[name]


def sections(name: str) -> tuple[str, ...]:
  """The config sections method ``name`` reads."""
  return get(name).sections


__all__ = ["Agent", "AgentSpec", "CONFIG_SECTIONS", "ContextData", "EpisodeData", "Method",
           "ReplayData", "SHAPE_KEYS", "abstract_best_items", "get", "names", "sections"]
