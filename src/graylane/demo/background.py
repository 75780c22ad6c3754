"""Run `graylane controller` in the background for a local cluster, and stop it again by its pid.

The pid file lives next to the cluster's state, so `graylane cluster down` can stop exactly the
controller that the demo started, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["BackgroundController"]


class BackgroundController:
    def __init__(
        self, state_dir: Path, kubeconfig: Path, health_port: int = 18081, webhook_port: int = 19876
    ):
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self.health_port = health_port
        self.webhook_port = webhook_port

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "controller.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "controller.log"

    def pid(self) -> int | None:
        """The pid of the controller we started, if it is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # A stale pid file may name a pid the system has since given to another program: only a
        # process whose command line is our controller's counts as ours.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if b"graylane.cli.main" in cmdline and str(self.kubeconfig).encode() in cmdline else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as resp:
                return int(resp.status) == 200
        except OSError:
            return False

    def start(self, timeout: float = 60) -> int:
        """Start (unless already running) and wait until ready; returns the pid."""
        pid = self.pid()
        if pid is None:
            pid = self._spawn()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or self.pid() is None:
                raise RuntimeError(f"the controller did not become ready; see {self.log_file}")
            time.sleep(0.3)
        return pid

    def _spawn(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
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
        ]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM our controller and wait for it to exit; False if none was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        return True
