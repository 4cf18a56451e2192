"""Every figure of the results tables equals the committed JSON it came from.

  python -m benchmarks.check_figures [FILE.md ...]   (default: the results documents)
  python -m benchmarks.check_figures --cite FILE "SELECTOR" FORMAT   (an annotated figure)

A figure in a document names its source in an HTML comment right after it (invisible
when rendered):

  | 1000 | 0.115<!-- fig experiments/results/hcv.jsonl epoch=1000 eval/velocity_error_mean --> |
  | peak | 150.2<!-- fig benchmarks/results/suite_cpu.json record peak/matmul_f32_2048/gflops --> |
  | CEM  | 0.028<!-- fig experiments/results/adapt.json ptr /methods/cem/tasks/vel1.5/x --> |

Selectors: ``epoch=N KEY`` (the line of a JSONL file with that epoch; ``epoch=N seed=K
KEY``: seed K's value in a batched run's line), ``record NAME``
(the ``value`` of the record of that name in a JSON list of records), ``ptr /a/b/0`` (a
JSON pointer, RFC 6901).  The shown number must equal the source rounded to the shown
decimals (thousands separators, a Unicode minus and a ``k`` suffix are understood).  A
table preceded by ``<!-- checked-table -->`` must have every number of its body annotated,
so a figure cannot be added by hand.  Exit 1 with one line per mismatch.
"""
from __future__ import annotations

import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ("experiments/RESULTS.md", "benchmarks/README.md", "WORKSPACE.md")
FIGURE = re.compile(r"([−+-]?[\d,]*\.?\d+)(k?)\s*<!--\s*fig\s+(\S+)\s+(.+?)\s*-->")
NUMBER = re.compile(r"(?<![\w/.])[−+-]?\d[\d,]*\.?\d*k?(?![\w/])")


def _value(path: str, selector: str, cache: dict):
  """The number ``selector`` picks from the file ``path`` (relative to the repo)."""
  if path not in cache:
    with open(os.path.join(REPO, path)) as f:
      cache[path] = ([json.loads(line) for line in f if line.strip()]
                     if path.endswith(".jsonl") else json.load(f))
  data = cache[path]
  if selector.startswith("epoch="):
    epoch, key = selector.split(None, 1)
    rows = [r for r in data if r.get("epoch") == int(epoch.split("=")[1])]
    if len(rows) != 1:
      raise KeyError(f"{len(rows)} lines with {epoch}")
    if key.startswith("seed="):    # one seed of a batched run's row
      seed, key = key.split(None, 1)
      return rows[0]["seeds"][key][int(seed.split("=")[1])]
    return rows[0][key]
  if selector.startswith("record "):
    name = selector.split(None, 1)[1]
    found = [r["value"] for r in data if r.get("name") == name]
    if len(found) != 1:
      raise KeyError(f"{len(found)} records named {name}")
    return found[0]
  if selector.startswith("ptr "):
    node = data
    for part in selector.split(None, 1)[1].strip("/").split("/"):
      part = part.replace("~1", "/").replace("~0", "~")
      node = node[int(part)] if isinstance(node, list) else node[part]
    return node
  raise KeyError(f"unknown selector {selector!r}")


def check_text(text: str, name: str) -> list[str]:
  """One line per figure of ``text`` that disagrees with its source, or that sits
  unannotated in a checked table."""
  problems, cache = [], {}
  lines = text.splitlines()
  for number, line in enumerate(lines, 1):
    for match in FIGURE.finditer(line):
      shown, thousands, path, selector = match.groups()
      decimals = len(shown.split(".")[1]) if "." in shown else 0
      scale = 1000.0 if thousands else 1.0
      shown_value = float(shown.replace(",", "").replace("−", "-")) * scale
      try:
        source = float(_value(path, selector, cache))
      except (OSError, KeyError, IndexError, ValueError, TypeError) as e:
        problems.append(f"{name}:{number}: {shown}{thousands} from {path} {selector}: {e}")
        continue
      if abs(shown_value - source) > 0.5 * scale * 10.0**-decimals + 1e-9:
        problems.append(f"{name}:{number}: shows {shown}{thousands}, {path} {selector} "
                        f"holds {source:g}")
  for start, line in enumerate(lines):
    if line.strip() != "<!-- checked-table -->":
      continue
    body = []   # the table right below the marker, without its header and separator
    for row in lines[start + 1:]:
      if not row.startswith("|"):
        break
      body.append(row)
    for offset, row in enumerate(body[2:], start + 4):
      for cell in row.strip().strip("|").split("|")[1:]:   # the first cell names the row
        bare = re.sub(r"<!--.*?-->|`[^`]*`", "", FIGURE.sub("", cell))
        if NUMBER.search(bare):
          problems.append(f"{name}:{offset}: unannotated figure in a checked table: "
                          f"{cell.strip()}")
  return problems


def check(paths=DOCUMENTS) -> list[str]:
  problems = []
  for path in paths:
    with open(os.path.join(REPO, path)) as f:
      problems += check_text(f.read(), path)
  return problems


def cite(path: str, selector: str, fmt: str) -> str:
  """A figure with its annotation, for writing a table: ``cite(path, "epoch=1000 key",
  ".3f")`` -> ``0.115<!-- fig path epoch=1000 key -->``."""
  shown = format(float(_value(path, selector, {})), fmt).replace("-", "−")
  return f"{shown}<!-- fig {path} {selector} -->"


def main(argv: list[str]) -> int:
  if argv[1:2] == ["--cite"]:   # --cite FILE SELECTOR FORMAT
    print(cite(argv[2], argv[3], argv[4]))
    return 0
  problems = check(argv[1:] or DOCUMENTS)
  for line in problems:
    print(line)
  if not problems:
    print("every annotated figure equals its source")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
