"""Resource use of a process and of the machine, read from /proc, and a sampler that records it.

What it does: `read_sample(pid)` gives RSS (from /proc/<pid>/statm) and CPU seconds (utime + stime
from /proc/<pid>/stat); `peak_rss(pid)` gives the kernel's VmHWM; `machine_cpu()` the busy and total
jiffies of all cores. `Sampler` records a sample every `interval` seconds (0.5 s by default) and the
benchmark's own event-loop lag (how late a sleep wakes up), which bounds the error of its timestamps.

What it must not do: signal or otherwise touch the processes it watches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

__all__ = ["MachineCpu", "ProcSample", "Sampler", "machine_cpu", "peak_rss", "read_sample"]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class ProcSample:
    pid: int
    t: float  # time.monotonic()
    rss: int  # bytes
    cpu: float  # seconds of user + system time since the process started


@dataclasses.dataclass(frozen=True)
class MachineCpu:
    busy: float  # seconds, summed over cores
    total: float

    def busy_fraction_since(self, earlier: MachineCpu) -> float:
        span = self.total - earlier.total
        return (self.busy - earlier.busy) / span if span > 0 else 0.0


def read_sample(pid: int) -> ProcSample:
    """Raises OSError when the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    utime, stime = int(fields[11]), int(fields[12])
    resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return ProcSample(pid=pid, t=time.monotonic(), rss=resident * _PAGE, cpu=(utime + stime) / _TICK)


def peak_rss(pid: int) -> int | None:
    """VmHWM: the largest RSS the process ever had, in bytes (None if unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine_cpu() -> MachineCpu:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # up to steal; guest time is already in user
    return MachineCpu(busy=(total - idle) / _TICK, total=total / _TICK)


class Sampler:
    """Samples one pid every `interval` seconds until stopped; also measures this loop's lag."""

    def __init__(
        self,
        pid: int,
        interval: float = 0.5,
        *,
        samples: list[ProcSample] | None = None,
        lags: list[tuple[float, float]] | None = None,
    ) -> None:
        """`samples` and `lags` may be shared with an earlier sampler (a restarted process)."""
        self.pid = pid
        self.interval = interval
        self.samples: list[ProcSample] = samples if samples is not None else []
        self.lags: list[tuple[float, float]] = lags if lags is not None else []  # (time, overrun s)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sampler {self.pid}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.samples.append(read_sample(self.pid))
            except OSError:
                return  # the process ended; the caller notices through its own checks
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            after = time.monotonic()
            self.lags.append((after, max(0.0, after - before - self.interval)))

    def between(self, start: float, end: float) -> list[ProcSample]:
        return [s for s in self.samples if start <= s.t <= end]

    def lag_between(self, start: float, end: float) -> list[float]:
        return [lag for t, lag in self.lags if start <= t <= end]
