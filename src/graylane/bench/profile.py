"""A CPU profile of the controller process while the benchmark runs: py-spy, and a summary of it.

What it does: `Profiler` runs `py-spy record` (on-CPU samples only, 50 Hz, without pausing the process)
against the controller's pid from one benchmark phase to another and leaves py-spy's collapsed stacks in
the run directory (`profile.txt`: one `frame;frame;... count` line per distinct stack, the input of
flame-graph tools). `summarise` is pure: the functions with the largest inclusive and self shares of the
samples, which is what BENCHMARKS.md quotes when a target is missed ("the profile that shows why").

Sample counts overstate CPU where threads wait for the GIL (py-spy sees them as running), so shares are
read as where the time goes, and CPU seconds come from /proc (procstat.py), never from the profile.

What it must not do: signal any process but the py-spy it started (by its pid).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["ProfileSummary", "Profiler", "find_py_spy", "summarise"]

RATE_HZ = 50
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Paths are shortened to the part after these, so a summary reads the same on every machine.
_PATH_ROOTS = ("site-packages/", "src/", "python3.11/", "lib/python3/")


def find_py_spy() -> str | None:
    """py-spy next to this interpreter (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """One `py-spy record` of one pid; `stop()` makes it write its file (SIGINT, as py-spy documents)."""

    def __init__(self, executable: str, out: Path, log: Path) -> None:
        self.executable = executable
        self.out = out
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, pid: int) -> None:
        cmd = [self.executable, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nonblocking"]
        cmd += ["--format", "raw", "--output", str(self.out)]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 60.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclasses.dataclass(frozen=True)
class ProfileSummary:
    samples: int
    inclusive: list[tuple[str, float]]  # function (file) -> share of samples with it on the stack
    self_time: list[tuple[str, float]]  # function (file) -> share of samples with it on top

    def to_obj(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "top_inclusive": [[name, round(share, 4)] for name, share in self.inclusive],
            "top_self": [[name, round(share, 4)] for name, share in self.self_time],
        }


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    root = next((r for r in _PATH_ROOTS if r in path), None)
    if root is not None:
        path = path.rpartition(root)[2]
    return f"{match['function']} ({path})"


def summarise(lines: Iterable[str], top: int = 40) -> ProfileSummary:
    """Inclusive and self shares per function from py-spy's collapsed stacks (malformed lines skipped)."""
    inclusive: collections.Counter[str] = collections.Counter()
    on_top: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        names = [_frame_name(frame) for frame in stack.split(";")]
        total += samples
        for name in set(names):  # a recursive function counts once per sample
            inclusive[name] += samples
        on_top[names[-1]] += samples
    if total == 0:
        return ProfileSummary(0, [], [])
    return ProfileSummary(
        total,
        [(name, n / total) for name, n in inclusive.most_common(top)],
        [(name, n / total) for name, n in on_top.most_common(top)],
    )
