"""The renew deadline: one stuck round trip must not cost the lease; a real failure to renew must.

An in-memory lease store with resourceVersion checks stands in for the Lease API (the elector's contract
is its three calls, `LeaseClient`); real leader election against the API server is in
tests/integration/test_leader.py. Timings are short (lease 1.5 s, deadline 1 s, retry 0.2 s) and no test
asserts a duration: they assert who leads.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from graylane.kube.client import ApiError
from graylane.kube.leader import LeaderElectionConfig, LeaderElector
from graylane.kube.resources import Resource

Obj = dict[str, Any]
FAST = LeaderElectionConfig(
    namespace="ns", name="lease", identity="me", lease_duration=1.5, renew_deadline=1.0, retry_period=0.2
)


class LeaseStore:
    """Leases by name; `stuck` PUTs never answer, `failing` makes every call fail."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.stuck = 0  # how many of the next PUTs hang
        self.failing = False
        self.puts = 0
        self.put_made = asyncio.Event()

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        self._maybe_fail()
        return copy.deepcopy(self.lease)

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        self._maybe_fail()
        if self.lease is not None:
            raise ApiError(409, "AlreadyExists", "exists")
        return self._store(obj)

    async def replace(self, res: Resource, obj: Obj) -> Obj:
        self.puts += 1
        self.put_made.set()
        if self.stuck:
            self.stuck -= 1
            await asyncio.Event().wait()  # a request that never gets an answer
        self._maybe_fail()
        assert self.lease is not None
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(obj)

    def _store(self, obj: Obj) -> Obj:
        self.version += 1
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    def _maybe_fail(self) -> None:
        if self.failing:
            raise ApiError(503, "ServiceUnavailable", "the API server is overloaded")


class Run:
    def __init__(self, store: LeaseStore) -> None:
        self.stopped = asyncio.Event()
        self.started = asyncio.Event()
        self.elector = LeaderElector(
            store, FAST, on_started_leading=self.started.set, on_stopped_leading=self.stopped.set
        )
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_a_stuck_renewal_is_retried_beside_it_and_the_lease_is_kept() -> None:
    store = LeaseStore()
    run = Run(store)
    await asyncio.wait_for(run.started.wait(), 5)
    puts_when_leading = store.puts

    store.stuck = 1  # the next renewal hangs for good
    while store.puts < puts_when_leading + 12:  # several renew deadlines' worth of renewals
        store.put_made.clear()
        await asyncio.wait_for(store.put_made.wait(), 5)

    assert run.elector.is_leader
    assert not run.stopped.is_set()
    assert not run.task.done()
    await run.stop()


async def test_the_lease_is_lost_when_no_renewal_lands_within_the_deadline() -> None:
    store = LeaseStore()
    run = Run(store)
    await asyncio.wait_for(run.started.wait(), 5)

    store.failing = True
    await asyncio.wait_for(run.task, 10)  # run() returns: leadership ended

    assert run.stopped.is_set()
    assert not run.elector.is_leader


async def test_every_renewal_stuck_loses_the_lease() -> None:
    store = LeaseStore()
    run = Run(store)
    await asyncio.wait_for(run.started.wait(), 5)

    store.stuck = 1_000
    await asyncio.wait_for(run.task, 10)

    assert run.stopped.is_set()
