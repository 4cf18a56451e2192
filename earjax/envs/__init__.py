"""The earjax task families: ``make(name, **overrides)``, ``names()``, ``options(name)``.

Five MuJoCo XLA families of the EAR paper and the tiny pure-JAX ``point_vel``.
"""
from earjax.envs.ant import AntDir
from earjax.envs.base import MjxFamilyEnv, State, TaskFamilyEnv
from earjax.envs.halfcheetah import HalfCheetahRunJump, HalfCheetahVel
from earjax.envs.planar_walkers import HopperVel, WalkerVel
from earjax.envs.point import PointVel
from earjax.envs.wrappers import AutoResetBatch

_FAMILIES = {cls.name: cls for cls in
             (HalfCheetahVel, AntDir, HopperVel, WalkerVel, HalfCheetahRunJump, PointVel)}


def names() -> tuple[str, ...]:
  """The names ``make`` accepts."""
  return tuple(_FAMILIES)


def options(name: str) -> tuple[str, ...]:
  """The overrides family ``name`` accepts."""
  return _FAMILIES[name].OPTIONS


def backends(name: str) -> tuple[str, ...]:
  """The physics backends family ``name`` offers, its default first."""
  cls = _FAMILIES[name]
  return (*cls.BACKENDS, *getattr(cls, "BRAX_BACKENDS", {}))


def make(name: str, **overrides) -> TaskFamilyEnv:
  """The env of one task family; ``overrides`` among ``options(name)``."""
  if name not in _FAMILIES:
    raise ValueError(f"unknown env {name!r}; valid names: {', '.join(names())}")
  unknown = sorted(set(overrides) - set(options(name)))
  if unknown:
    raise ValueError(f"unknown option(s) {', '.join(unknown)} for env {name!r}; "
                     f"valid options: {', '.join(options(name))}")
  return _FAMILIES[name](**overrides)


__all__ = ["AutoResetBatch", "MjxFamilyEnv", "State", "TaskFamilyEnv", "backends", "make",
           "names", "options"]
