"""The physics a compiled MJX model runs, read from the model itself (issue 33).

``read(opt, substeps)`` takes a model's ``opt`` (MuJoCo's ``MjOption``, MJX's ``Option``
or brax's ``System.opt``: the same fields) and the substeps of one control step, and
returns the settings that decide what one env step costs and computes.  ``mismatches``
says where two such readings differ: a side-by-side comparison's ``settings_match`` is
``not mismatches(...)`` of what both sides' models hold, never a value typed in.
Standard library only, so the brax peer's own venv imports it too.
"""
from __future__ import annotations

# Integer options (enums and counts) and float options; a float compares within 1e-9.
INT_OPTIONS = ("solver", "iterations", "ls_iterations", "integrator", "cone")
FLOAT_OPTIONS = ("timestep", "tolerance", "ls_tolerance")


def read(opt, substeps: int) -> dict:
  """{option: value} of ``opt`` and the control step's ``substeps``."""
  out = {"substeps": int(substeps)}
  for name in INT_OPTIONS:
    out[name] = int(getattr(opt, name))
  for name in FLOAT_OPTIONS:
    out[name] = float(getattr(opt, name))
  return out


def mismatches(a: dict | None, b: dict | None, names=("brax", "earjax")) -> list[str]:
  """One line per option where the readings ``a`` and ``b`` differ (or one is missing)."""
  if not a or not b:
    return [f"model options: not recorded ({names[0]} {a}, {names[1]} {b})"]
  out = []
  for key in sorted(set(a) | set(b)):
    x, y = a.get(key), b.get(key)
    same = (x is not None and y is not None and abs(x - y) <= 1e-9
            if key in FLOAT_OPTIONS else x == y)
    if not same:
      out.append(f"model {key}: {names[0]} {x}, {names[1]} {y}")
  return out
