"""Run the real `graylane controller` as a child process, as a user would, and stop it by its pid.

Ports are picked once per process object so that a restart keeps serving the webhook URL that the
API server was configured with.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControllerProcess:
    """One controller identity; start() / stop() / kill() may be called repeatedly."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        *,
        identity: str,
        install: bool = True,
        namespace: str = "kruise-rollout",
        webhook_port: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.identity = identity
        self.install = install
        self.namespace = namespace
        self.webhook_port = webhook_port or free_port()
        self.health_port = free_port()
        self.extra = extra
        self.log_path = log_dir / f"controller-{identity}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where this run's lines begin in the (appended) log

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "graylane.cli.main",
            "controller",
            "--kubeconfig",
            str(self.kubeconfig),
            "--identity",
            self.identity,
            "--namespace",
            self.namespace,
            "--webhook-port",
            str(self.webhook_port),
            "--health-port",
            str(self.health_port),
            "--install" if self.install else "--no-install",
            *self.extra,
        ]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )

    def probe(self, path: str) -> int | None:
        """HTTP status of a probe endpoint on 127.0.0.1, or None when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=2) as resp:
                return int(resp.status)
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"controller exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.probe("/readyz") == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"controller not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def wait_installed(self, timeout: float = 60) -> None:
        """Until this run, as the leader, has pointed the CRDs and webhook configurations at itself (only
        the leader does, once it holds the lease: /readyz says nothing about that)."""
        needle = f"point at https://127.0.0.1:{self.webhook_port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"controller exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), self.log_path.open("rb") as log:
                log.seek(self._log_start)
                if needle in log.read().decode(errors="replace"):
                    return
            time.sleep(0.2)
        raise AssertionError(
            f"controller did not install its webhooks within {timeout:.0f}s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait: the controller releases its lease and exits 0."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: no clean-up at all, as in a node crash."""
        return self._end(signal.SIGKILL, 10)

    def _end(self, sig: signal.Signals, timeout: float) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""
