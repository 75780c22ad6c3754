"""Restart the kube-apiserver of a local cluster that kwokctl's binary runtime runs.

kwokctl has no per-component restart for the binary runtime, but it keeps one pid file per component
(`<cluster dir>/pids/kube-apiserver.pid`) and `kwokctl start cluster` starts whichever component is not
running, from the command line it saved. So a restart is: end that pid, wait for it to exit, ask kwokctl
to start the cluster again (only the API server is missing), and wait for /readyz. `revive` plays the
kubelet for the other components: whichever exited by itself is started again the same way.

What it must not do: signal any process other than the kube-apiserver of the named cluster; the pid is
checked against /proc/<pid>/cmdline first, so a stale pid file never ends someone else's process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from graylane.cluster.local import LocalCluster

__all__ = ["ApiServerRestarter"]


class ApiServerRestarter:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    @property
    def pid_file(self) -> Path:
        return self.cluster.workdir / "clusters" / self.cluster.name / "pids" / "kube-apiserver.pid"

    def pid(self) -> int:
        """The running kube-apiserver's pid; raises if the pid file or the process does not match."""
        pid = int(self.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if not cmdline or not cmdline[0].endswith(b"kube-apiserver"):
            raise RuntimeError(f"pid {pid} from {self.pid_file} is not a kube-apiserver: {cmdline[:1]!r}")
        return pid

    def stop(self, *, grace: float = 3.0) -> int:
        """SIGTERM, then SIGKILL after `grace`; returns the old pid.

        On SIGTERM the API server stops listening and ends its watches at once, but then waits up to a
        minute for requests to drain (measured: 60 s), so the grace is short. The pid file is removed as
        `kwokctl stop` would: a dead process may stay a zombie until init reaps it, and kwokctl takes an
        existing /proc/<pid> for a running component and would then wait forever for it to serve.
        """
        pid = self.pid()
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace):
            os.kill(pid, signal.SIGKILL)
            if not _wait_gone(pid, 10):
                raise RuntimeError(f"kube-apiserver pid {pid} survived SIGKILL")
        if self.pid_file.read_text().strip() == str(pid):
            self.pid_file.unlink()
        return pid

    def start(self, *, timeout: float = 120.0) -> int:
        """`kwokctl start cluster` (starts what is not running) and wait until /readyz answers ok."""
        # kwokctl is driven the way LocalCluster drives it (same binaries, work directory and name).
        self.cluster._kwokctl("start", "cluster", timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cluster.running():
                return self.pid()
            time.sleep(0.5)
        raise RuntimeError(f"kube-apiserver of {self.cluster.name} not ready {timeout:.0f}s after start")

    def revive(self) -> list[str]:
        """Start again every control-plane component that exited by itself; returns their names.

        The kube-controller-manager and kube-scheduler hold leases too: an API-server outage longer than
        their renew deadline makes them exit, as ours does, and in a real cluster the kubelet restarts
        them. Nothing does here, so one outage stopped every Deployment in the run (seen: ~100 s without
        a native rollout moving, until the next API-server restart's `kwokctl start cluster` happened to
        start them again). Their stale pid files go first, as in `stop`.
        """
        exited = []
        for pid_file in sorted(self.pid_file.parent.glob("*.pid")):
            component = pid_file.name.removesuffix(".pid")
            if not _running(pid_file, component):
                exited.append(component)
                pid_file.unlink(missing_ok=True)
        if exited:
            self.cluster._kwokctl("start", "cluster", timeout=120.0)
        return exited


def _running(pid_file: Path, component: str) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    return bool(cmdline) and cmdline[0].endswith(component.encode()) and not _zombie(pid)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
