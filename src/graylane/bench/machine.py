"""What a benchmark ran on, so that figures from different runs can be compared (or not).

What it does: cores, memory, load average, Python, graylane's version and git commit (with a dirty
flag), the Kubernetes/etcd/kwok versions of the local cluster. What it must not do: anything but read.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from graylane.cluster import build

__all__ = ["describe"]


def _meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _git(*args: str) -> str | None:
    repo = Path(__file__).resolve().parents[3]  # src/graylane/bench/machine.py -> the checkout
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def describe() -> dict[str, object]:
    versions = build.Versions()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cores": os.cpu_count(),
        "memory_bytes": _meminfo_total(),
        "loadavg_at_start": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "graylane": metadata.version("graylane"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "kubernetes": versions.kubernetes,
        "etcd": versions.etcd,
        "kwok": versions.kwok,
    }
