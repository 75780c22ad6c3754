"""Run `graylane controller` as a separate process for the benchmark, read its /metrics, stop it by pid.

A separate process so that its RSS and CPU time can be read from /proc/<pid> without the benchmark's
own allocations mixed in. The command line is the one a user runs:
`python -m graylane.cli.main controller --kubeconfig K --health-port P --webhook-port W`.

What it must not do: stop any process but the one it started (it keeps the Popen handle and
signals that pid only).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["ControllerProcess", "ControllerStartError", "free_port"]


class ControllerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControllerProcess:
    """One controller; `start()` may follow `stop()` (same ports, so the webhook URL stays valid)."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, *, workers: int | None = None, leader_elect: bool = True
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = free_port()
        self.webhook_port = free_port()
        self.workers = workers
        self.leader_elect = leader_elect
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the controller is not started")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "graylane.cli.main",
            "controller",
            "--kubeconfig",
            str(self.kubeconfig),
            "--health-port",
            str(self.health_port),
            "--webhook-port",
            str(self.webhook_port),
            "--identity",
            "graylane-bench",
        ]
        if self.workers is not None:
            cmd += ["--rollout-workers", str(self.workers)]
        if not self.leader_elect:
            cmd.append("--no-leader-elect")
        return cmd

    def start(self) -> int:
        if self.alive():
            raise RuntimeError("already running")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        return self._proc.pid

    async def wait_ready(self, timeout: float) -> float:
        """Seconds until /readyz answers 200 (informers synced and webhooks installed)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                raise ControllerStartError(f"the controller exited; see {self.log_path}")
            if await asyncio.to_thread(self._get_status, "/readyz") == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise ControllerStartError(f"the controller was not ready after {timeout:.0f}s; see {self.log_path}")

    def _get_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            return None

    async def metrics(self) -> str:
        """The text of /metrics ("" when it cannot be read, e.g. the process is gone)."""
        return await asyncio.to_thread(self._read_metrics)

    def _read_metrics(self) -> str:
        try:
            url = f"http://127.0.0.1:{self.health_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as resp:
                return bytes(resp.read()).decode()
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM our pid, SIGKILL it if it has not exited after `timeout`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
