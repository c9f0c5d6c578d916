"""What /proc says of a process's CPU and memory and of the machine's CPU: the counters both
bench/harness.py and bench/speed.py read (standard library only, for either venv)."""

from __future__ import annotations

from pathlib import Path


def proc_cpu_ticks(pid: int) -> int:
    """utime + stime of a process and its reaped children, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, stime 15, cutime 16, cstime 17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine_busy_ticks() -> tuple[int, int]:
    """The machine's busy ticks (all but idle and iowait) and all its ticks so far."""
    parts = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)
