"""The EAR multi-task MuJoCo XLA suite: ``make(name, **overrides)`` and ``names()``."""
from earjax.envs.ant import AntDir
from earjax.envs.base import State, TaskFamilyEnv
from earjax.envs.halfcheetah import HalfCheetahRunJump, HalfCheetahVel
from earjax.envs.planar_walkers import HopperVel, WalkerVel
from earjax.envs.wrappers import AutoResetBatch

_FAMILIES = {cls.name: cls for cls in
             (HalfCheetahVel, AntDir, HopperVel, WalkerVel, HalfCheetahRunJump)}


def names() -> tuple[str, ...]:
  """The names ``make`` accepts."""
  return tuple(_FAMILIES)


def backends(name: str) -> tuple[str, ...]:
  """The physics backends family ``name`` offers: ``mjx`` and brax pipelines."""
  return ("mjx", *_FAMILIES[name].BRAX_BACKENDS)


def make(name: str, **overrides) -> TaskFamilyEnv:
  """The env of one task family; ``overrides`` among ``TaskFamilyEnv.OPTIONS``."""
  if name not in _FAMILIES:
    raise ValueError(f"unknown env {name!r}; valid names: {', '.join(names())}")
  unknown = sorted(set(overrides) - set(TaskFamilyEnv.OPTIONS))
  if unknown:
    raise ValueError(f"unknown option(s) {', '.join(unknown)} for env {name!r}; "
                     f"valid options: {', '.join(TaskFamilyEnv.OPTIONS)}")
  return _FAMILIES[name](**overrides)


__all__ = ["AutoResetBatch", "State", "TaskFamilyEnv", "backends", "make", "names"]
