"""The earjax task families: ``make(name, config)``, ``default_config(name)``, ``names()``.

Every module of this package that exports ``FAMILIES`` (a tuple of env classes) is
registered at import, in the order the families are listed below, so a new family is one
module (its class with ``default_config()``, the physics, reward, termination and task
sets) and one ``experiments/configs/<family>.py``.  Registered: the five MuJoCo XLA
families of the EAR paper, the tiny pure-JAX ``point_vel``, Meta-World MT10 stepped on
the host (``metaworld_mt10``, envpool), and the policy-space compression paper's
HalfCheetah and Hopper tasks (``halfcheetah_skills``, ``hopper_skills``) and its
MountainCarContinuous (``mountaincar_continuous``, pure JAX).  ``training_batch(env)``
is the batch the Trainer steps: ``AutoResetBatch`` for the JAX families, the family's own
for a host family.
"""
import importlib
import pkgutil

import ml_collections

from earjax.envs.base import MjxFamilyEnv, State, TaskFamilyEnv
from earjax.envs.metaworld import HostBatch
from earjax.envs.wrappers import AutoResetBatch

# The EAR paper's families first (its table's order), then earjax's, then the others.
_ORDER = ("halfcheetah_vel", "ant_dir", "hopper_vel", "walker_vel", "halfcheetah_run_jump",
          "point_vel", "metaworld_mt10")


def _discover() -> dict[str, type]:
  found = {}
  for info in pkgutil.iter_modules(__path__):
    module = importlib.import_module(f"{__name__}.{info.name}")
    found.update({cls.name: cls for cls in getattr(module, "FAMILIES", ())})
  listed = [n for n in _ORDER if n in found]
  return {n: found[n] for n in listed + sorted(set(found) - set(listed))}


_FAMILIES = _discover()


def names() -> tuple[str, ...]:
  """The names ``make`` accepts."""
  return tuple(_FAMILIES)


def jax_names() -> tuple[str, ...]:
  """The families whose envs are pure JAX (vmapped per env, rollouts, the LTE tools)."""
  return tuple(n for n, cls in _FAMILIES.items() if not on_host(cls))


def default_config(name: str) -> ml_collections.ConfigDict:
  """Family ``name``'s settings with their defaults (a training config's ``env``)."""
  check_name(name)
  return _FAMILIES[name].default_config()


def options(name: str) -> tuple[str, ...]:
  """The settings family ``name`` takes (the keys of its ``default_config``)."""
  return tuple(default_config(name))


def backends(name: str) -> tuple[str, ...]:
  """The physics backends family ``name`` offers, its default first."""
  cls = _FAMILIES[name]
  return (*cls.BACKENDS, *getattr(cls, "BRAX_BACKENDS", {}))


def check_name(name: str) -> None:
  """Raises ValueError naming the valid families unless ``name`` is one (cheap: no
  model is loaded)."""
  if name not in _FAMILIES:
    raise ValueError(f"unknown env {name!r}; valid names: {', '.join(names())}")


def make(name: str, config: ml_collections.ConfigDict | None = None,
         **overrides) -> TaskFamilyEnv:
  """The env of one task family: its ``default_config`` with ``config``'s keys (a
  training config's ``env`` section) and then ``overrides`` replaced; an unknown key is
  a one-line ValueError naming the valid ones."""
  check_name(name)
  return _FAMILIES[name](config, **overrides)


def on_host(env) -> bool:
  """Whether ``env`` steps on the host (batches only, through ``io_callback``)."""
  return getattr(env, "on_host", False)


def require_per_env(env, what: str) -> None:
  """Raises a one-line ValueError where ``env`` is a host family: ``what`` (a tool that
  vmaps per-env rollouts) needs a JAX family."""
  if on_host(env):
    raise ValueError(f"{what} needs per-env JAX rollouts; {env.name} is stepped on the "
                     f"host (train and evaluate only); JAX families: {', '.join(jax_names())}")


def training_batch(env) -> AutoResetBatch | HostBatch:
  """The auto-reset batch the Trainer steps ``env`` in."""
  return env.batch() if on_host(env) else AutoResetBatch(env)


__all__ = ["AutoResetBatch", "HostBatch", "MjxFamilyEnv", "State", "TaskFamilyEnv",
           "backends", "default_config", "jax_names", "make", "names", "on_host",
           "options", "require_per_env", "training_batch"]
