"""Run `graylane controller` in the background for a local cluster, and stop it again by its pid.

The pid and the ports it was given are written next to the cluster's state, so `graylane cluster
down` stops exactly the controller that the demo started and nothing else, and readiness is asked
of that controller's own port (another graylane on this machine must not answer for it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["BackgroundController"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundController:
    def __init__(self, state_dir: Path, kubeconfig: Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig

    @property
    def state_file(self) -> Path:
        return self.state_dir / "controller.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "controller.log"

    def _state(self) -> dict[str, int]:
        try:
            data = json.loads(self.state_file.read_text())
            return {k: int(data[k]) for k in ("pid", "health_port", "webhook_port")}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def pid(self) -> int | None:
        """The pid of the controller we started, if it is still alive."""
        pid = self._state().get("pid")
        if pid is None:
            return None
        # A stale file may name a pid the system has since given to another program: only a process
        # whose command line is our controller's, for this cluster, counts as ours.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        alive = stat.rsplit(")", 1)[-1].split()[0] != "Z"
        ours = b"graylane.cli.main" in cmdline and str(self.kubeconfig).encode() in cmdline
        return pid if alive and ours else None

    def ready(self) -> bool:
        port = self._state().get("health_port")
        if port is None or self.pid() is None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                return int(resp.status) == 200
        except OSError:
            return False

    def start(self, timeout: float = 60) -> int:
        """Start (unless already running) and wait until ready; returns the pid."""
        pid = self.pid() or self._spawn()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or self.pid() is None:
                raise RuntimeError(f"the controller did not become ready; see {self.log_file}")
            time.sleep(0.3)
        return pid

    def _spawn(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ports = {"health_port": _free_port(), "webhook_port": _free_port()}
        cmd = [
            sys.executable,
            "-m",
            "graylane.cli.main",
            "controller",
            "--kubeconfig",
            str(self.kubeconfig),
            "--health-port",
            str(ports["health_port"]),
            "--webhook-port",
            str(ports["webhook_port"]),
        ]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.state_file.write_text(json.dumps({"pid": proc.pid, **ports}))
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
            self.state_file.unlink()
        return True
