"""A lost peer of a multi-host job is a named stop, not a crash.

When a process of a multi-host job dies (``kill -9``, a host gone), XLA's distributed
runtime ends every other process: the coordinator notices the missing heartbeats after
``peer_timeout_s`` (JAX's ``heartbeat_timeout_seconds``, ``parallel.initialize``), a
process that loses the coordinator notices at once, and either way the runtime writes a
fatal log with a C++ stack trace and aborts, from a thread Python cannot intercept.  So
``experiments.train`` runs a multi-host process's job in a child (``run``) and watches it:

- the child's stderr is passed through as it comes, until the runtime's fatal report
  (or a failed collective's) starts; that report goes to
  ``<workdir>/logs/process_<id>.log`` instead (and to stderr after all, if the child
  then ends in any other way than the runtime ending it);
- the child reports its progress (epoch reached, last intact checkpoint) on a pipe
  (``report``, called by the job after every epoch);
- when the child ends that way, the supervisor prints one line naming the lost process
  (the coordinator's report lists the processes that stopped sending heartbeats; a
  process that lost the coordinator says so), the epoch reached, the last intact
  checkpoint and how to resume, and exits with ``PEER_LOST_EXIT_CODE``.

SIGTERM and SIGINT reach the child once (it runs in its own process group, and the
supervisor forwards them), so the job's own stop-after-this-epoch applies; the child
dies with the supervisor (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

PEER_LOST_EXIT_CODE = 4
PROGRESS_FD = "EARJAX_PROGRESS_FD"
# Where a peer's loss starts to show: glog lines of the coordination service, its agent,
# client or preemption sync (W/E/F, MMDD hh:mm:ss.micros thread file:line]), or the first line that reports
# a failed gloo collective (a library's log of it comes with a Python traceback).
_FATAL = re.compile(
    r"(?m)^([WEF]\d{4} [\d:.]+ +\d+ "
    r"(coordination_service(_agent)?\.cc|client\.h|preemption_sync_manager\.cc)"
    r"|.*Gloo \w+ failed)")
_UNHEALTHY = (re.compile(r"stopped sending heartbeats\):\s*((?:\d+\s*)+)"),
              re.compile(r"Task (\d+) heartbeat timeout"))
_NO_COORDINATOR = ("Failed to send RPC to coordination service",
                   "leader task was preempted")


def report(**fields) -> None:
  """Tells the supervisor (if the job runs under one) where the job stands."""
  fd = os.environ.get(PROGRESS_FD)
  if fd is None:
    return
  try:
    os.write(int(fd), (json.dumps(fields) + "\n").encode())
  except OSError:
    pass


def supervised() -> bool:
  return PROGRESS_FD in os.environ


def wait_for_the_runtime(error: BaseException, peer_timeout_s: float) -> None:
  """A multi-host job's step failed (``error``): if a peer died, a collective with it
  fails this way, and the runtime ends this process within ``peer_timeout_s`` naming
  the lost process (the supervisor turns that into one line).  So report the failure,
  give the runtime that long, and return (the caller re-raises: a failure of its own)
  only if it did not end this process."""
  text = str(error).strip()
  report(collective_failed=f"{type(error).__name__}: {text.splitlines()[0] if text else ''}")
  time.sleep(peer_timeout_s + 10)


def _die_with_parent() -> None:
  """In the child: SIGKILL when the supervisor dies (Linux's PR_SET_PDEATHSIG)."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
  except OSError:
    pass


def lost_line(crash: str, progress: dict, process_id: int, peer_timeout_s: float,
              log_path: str) -> str:
  """The one line for a child the runtime ended: who was lost, where the job stands."""
  found = next((m for m in (p.search(crash) for p in _UNHEALTHY) if m), None)
  if found:
    ids = sorted({int(x) for x in found.group(1).split()})
    who = ("process " if len(ids) == 1 else "processes ") + ", ".join(map(str, ids))
    why = f"no heartbeat for peer_timeout_s={peer_timeout_s:g} s"
  elif any(text in crash for text in _NO_COORDINATOR):
    who, why = "the coordinator, process 0", "its service stopped answering"
  else:
    who = "a peer process"
    why = progress.get("collective_failed") or "the distributed runtime ended this process"
  epoch = progress.get("epoch")
  where = "before its first epoch" if epoch is None else f"after epoch {epoch}"
  resume = progress.get("resume", "relaunch every process with the same command to resume")
  return (f"lost {who} ({why}): process {process_id} stopped {where}; "
          f"{progress.get('checkpoint', 'no checkpoint yet')}; {resume} (the runtime's "
          f"report: {log_path})")


def run(module: str, argv: list[str], process_id: int, peer_timeout_s: float,
        workdir: str) -> int:
  """Runs ``python -m module argv`` (this process's job) under supervision; returns the
  exit code to end with."""
  read_fd, write_fd = os.pipe()
  env = dict(os.environ, **{PROGRESS_FD: str(write_fd)})
  child = subprocess.Popen([sys.executable, "-m", module, *argv], env=env,
                           pass_fds=(write_fd,), stderr=subprocess.PIPE,
                           process_group=0, preexec_fn=_die_with_parent)
  os.close(write_fd)
  progress: dict = {}

  def read_progress():
    with os.fdopen(read_fd) as f:
      for line in f:
        try:
          progress.update(json.loads(line))
        except ValueError:
          pass

  reader = threading.Thread(target=read_progress, daemon=True)
  reader.start()
  previous = {sig: signal.signal(sig, lambda signum, _: child.send_signal(signum))
              for sig in (signal.SIGTERM, signal.SIGINT)}
  crash, pending, forwarded = [], "", "\n"

  def forward(text):
    nonlocal forwarded
    if text:
      sys.stderr.write(text)
      forwarded = text
  try:
    while True:
      chunk = os.read(child.stderr.fileno(), 65536).decode(errors="replace")
      if not chunk:
        break
      if crash:
        crash.append(chunk)
        continue
      text = pending + chunk
      # A progress bar's redraws start with "\r", not a new line: search as if they did.
      found = _FATAL.search(text.replace("\r", "\n"))
      if found:
        forward(text[:found.start()])
        crash.append(text[found.start():])
        pending = ""
      else:   # hold back a partial last line: it may be the report's start
        cut = text.rfind("\n") + 1
        forward(text[:cut])
        pending = text[cut:]
        if len(pending) > 4096 or "\r" in pending:   # a progress bar's redraws
          forward(pending)
          pending = ""
      sys.stderr.flush()
    forward(pending)
    code = child.wait()
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  reader.join(timeout=5)
  crash_text = "".join(crash)
  # The runtime ends a process that lost a peer with an abort after its fatal report;
  # any other end (an OOM kill, a crash of its own) is passed on as it is.
  lost = code == PEER_LOST_EXIT_CODE or (
      code == -signal.SIGABRT and ("Terminating process because the JAX distributed "
                                   "service detected fatal errors" in crash_text))
  if not lost:
    sys.stderr.write(crash_text)   # not a lost peer: nothing is held back
    return code if code >= 0 else 128 - code
  log_path = os.path.join(workdir, "logs", f"process_{process_id}.log")
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, "a") as f:
    f.write(crash_text)
  # On a line of its own (a progress bar may have been mid-line).
  print(("" if forwarded.endswith("\n") else "\n") + "error: "
        + lost_line(crash_text, progress, process_id, peer_timeout_s, log_path),
        file=sys.stderr)
  return PEER_LOST_EXIT_CODE
