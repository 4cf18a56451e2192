"""What every experiments/*.py main shares: flag parsing that fails in one line."""
import re
import sys

from absl import flags
from absl import logging

from earjax.compilation_cache import enable_compilation_cache


def fail(lines, code: int = 2) -> None:
  """Prints ``error: <line>`` for each problem to stderr and exits with ``code``."""
  for line in lines:
    print(f"error: {line}", file=sys.stderr)
  sys.exit(code)


def named_runs(pairs: list[str]) -> dict[str, str]:
  """``{name: workdir spec}`` of a ``--runs`` flag's ``name=workdir`` pairs (one line and
  exit 2 on a malformed pair)."""
  specs = {}
  for pair in pairs:
    name, _, spec = pair.partition("=")
    if not name or not spec:
      fail([f"--runs takes name=workdir pairs, got {pair!r}"])
    specs[name] = spec
  return specs


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config_flags' tracebacks turned into one line each."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    # "flag --config=...: Error whilst parsing config file:" is followed by the cause.
    fail([lines[0] + (" " + lines[-1] if lines[0].endswith(":") and len(lines) > 1 else "")])
  except (AttributeError, KeyError) as e:  # config_flags: an override of an unknown key
    text = str(e).replace("\\'", "'")
    hint = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
    if hint:
      fail([f"unknown config key {hint.group(2)!r}; did you mean {hint.group(1)!r}?"])
    key = re.search(r"'([A-Za-z_][\w.]*)'", text)
    fail([f"unknown config key {key.group(1)!r}" if key else f"bad config override: {text}"])
  return []


def define_checkpoint_flags():
  """``--checkpoint`` and ``--seed_index``: the checkpoint an LTE tool reads
  (``Run.restore_policy``) and, in a run of several seeds, whose policy."""
  return (flags.DEFINE_string(
      "checkpoint", "best", "The run's checkpoint to read: best (the highest mean "
      "evaluation return), latest (the last training checkpoint) or an epoch kept."),
          flags.DEFINE_integer("seed_index", 0, "In a run of several seeds "
                               "(--config.num_seeds), the index of the seed to read."))


def load_config(config_flag):
  """The config of a ``config_flags`` flag; a file that failed to load fails in one line
  (config_flags defers that failure to the first access)."""
  try:
    config = config_flag.value
    config.get("seed")
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    fail([f"cannot load the config file: {lines[-1]}"])
  return config


def slug(text: str) -> str:
  """``text`` (a task, skill or LTE expression) as a file or skill name part: the
  operators spelt out, any other run of characters than letters, digits and ``.``
  made one ``_``."""
  for op, word in (("+", "plus"), ("-", "minus"), ("*", "x"), ("/", "over")):
    text = text.replace(op, f" {word} ")
  return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "lte"


def start(argv: list[str]) -> None:
  """What every main does first: refuse positional arguments, quiet absl's INFO logging
  (orbax logs every save and restore) unless ``--verbosity`` is given, and turn on the
  persistent compilation cache."""
  if len(argv) > 1:
    fail([f"unexpected arguments {' '.join(argv[1:])}"])
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  enable_compilation_cache()
