"""The earjax task families: ``make(name, **overrides)``, ``names()``, ``options(name)``.

Five MuJoCo XLA families of the EAR paper, the tiny pure-JAX ``point_vel``, Meta-World
MT10 stepped on the host (``metaworld_mt10``, envpool), and the policy-space compression
paper's HalfCheetah and Hopper tasks (``halfcheetah_skills``, ``hopper_skills``) and its
MountainCarContinuous (``mountaincar_continuous``, pure JAX).  ``training_batch(env)``
is the batch the Trainer steps: ``AutoResetBatch`` for the JAX families, the family's own
for a host family.
"""
from earjax.envs.ant import AntDir
from earjax.envs.base import MjxFamilyEnv, State, TaskFamilyEnv
from earjax.envs.halfcheetah import HalfCheetahRunJump, HalfCheetahVel
from earjax.envs.metaworld import HostBatch, MetaWorldMT10
from earjax.envs.mountain_car import MountainCarContinuous
from earjax.envs.planar_walkers import HopperVel, WalkerVel
from earjax.envs.point import PointVel
from earjax.envs.skills import HalfCheetahSkills, HopperSkills
from earjax.envs.wrappers import AutoResetBatch

_FAMILIES = {cls.name: cls for cls in
             (HalfCheetahVel, AntDir, HopperVel, WalkerVel, HalfCheetahRunJump, PointVel,
              MetaWorldMT10, HalfCheetahSkills, HopperSkills, MountainCarContinuous)}


def names() -> tuple[str, ...]:
  """The names ``make`` accepts."""
  return tuple(_FAMILIES)


def jax_names() -> tuple[str, ...]:
  """The families whose envs are pure JAX (vmapped per env, rollouts, the LTE tools)."""
  return tuple(n for n, cls in _FAMILIES.items() if not on_host(cls))


def options(name: str) -> tuple[str, ...]:
  """The overrides family ``name`` accepts."""
  return _FAMILIES[name].OPTIONS


def backends(name: str) -> tuple[str, ...]:
  """The physics backends family ``name`` offers, its default first."""
  cls = _FAMILIES[name]
  return (*cls.BACKENDS, *getattr(cls, "BRAX_BACKENDS", {}))


def check_name(name: str) -> None:
  """Raises ValueError naming the valid families unless ``name`` is one (cheap: no
  model is loaded)."""
  if name not in _FAMILIES:
    raise ValueError(f"unknown env {name!r}; valid names: {', '.join(names())}")


def make(name: str, **overrides) -> TaskFamilyEnv:
  """The env of one task family; ``overrides`` among ``options(name)``."""
  check_name(name)
  unknown = sorted(set(overrides) - set(options(name)))
  if unknown:
    raise ValueError(f"unknown option(s) {', '.join(unknown)} for env {name!r}; "
                     f"valid options: {', '.join(options(name))}")
  return _FAMILIES[name](**overrides)


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
           "backends", "jax_names", "make", "names", "on_host", "options", "require_per_env",
           "training_batch"]
