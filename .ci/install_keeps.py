"""Does `pip install .` keep what a user's environment already holds? (issue 35)

  python .ci/install_keeps.py --python=python3.11 --held jax==0.10.1 jaxlib==0.10.1 \
      mujoco==4.0.1 [--extras=export] [--out=FILE.json]

Makes a fresh venv, installs the --held packages first (a user's existing JAX
environment), then earjax from this checkout without the lock (`pip install .`, the
ranges of setup.cfg), and reports every held package's version before and after, and
whether each was kept (a package not found before counts as not kept).  Exit code 1 if
any was replaced.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def canonical(name: str) -> str:
  """A distribution name as PEP 503 compares them (case, runs of -_. alike), extras off."""
  return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def versions(python: str) -> dict[str, str]:
  out = subprocess.run([python, "-m", "pip", "list", "--format=json"], check=True,
                       capture_output=True, text=True).stdout
  return {canonical(p["name"]): p["version"] for p in json.loads(out)}


def main() -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--python", default=sys.executable)
  parser.add_argument("--held", nargs="+", required=True, help="name==version ...")
  parser.add_argument("--extras", default="", help="earjax's extras, comma-separated")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    venv = os.path.join(tmp, "venv")
    subprocess.run([args.python, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    pip = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + args.held, check=True)
    before = versions(python)
    target = REPO + (f"[{args.extras}]" if args.extras else "")
    subprocess.run(pip + [target], check=True)
    after = versions(python)
    python_version = subprocess.run([python, "-c", "import platform; "
                                     "print(platform.python_version())"],
                                    check=True, capture_output=True, text=True).stdout.strip()
  names = [canonical(h.split("==")[0]) for h in args.held]
  held = {n: {"before": before.get(n), "after": after.get(n),
              "kept": before.get(n) is not None and before.get(n) == after.get(n)}
          for n in names}
  result = {"python": python_version, "machine": platform.machine(),
            "command": "pip install ."
                       + (f"[{args.extras}]" if args.extras else ""),
            "held": held, "all_kept": all(h["kept"] for h in held.values()),
            "earjax": after.get("earjax")}
  text = json.dumps(result, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  return 0 if result["all_kept"] else 1


if __name__ == "__main__":
  sys.exit(main())
