"""brax's SAC and earjax's training epoch side by side: a 3-line table and one JSON file.

  .venv/bin/python -m benchmarks.peers.compare --brax=runs/peers/brax_sac.json \\
      --earjax=runs/peers/earjax_brax_matched.json --out=runs/peers/side_by_side.json

Reads the record that ``brax_sac.py`` wrote (one JSON object) and the JSON list that
``python -m benchmarks.run --sections=train --train=brax_matched`` wrote (the record
``train/brax_matched/env_steps_per_s`` has earjax's rate).  Prints brax's rate, earjax's
rate and the ratio earjax / brax; writes both rates, the ratio, the timestamps of the two
runs, the other processes' CPU use before each run and a note on it, and a check that
both ran the same setting (envs, batch, updates per env step, widths).  Standard library
only: it runs in either venv.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

from benchmarks import model_options

EARJAX_NAME = "train/brax_matched/env_steps_per_s"
EARJAX_LOAD_NAME = "machine/background_cpu_percent"
# Other processes' CPU use (percent of one core) above which the note warns.
BUSY_PERCENT = 25.0


def _load(path: str):
  with open(path) as f:
    return json.load(f)


def brax_record(data) -> dict:
  """brax_sac.py's record (an object; a one-record list is accepted too)."""
  if isinstance(data, list):
    found = [r for r in data if str(r.get("name", "")).startswith("brax_sac/")]
    if len(found) != 1:
      raise ValueError(f"expected one brax_sac/ record, found {len(found)}")
    return found[0]
  return data


def earjax_records(data, name: str = EARJAX_NAME) -> tuple[dict, dict | None]:
  """(the env-steps/s record ``name``, the background-load record or None)."""
  if not isinstance(data, list):
    raise ValueError("earjax's file should be a JSON list of records")
  by_name = {r.get("name"): r for r in data}
  if name not in by_name:
    raise ValueError(f"no record {name!r} in earjax's file")
  record = by_name[name]
  if record.get("value") is None:
    raise ValueError(f"{name} failed: {record.get('settings', {}).get('failed')}")
  return record, by_name.get(EARJAX_LOAD_NAME)


def setting_mismatches(brax: dict, earjax: dict) -> list[str]:
  """Where the two runs' settings differ in envs, batch, updates per env step, widths
  or the compiled models' physics options."""
  kw = brax.get("settings", {}).get("train_kwargs", {})
  es = earjax.get("settings", {})
  mismatches = []

  def check(what, b, e):
    if b is None or e is None:
      mismatches.append(f"{what}: not recorded (brax {b}, earjax {e})")
    elif b != e:
      mismatches.append(f"{what}: brax {b}, earjax {e}")

  check("num_envs", kw.get("num_envs"), es.get("num_envs"))
  check("batch", kw.get("batch_size"), es.get("batch"))
  per_step = None
  if es.get("env_steps_per_epoch"):
    per_step = es.get("grad_steps_per_epoch", 0) / es["env_steps_per_epoch"]
  check("updates per env step of the batch", kw.get("grad_updates_per_step"), per_step)
  hidden = brax.get("settings", {}).get("policy_hidden")
  check("actor widths", hidden, es.get("actor_hidden"))
  check("critic widths", brax.get("settings", {}).get("q_hidden"), es.get("critic_hidden"))
  # The physics: read from both compiled models (never typed), so a different solver
  # budget is a mismatch.
  mismatches += model_options.mismatches(brax.get("settings", {}).get("model_options"),
                                         es.get("model_options"))
  if es.get("quick"):
    mismatches.append("earjax ran with --quick (a smoke run, not a measurement)")
  return mismatches


def _mtime(path: str) -> str:
  stamp = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
  return stamp.isoformat(timespec="seconds")


def load_note(brax_load, earjax_load) -> str:
  """One sentence on the other processes' CPU use before each run."""
  loads = {"brax": brax_load, "earjax": earjax_load}
  known = {k: v for k, v in loads.items() if v is not None}
  text = ", ".join(f"{k} {v:.0f} %" for k, v in known.items()) or "not recorded"
  note = (f"CPU use of other processes just before each run, in percent of one core "
          f"(the box has {os.cpu_count()} cores): {text}.")
  if any(v >= BUSY_PERCENT for v in known.values()):
    note += (" The box was busy for at least one run: a rate measured under load is lower "
             "than on an idle box, and the ratio is only fair if the load was the same "
             "for both runs.")
  elif len(known) < 2:
    note += " One run's load is unknown: check that nothing else was running."
  else:
    note += " Both started on a near-idle box."
  return note


def compare(brax_path: str, earjax_path: str, timestamps: dict) -> dict:
  brax = brax_record(_load(brax_path))
  earjax, earjax_load = earjax_records(_load(earjax_path))
  brax_rate, earjax_rate = float(brax["value"]), float(earjax["value"])
  brax_settings = brax.get("settings", {})
  earjax_settings = earjax.get("settings", {})
  brax_bg = brax_settings.get("background_cpu_percent")
  earjax_bg = (earjax_load or {}).get("value",
                                      earjax_settings.get("background_cpu_percent"))
  mismatches = setting_mismatches(brax, earjax)
  return {
      "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "setting": "HalfCheetah (MJX), 64 envs, batch 256, 16 updates per env step of the "
                 "64-env batch, (256, 256) policy and Q networks, CPU",
      "settings_match": not mismatches, "setting_mismatches": mismatches,
      "brax": {
          "record": brax.get("name"), "file": brax_path, "value": brax_rate,
          "unit": brax.get("unit"), "method": brax.get("method"),
          "wallclock_env_steps_per_s": brax.get("wallclock_env_steps_per_s"),
          "eval_fraction": brax.get("eval_fraction"),
          "timed_epochs": brax.get("timed_epochs"),
          "jax": brax.get("jax"), "brax": brax.get("brax"), "device": brax.get("device"),
          "solver": f"{brax_settings.get('solver_iterations')}/"
                    f"{brax_settings.get('ls_iterations')}",
          "xla_flags": brax_settings.get("xla_flags"),
          "background_cpu_percent": brax_bg,
          "load_avg_1m_before": brax_settings.get("load_avg_1m_before"),
          "started_utc": timestamps.get("brax_started") or brax.get("started_utc"),
          "finished_utc": timestamps.get("brax_finished") or _mtime(brax_path),
      },
      "earjax": {
          "record": earjax.get("name"), "file": earjax_path, "value": earjax_rate,
          "unit": earjax.get("unit"),
          "method": f"env steps of the jitted, donated training epoch over its median "
                    f"wall time ({earjax_settings.get('repeats')} timed epochs after a "
                    f"compile call and a warm-up); no evaluation in the epoch",
          "jax": earjax.get("jax"), "device": earjax.get("device"),
          "git_commit": earjax.get("git_commit"), "solver": earjax_settings.get("solver"),
          "background_cpu_percent": earjax_bg,
          "load_avg_1m": earjax.get("load_avg_1m"),
          "started_utc": timestamps.get("earjax_started"),
          "finished_utc": timestamps.get("earjax_finished") or _mtime(earjax_path),
      },
      "ratio_earjax_over_brax": earjax_rate / brax_rate,
      "background_load_note": load_note(brax_bg, earjax_bg),
  }


def table(result: dict) -> str:
  """Three lines: brax, earjax, ratio."""
  b, e = result["brax"], result["earjax"]

  def load(x):
    v = x["background_cpu_percent"]
    return "n/a" if v is None else f"{v:.0f} %"

  return "\n".join([
      f"{'brax SAC (jax ' + str(b['jax']) + ', brax ' + str(b['brax']) + ')':<36}"
      f"{b['value']:>9.1f} env-steps/s   other CPU {load(b)}",
      f"{'earjax (jax ' + str(e['jax']) + ')':<36}"
      f"{e['value']:>9.1f} env-steps/s   other CPU {load(e)}",
      f"{'ratio earjax / brax':<36}{result['ratio_earjax_over_brax']:>9.2f}x",
  ])


def main(argv: list[str]) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--brax", default="runs/peers/brax_sac.json")
  p.add_argument("--earjax", default="runs/peers/earjax_brax_matched.json")
  p.add_argument("--out", default="runs/peers/side_by_side.json")
  for key in ("brax_started", "brax_finished", "earjax_started", "earjax_finished"):
    p.add_argument(f"--{key}", default=None, help="UTC timestamp (side_by_side.sh)")
  args = p.parse_args(argv)
  timestamps = {k: getattr(args, k) for k in
                ("brax_started", "brax_finished", "earjax_started", "earjax_finished")}
  result = compare(args.brax, args.earjax, timestamps)
  print(table(result))
  print(result["background_load_note"])
  for m in result["setting_mismatches"]:
    print(f"warning: settings differ: {m}")
  write(result, args.out)
  return 0


def write(result: dict, path: str | None) -> None:
  """``result`` as JSON at ``path`` (its folder made), if a path is given."""
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      json.dump(result, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
