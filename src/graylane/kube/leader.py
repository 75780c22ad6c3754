"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics and default timings.

Defaults: lease 15 s, renew deadline 10 s, retry period 2 s. A candidate takes the lease when it is
free (holderIdentity "") or when the holder has not renewed it for leaseDurationSeconds *as observed
locally* (time since this process last saw the record change; the holder's clock is never trusted).
Writes are PUTs carrying the resourceVersion that was read, so two candidates cannot both win.
A leader that has not renewed within the renew deadline (counted from the start of its last successful
renewal, see `_renew_within_deadline`) stops leading; a clean shutdown releases the
lease (holder "", duration 1 s) so a standby takes over on its next retry instead of after 15 s.

Worst-case takeover after a leader dies without releasing: lease_duration + 2 retry periods (one to
observe its last renewal, one to notice the expiry), each stretched by up to `jitter`.

This module must not start or stop workers itself: it reports through the two callbacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
import socket
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from typing import Any, Protocol

from graylane.kube.client import ApiError, Obj
from graylane.kube.resources import LEASE, Resource
from graylane.kube.workqueue import Clock, SystemClock

__all__ = [
    "DEFAULT_LEASE_NAME",
    "KRUISE_LEASE_NAME",
    "LeaderElectionConfig",
    "LeaderElector",
    "LeaseClient",
    "default_identity",
    "lease_name",
]

DEFAULT_LEASE_NAME = "graylane-controller"
KRUISE_LEASE_NAME = "71ddec2c.kruise.io"  # kruise-rollout's controller-runtime election ID
log = logging.getLogger(__name__)


class LeaseClient(Protocol):
    """The KubeClient calls the elector makes (a fake implements them in unit tests)."""

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None: ...

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj: ...

    async def replace(self, res: Resource, obj: Obj) -> Obj: ...


def default_identity() -> str:
    """`<hostname>_<uuid>`, client-go's holder identity: unique even for two processes on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def lease_name(kruise_compat: bool) -> str:
    """In kruise-compat mode share Kruise's lease, so graylane and kruise-rollout never both lead."""
    return KRUISE_LEASE_NAME if kruise_compat else DEFAULT_LEASE_NAME


def _micro_time(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = dataclasses.field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # client-go stretches acquire retries by up to 120%; 20% keeps the worst-case takeover near 20 s.
    jitter: float = 0.2
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period * (1 + self.jitter) > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period * (1 + jitter) > 0")


class LeaderElector:
    """Campaigns for one Lease; `run()` returns when leadership ends, `release()` gives it up."""

    def __init__(
        self,
        client: LeaseClient,
        config: LeaderElectionConfig,
        *,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        clock: Clock | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.config = config
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock = clock or SystemClock()
        self._rng = rng
        self._lease: Obj | None = None  # the last version we read or wrote
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0  # monotonic start of the last successful acquire or renewal
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def identity(self) -> str:
        return self.config.identity

    async def run(self) -> None:
        """Acquire, then renew until that fails; on cancellation release first if configured to."""
        try:
            await self._acquire()
            self._set_leading(True)
            await self._renew_until_lost()
        except asyncio.CancelledError:
            if self._leading and self.config.release_on_cancel:
                await asyncio.wait_for(self.release(), self.config.renew_deadline)
            raise
        finally:
            self._set_leading(False)

    async def release(self) -> bool:
        """Give the lease up now (holder "", duration 1 s); True when released or no longer ours."""
        if not self._leading or self._lease is None:
            return True
        self._set_leading(False)  # stop the renew loop from taking the free lease straight back
        lease: Obj | None = self._lease
        try:
            for _ in range(2):  # a renewal cancelled in flight may still have landed: retry on a fresh read
                if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                    return True
                if await self._write_release(lease):
                    return True
                lease = await self.client.get_or_none(LEASE, self.config.name, self.config.namespace)
        except Exception as err:
            log.warning("could not release the lease", extra={"lease": self.config.name, "error": repr(err)})
        return False

    async def _write_release(self, lease: Obj) -> bool:
        now = _micro_time(dt.datetime.now(dt.UTC))
        released = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}
        try:
            self._lease = await self.client.replace(LEASE, {**lease, "spec": {**lease["spec"], **released}})
        except ApiError as err:
            if err.conflict:
                return False
            raise
        log.info("released the lease", extra={"lease": self.config.name, "identity": self.identity})
        return True

    async def _acquire(self) -> None:
        log.info("campaigning for the lease", extra={"lease": self.config.name, "identity": self.identity})
        while await self._attempt() is None:
            period = self.config.retry_period
            await asyncio.sleep(period * (1 + self.config.jitter * self._rng()))
        log.info("acquired the lease", extra={"lease": self.config.name, "identity": self.identity})

    async def _renew_until_lost(self) -> None:
        while self._leading:
            # Paced from the start of the last renewal, so a slow round trip does not delay the next.
            await asyncio.sleep(max(self._renewed_at + self.config.retry_period - self._clock.monotonic(), 0))
            if self._leading and not await self._renew_within_deadline():
                log.error(
                    "lost the lease: not renewed within the renew deadline",
                    extra={"lease": self.config.name, "identity": self.identity},
                )
                return

    async def _renew_within_deadline(self) -> bool:
        """Renew before `renew_deadline` has passed since the last renewal *began*; False when that fails.

        Others may take the lease `lease_duration` after they saw our last write, and that write began
        no later than `_renewed_at`: stopping at `_renewed_at + renew_deadline` leaves the 5 s margin
        client-go intends, however long the round trips take. A round trip that is merely slow is not a
        failure: it stays in flight until the deadline, and every retry period another attempt starts
        beside it, so one stuck request (a dead connection, a slow moment of the API server) cannot use
        up the whole window on its own. Concurrent attempts are safe: each PUT carries the
        resourceVersion it read, and a 409 falls back to a fresh read.
        """
        deadline = self._renewed_at + self.config.renew_deadline
        attempts: set[asyncio.Task[float | None]] = set()
        try:
            while (remaining := deadline - self._clock.monotonic()) > 0:
                attempts.add(asyncio.create_task(self._attempt()))
                next_attempt = self._clock.monotonic() + min(self.config.retry_period, remaining)
                while attempts and (wait := next_attempt - self._clock.monotonic()) > 0:
                    done, attempts = await asyncio.wait(attempts, timeout=wait, return_when=FIRST_COMPLETED)
                    if any(task.result() is not None for task in done):
                        return True
                if not attempts:  # every attempt failed fast: wait out the retry period before the next
                    await asyncio.sleep(max(next_attempt - self._clock.monotonic(), 0))
            return False
        finally:
            for task in attempts:
                task.cancel()
            await asyncio.gather(*attempts, return_exceptions=True)

    async def _attempt(self) -> float | None:
        """One acquire-or-renew; the monotonic time it began when it succeeded, else None."""
        began = self._clock.monotonic()
        if not await self._try_acquire_or_renew():
            return None
        self._renewed_at = max(self._renewed_at, began)
        return began

    async def _try_acquire_or_renew(self) -> bool:
        try:
            if self._leading and self._lease is not None and await self._update(self._lease):
                return True  # fast path: the lease is as we last wrote it, no GET needed
            lease = await self.client.get_or_none(LEASE, self.config.name, self.config.namespace)
            if lease is None:
                return await self._create()
            self._observe(lease)
            return self._can_take(lease.get("spec") or {}) and await self._update(lease)
        except Exception as err:  # API down, timeouts: a failed attempt, retried by the caller
            log.debug("lease attempt failed", extra={"lease": self.config.name, "error": repr(err)})
            return False

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        record = tuple(
            spec.get(f)
            for f in (
                "holderIdentity",
                "renewTime",
                "acquireTime",
                "leaseTransitions",
                "leaseDurationSeconds",
            )
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = self._clock.monotonic()

    def _can_take(self, spec: Obj) -> bool:
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return True
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        return self._observed_at + duration <= self._clock.monotonic()

    def _next_spec(self, spec: Obj) -> Obj:
        now = _micro_time(dt.datetime.now(dt.UTC))
        renewal = {
            "holderIdentity": self.identity,
            "renewTime": now,
            "leaseDurationSeconds": round(self.config.lease_duration),
        }
        if spec.get("holderIdentity") == self.identity and self._leading:
            return {**spec, **renewal}
        taken_over = spec.get("holderIdentity") is not None  # a new lease starts at 0 transitions
        transitions = int(spec.get("leaseTransitions") or 0) + int(taken_over)
        return {**spec, **renewal, "acquireTime": now, "leaseTransitions": transitions}

    async def _update(self, lease: Obj) -> bool:
        """PUT with the resourceVersion read; a 409 means another candidate wrote first."""
        body = {**lease, "spec": self._next_spec(lease.get("spec") or {})}
        try:
            self._lease = await self.client.replace(LEASE, body)
        except Exception as err:
            log.debug("lease update rejected", extra={"lease": self.config.name, "error": repr(err)})
            return False
        self._observe(self._lease)
        return True

    async def _create(self) -> bool:
        meta = {"name": self.config.name, "namespace": self.config.namespace}
        body = {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": meta,
            "spec": {**self._next_spec({}), "leaseTransitions": 0},
        }
        try:
            self._lease = await self.client.create(LEASE, body)
        except Exception as err:
            log.debug("lease create rejected", extra={"lease": self.config.name, "error": repr(err)})
            return False
        self._observe(self._lease)
        return True

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        callback = self._on_started if leading else self._on_stopped
        if callback is not None:
            callback()
