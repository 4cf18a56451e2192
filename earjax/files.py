"""Results files written whole or not at all: to a temporary name, then renamed, so a
killed job or a reader racing it never sees half a file (the metrics, the run's config,
the experiments' JSON)."""
from __future__ import annotations

import json
import os
from typing import Any, Iterable


def write_text(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, obj: Any) -> None:
  write_text(path, json.dumps(obj, indent=1))


def read_jsonl(path: str) -> list[dict]:
  """The rows of a JSON-lines file ([] where there is none yet; blank lines skipped)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str, rows: Iterable[dict]) -> None:
  write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
