"""One job per workdir: ``WorkdirLock`` refuses a second job started on a workdir a job
is using, in one line.

Each process of a job holds its own lock, ``<workdir>/.lock.process_<id>`` (a multi-host
job holds one per process id), an exclusive ``flock`` on a file that names its owner
(pid, host, start time); a job that ends removes it.  The kernel releases a ``flock``
when its process ends, however it ends, so a crashed job's leftover file wedges nothing:
the next job takes it over and writes itself in.  On a shared filesystem the lock is as
good as its ``flock`` (NFSv4 and Lustre honour it across hosts).
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket

from earjax.config import ConfigError


class WorkdirLock:
  """``with WorkdirLock(workdir, process_id):`` the job's hold on ``workdir``."""

  def __init__(self, workdir: str, process_id: int):
    self.workdir = workdir
    self.process_id = process_id
    self.path = os.path.join(workdir, f".lock.process_{process_id}")
    self._fd = None

  def acquire(self) -> None:
    """Takes the lock or raises ``ConfigError`` naming the job that holds it."""
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        owner = _owner(fd)
        os.close(fd)
        raise ConfigError(
            f"workdir {self.workdir!r} is in use by another job (process "
            f"{self.process_id}: pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
            f"since {owner.get('since', '?')}); wait for it to end or use another "
            f"workdir") from None
      # The file may have been removed by the job that held it between our open and
      # our lock: then the lock is on a file no one else sees; take the new one.
      try:
        if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
          break
      except FileNotFoundError:
        pass
      os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(),
        "since": datetime.datetime.now().isoformat(timespec="seconds")}).encode())
    os.fsync(fd)
    self._fd = fd

  def release(self) -> None:
    """Lets the workdir go: the file is removed, then unlocked.  Only our own file: if
    the path was removed under the job (``rm -rf`` of the workdir) and a later job has
    locked a new file there, that job's lock stays."""
    if self._fd is not None:
      try:
        if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
          os.remove(self.path)
      except FileNotFoundError:
        pass
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def _owner(fd: int) -> dict:
  """The holder's pid, host and start as it wrote them (empty if it has not yet)."""
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return json.loads(os.read(fd, 4096).decode() or "{}")
  except (OSError, ValueError):
    return {}
