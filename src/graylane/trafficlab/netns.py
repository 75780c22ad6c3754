"""A network namespace of our own in which every pod IP is local, and a way to run code inside it.

`NetNamespace.create()` makes `gl-<purpose>-<pid>` with loopback up, the pod CIDR routed to `lo`
("AnyIP": every address of 10.123.0.0/17 is local, no per-pod address), and a veth pair whose two ends
both stay inside (kube-apiserver refuses to start without a default route; anything not local is
dropped there). `check_local(ip)` asks the kernel inside the namespace how it routes an address and
refuses anything that is not `local ... dev lo`: it runs before any request is sent.

Processes are started inside with `ip netns exec` (`command()`); Python code runs inside through
`NetnsLoop`, a thread that has entered the namespace with setns(2) and runs an asyncio loop: sockets
belong to the namespace of the thread that creates them, so every connection that loop makes (the
Kubernetes client, the HTTP client) is made inside. `delete()` kills what is left by pid and removes
the namespace; it is safe to call after any failure.

Root is required (CAP_SYS_ADMIN); `require_root()` says so plainly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ipaddress
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

__all__ = ["NetNamespace", "NetnsError", "NetnsLoop", "require_root"]

T = TypeVar("T")
POD_CIDR = "10.123.0.0/17"  # graylane.cluster.local.POD_CIDR
CLONE_NEWNET = 0x40000000
_VETH = ("gla", "glb")
_VETH_ADDRESS = "10.124.0.1/32"


class NetnsError(RuntimeError):
    """The namespace could not be made, entered or checked; the message says why."""


def require_root(purpose: str) -> None:
    if os.geteuid() != 0:
        raise NetnsError(
            f"{purpose} needs a network namespace of its own, and creating one needs root "
            f"(CAP_SYS_ADMIN); run as root, as CI does"
        )


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


class NetNamespace:
    """One namespace this process created (and so may delete)."""

    def __init__(self, name: str, pod_cidr: str = POD_CIDR) -> None:
        if not re.fullmatch(r"gl-[a-z0-9-]{1,40}", name):
            raise NetnsError(f"namespace name {name!r}: use gl-<lowercase letters, digits, dashes>")
        self.name = name
        self.pod_cidr = pod_cidr

    @classmethod
    def create(cls, purpose: str, pod_cidr: str = POD_CIDR, name: str | None = None) -> NetNamespace:
        """`gl-<purpose>-<pid>` (or `name`), set up; root only."""
        require_root(f"real traffic ({purpose})")
        ns = cls(name or f"gl-{purpose}-{os.getpid()}", pod_cidr)
        ns.setup()
        return ns

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def setup(self) -> None:
        if self.exists():
            raise NetnsError(f"network namespace {self.name} already exists; delete it first")
        _ip("netns", "add", self.name)
        try:
            self._configure()
        except Exception:
            self.delete()
            raise

    def _configure(self) -> None:
        inside = ("-n", self.name)
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", "local", self.pod_cidr, "dev", "lo")
        _ip(*inside, "link", "add", _VETH[0], "type", "veth", "peer", "name", _VETH[1])
        for dev in _VETH:
            _ip(*inside, "link", "set", dev, "up")
        _ip(*inside, "addr", "add", _VETH_ADDRESS, "dev", _VETH[0])
        _ip(*inside, "route", "add", "default", "dev", _VETH[0])
        network = ipaddress.ip_network(self.pod_cidr)
        self.check_local(str(network.network_address + 7))

    def check_local(self, address: str) -> None:
        """Refuse unless the kernel inside says `address` is local (it never leaves the namespace)."""
        ip = ipaddress.ip_address(address)
        if ip not in ipaddress.ip_network(self.pod_cidr) and not ip.is_loopback:
            raise NetnsError(f"{address} is neither loopback nor in the pod range {self.pod_cidr}")
        out = _ip("-n", self.name, "route", "get", address).stdout.strip()
        if not re.match(rf"^local {re.escape(address)} dev lo\b", out):
            raise NetnsError(f"route check failed in {self.name}: {address} is not local ({out!r})")

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside: `ip netns exec` execs it, so the pid Popen reports is the program's."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        if not self.exists():
            return []
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]

    def delete(self, timeout: float = 15) -> None:
        """Kill what still runs inside (only our processes can be there), then remove the namespace."""
        deadline = time.monotonic() + timeout
        sig = signal.SIGTERM
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(0.5)
            sig = signal.SIGKILL
        left = self.pids()
        if left:
            raise NetnsError(f"processes {left} are still running in {self.name}; not deleting it")
        if self.exists():
            _ip("netns", "del", self.name)


class NetnsLoop:
    """An asyncio loop on a thread that lives inside the namespace; `run()` a coroutine on it."""

    def __init__(self, ns: NetNamespace) -> None:
        self.ns = ns
        self.loop = asyncio.new_event_loop()
        self._ready = concurrent.futures.Future[None]()
        self._thread = threading.Thread(target=self._main, name=f"netns-{ns.name}", daemon=True)
        self._thread.start()
        self._ready.result(timeout=10)

    def _main(self) -> None:
        try:
            _enter(self.ns.path)
        except BaseException as err:
            self._ready.set_exception(err)
            return
        asyncio.set_event_loop(self.loop)
        self._ready.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` inside and wait for it (from any thread but the loop's own)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` inside from another event loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def _enter(path: str) -> None:
    """setns(2) for the calling thread only (Python 3.11 has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)
