"""Faults injected during a chaos run, one at a time, from the run's seeded random source.

- kill: SIGKILL of the graylane controller, restarted after up to 3 s (as a crashed pod is);
- apiserver: the kube-apiserver stopped and started again; the controller keeps running and must
  recover by itself (it is only checked, never restarted, unless it died);
- cut: about half or all of the controller's connections to the API server aborted by the proxy it
  talks through (watches and requests alike).

The API server is restarted as the second fault, so every run has one however short it is, and then
rarely. Between faults a watchdog checks that the controller has not exited on its own, and starts again
any control-plane component that exited (the kube-controller-manager and scheduler lose their leases in
an outage too, and a kubelet would restart them).
"""

from __future__ import annotations

import asyncio
import random
import time

from tests.chaos.apiserver import ApiServerRestarter
from tests.chaos.proxy import CutProxy
from tests.chaos.report import Report
from tests.integration.controller_fixtures import ControllerProcess

__all__ = ["FaultInjector"]

GAP = (6.0, 20.0)  # seconds between two faults
READY_TIMEOUT = 120.0
WATCHDOG = 1.0
LEASE_GRACE = 60.0  # an exit this soon after an outage, having lost the lease, is the outage's doing
LEASE_LOST = "lost the lease"  # what the leader elector logs when it loses the lease


class FaultInjector:
    def __init__(
        self,
        kinds: frozenset[str],
        rng: random.Random,
        controller: ControllerProcess,
        proxy: CutProxy,
        apiserver: ApiServerRestarter,
        report: Report,
    ) -> None:
        self.kinds = kinds
        self.rng = rng
        self.controller = controller
        self.proxy = proxy
        self.apiserver = apiserver
        self.report = report
        self.count = 0
        self.outage_ended: float | None = None
        self.outage_log_offset = 0  # the controller log's size when the last outage began

    def next_kind(self) -> str:
        self.count += 1
        if "apiserver" in self.kinds and (self.count == 2 or self.rng.random() < 0.05):
            return "apiserver"
        others = sorted(self.kinds - {"apiserver"})
        if not others:
            return "apiserver"
        return self.rng.choices(others, weights=[0.45 if k == "kill" else 0.55 for k in others])[0]

    async def run(self, stop: asyncio.Event) -> None:
        if not self.kinds:
            await self._watch_until(stop, None)
            return
        while not stop.is_set():
            if await self._watch_until(stop, time.monotonic() + self.rng.uniform(*GAP)):
                return
            kind = self.next_kind()
            await {"kill": self._kill, "apiserver": self._restart_apiserver, "cut": self._cut}[kind]()
            self.report.faults[kind] += 1

    async def _watch_until(self, stop: asyncio.Event, until: float | None) -> bool:
        """Watch the controller until `until` (None: until stopped); True when `stop` is set."""
        while until is None or time.monotonic() < until:
            await self._check_alive("between faults")
            await self._revive_control_plane()
            try:
                await asyncio.wait_for(stop.wait(), WATCHDOG)
                return True
            except TimeoutError:
                continue
        return False

    async def _check_alive(self, when: str) -> None:
        proc = self.controller.proc
        if proc is None or proc.poll() is None:
            return
        code, log = proc.returncode, self.controller.log_path
        if self._lost_lease_in_outage():
            # An outage longer than the lease's renew deadline costs the lease, and a controller that lost
            # it exits to be restarted (controller-runtime does the same); the harness plays the kubelet.
            self.report.faults["controller exit after losing its lease in an outage"] += 1
            self.report.note(f"the controller exited with {code} after losing its lease in the outage")
        else:
            self.report.violation(f"the controller exited by itself ({when}) with {code}; log {log}")
        await self._start()

    async def _revive_control_plane(self) -> None:
        """The kubelet's part for the cluster's own components (see ApiServerRestarter.revive)."""
        revived = await asyncio.to_thread(self.apiserver.revive)
        for component in revived:
            self.report.faults[f"{component} exit after an outage"] += 1
            self.report.note(f"{component} had exited (its lease lost in an outage); started it again")

    def _lost_lease_in_outage(self) -> bool:
        recent = self.outage_ended is not None and time.monotonic() - self.outage_ended < LEASE_GRACE
        # Everything logged since the outage began: its reconcile errors carry tracebacks of several KB
        # each, so a fixed tail (20,000 characters were tried) loses the line among them.
        return recent and LEASE_LOST in self._log_since(self.outage_log_offset)

    def _log_since(self, offset: int) -> str:
        try:
            with self.controller.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_size(self) -> int:
        try:
            return self.controller.log_path.stat().st_size
        except OSError:
            return 0

    async def _kill(self) -> None:
        await asyncio.to_thread(self.controller.kill)
        down = self.rng.uniform(0.0, 3.0)
        self.report.note(f"fault: controller SIGKILLed, restarting in {down:.1f}s")
        await asyncio.sleep(down)
        await self._start()

    async def _start(self) -> None:
        self.controller.start()
        try:
            await asyncio.to_thread(self.controller.wait_ready, READY_TIMEOUT)
        except AssertionError as err:
            self.report.violation(f"the controller did not become ready after a start: {err}")

    async def _restart_apiserver(self) -> None:
        self.outage_log_offset = self._log_size()
        pid = await asyncio.to_thread(self.apiserver.stop)
        down = self.rng.uniform(0.0, 3.0)
        self.report.note(f"fault: kube-apiserver {pid} stopped, starting it in {down:.1f}s")
        await asyncio.sleep(down)
        began = time.monotonic()
        new = await asyncio.to_thread(self.apiserver.start)
        self.outage_ended = time.monotonic()
        self.report.note(f"fault: kube-apiserver {new} ready after {self.outage_ended - began:.1f}s")
        # The controller must come back by itself: ready again, or (lease lost) exited to be restarted.
        deadline = time.monotonic() + READY_TIMEOUT
        while await asyncio.to_thread(self.controller.probe, "/readyz") != 200:
            proc = self.controller.proc
            if proc is not None and proc.poll() is not None:
                await self._check_alive("after the API server restart")
                return
            if time.monotonic() > deadline:
                wait = f"{READY_TIMEOUT:.0f}s"
                self.report.violation(
                    f"the controller neither ready nor exited {wait} after the API server's restart"
                )
                return
            await asyncio.sleep(0.5)
        self.report.note(
            f"fault: controller ready {time.monotonic() - began:.1f}s after the API server restart"
        )

    async def _cut(self) -> None:
        fraction = self.rng.choice([0.5, 1.0])
        # Which connections are open depends on timing; a child source keeps this seed's later draws.
        picker = random.Random(self.rng.random())
        cut = await asyncio.to_thread(self.proxy.cut, fraction, picker)
        self.report.note(f"fault: cut {cut} of the controller's connections ({fraction:.0%})")
