"""Leader election on a real Lease.

The two acceptance cases run with the production defaults (lease 15 s, renew deadline 10 s, retry 2 s):
a clean stop hands over on the standby's next retry; a leader that dies without releasing is replaced
once the lease expires, i.e. after 15 s plus at most two jittered retry periods. The lost-lease case
uses short timings (3 s / 2 s / 0.5 s) to stay quick.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.kube.leader import LeaderElectionConfig, LeaderElector

DEFAULTS = LeaderElectionConfig(namespace="unused")
WORST_TAKEOVER = DEFAULTS.lease_duration + 2 * DEFAULTS.retry_period * (1 + DEFAULTS.jitter)


@dataclasses.dataclass
class Candidate:
    elector: LeaderElector
    task: asyncio.Task[None] | None = None
    started: float | None = None
    stopped: float | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Election:
    """Candidates for one Lease, checking that at most one of them ever leads at a time."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.candidates: list[Candidate] = []
        self.leading: set[str] = set()
        self.overlaps = 0

    def add(self, identity: str, **timings: Any) -> Candidate:
        config = LeaderElectionConfig(namespace=self.namespace, name="test-lease", identity=identity)
        slot: list[Candidate] = []  # the callbacks need the candidate that wraps their elector
        elector = LeaderElector(
            self.kube,
            dataclasses.replace(config, **timings),
            on_started_leading=lambda: self._started(slot[0]),
            on_stopped_leading=lambda: self._stopped(slot[0]),
        )
        slot.append(Candidate(elector))
        self.candidates.append(slot[0])
        return slot[0]

    def _started(self, candidate: Candidate) -> None:
        candidate.started = time.monotonic()
        self.overlaps += bool(self.leading)
        self.leading.add(candidate.elector.identity)

    def _stopped(self, candidate: Candidate) -> None:
        candidate.stopped = time.monotonic()
        self.leading.discard(candidate.elector.identity)

    async def leader(self, within: float) -> Candidate:
        async with asyncio.timeout(within):
            while True:
                leaders = [c for c in self.candidates if c.elector.is_leader]
                if leaders:
                    return leaders[0]
                await asyncio.sleep(0.05)

    async def holder(self) -> str:
        lease = await self.kube.get(r.LEASE, "test-lease", self.namespace)
        return str(lease["spec"].get("holderIdentity") or "")


@pytest.fixture
async def election(kube: KubeClient, namespace: str) -> AsyncIterator[Election]:
    election = Election(kube, namespace)
    yield election
    for candidate in election.candidates:
        if candidate.task is not None:
            await candidate.stop()


async def test_two_candidates_elect_one_and_a_clean_stop_hands_over_at_once(election: Election) -> None:
    a, b = election.add("a"), election.add("b")
    a.start()
    b.start()
    first = await election.leader(within=5)
    second = b if first is a else a
    await asyncio.sleep(2 * DEFAULTS.retry_period)  # both campaigned several times meanwhile
    assert election.leading == {first.elector.identity}
    assert await election.holder() == first.elector.identity

    stopped_at = time.monotonic()
    await first.stop()  # releases the lease on the way out
    await election.leader(within=15)
    assert second.started is not None
    handover = second.started - stopped_at
    assert handover < DEFAULTS.retry_period * (1 + DEFAULTS.jitter) + 1.0
    assert await election.holder() == second.elector.identity
    assert election.overlaps == 0


async def test_a_crashed_leader_is_replaced_after_the_lease_expires(election: Election) -> None:
    a = election.add("a", release_on_cancel=False)
    a.start()
    await election.leader(within=5)
    b = election.add("b")
    b.start()
    await asyncio.sleep(DEFAULTS.retry_period * 2)
    assert not b.elector.is_leader

    crashed_at = time.monotonic()
    await a.stop()  # cancelled without releasing: the lease still names "a"
    assert await election.holder() == "a"
    await election.leader(within=WORST_TAKEOVER + 2)
    assert b.started is not None
    takeover = b.started - crashed_at
    # Never before the lease could have expired (15 s after a renewal at most one retry period old)...
    assert takeover >= DEFAULTS.lease_duration - DEFAULTS.retry_period
    # ...and within the documented bound: lease duration plus two jittered retry periods.
    assert takeover < WORST_TAKEOVER + 0.5
    lease = await election.kube.get(r.LEASE, "test-lease", election.namespace)
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1
    assert election.overlaps == 0


async def test_a_leader_that_cannot_renew_stops_leading(election: Election, kube: KubeClient) -> None:
    a = election.add("a", lease_duration=3, renew_deadline=2, retry_period=0.5)
    a.start()
    await election.leader(within=5)
    lease = await kube.get(r.LEASE, "test-lease", election.namespace)
    lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=3600)
    await kube.replace(r.LEASE, lease)  # someone else now holds a long lease

    assert a.task is not None
    await asyncio.wait_for(a.task, timeout=5)  # run() returns once the renew deadline passes
    assert not a.elector.is_leader
    assert a.stopped is not None
    assert await election.holder() == "intruder"


async def test_release_lets_the_same_lease_be_taken_by_a_newcomer(election: Election) -> None:
    a = election.add("a", lease_duration=3, renew_deadline=2, retry_period=0.5)
    a.start()
    await election.leader(within=5)
    assert await a.elector.release()
    assert a.task is not None
    await asyncio.wait_for(a.task, timeout=5)  # releasing ends run()
    lease = await election.kube.get(r.LEASE, "test-lease", election.namespace)
    assert lease["spec"]["holderIdentity"] == ""
    assert lease["spec"]["leaseDurationSeconds"] == 1

    b = election.add("b", lease_duration=3, renew_deadline=2, retry_period=0.5)
    b.start()
    await election.leader(within=2)
    assert await election.holder() == "b"
