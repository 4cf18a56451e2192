"""What else is running: CPU use of the other processes (standard library only, so the
brax peer's own venv imports it too)."""
import os
import time


def _cpu_ticks() -> dict[int, tuple[int, str]]:
  """{pid: (user + system clock ticks, command)} of every readable process."""
  ticks = {}
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
      continue
    ticks[int(pid)] = (int(fields[11]) + int(fields[12]), command[:100])
  return ticks


def background_load(seconds: float = 2.0) -> dict:
  """CPU use of the other processes over ``seconds`` in percent of one core (a shared
  machine: measurements taken while other jobs run are slower), {"cpu_percent": total,
  "busy": {command: percent}} of those using at least 5 %."""
  before = _cpu_ticks()
  time.sleep(seconds)
  after = _cpu_ticks()
  hz = os.sysconf("SC_CLK_TCK")
  busy = {}
  for pid, (ticks, command) in after.items():
    if pid != os.getpid() and pid in before:
      percent = 100 * (ticks - before[pid][0]) / hz / seconds
      if percent >= 5:
        busy[f"{command} (pid {pid})"] = round(percent)
  return {"cpu_percent": sum(busy.values()), "busy": busy}
