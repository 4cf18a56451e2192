"""Each test file's measured seconds, which conftest.py uses to send the slowest files to
the two workers first (longest first: the last file to start is a short one).

  .venv/bin/python -m pytest -q --durations=0 > durations.txt
  .venv/bin/python tests/file_seconds.py durations.txt "<date, commit, caches>"

sums the setup, call and teardown durations of every test per file into
tests/file_seconds.json.  A file missing from it (a new one) goes after the measured
ones; a stale figure only changes the order, never a result."""
import collections
import json
import os
import re
import sys

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_seconds.json")
LINE = re.compile(r"^([\d.]+)s (?:setup|call|teardown)\s+(tests/[^:]+\.py)::")


def seconds_per_file(lines) -> dict[str, float]:
  """``{file: seconds}`` from pytest's ``--durations=0`` report."""
  total = collections.Counter()
  for line in lines:
    match = LINE.match(line)
    if match:
      total[os.path.basename(match.group(2))] += float(match.group(1))
  return {name: round(s, 1) for name, s in total.most_common()}


def load() -> dict[str, float]:
  try:
    with open(PATH) as f:
      return json.load(f)["seconds"]
  except (OSError, ValueError, KeyError):
    return {}


if __name__ == "__main__":
  with open(sys.argv[1]) as f:
    seconds = seconds_per_file(f)
  with open(PATH, "w") as f:
    json.dump({"measured": sys.argv[2], "seconds": seconds}, f, indent=1)
    f.write("\n")
