"""Expectations against a real Informer on the FakeApi: met by the event, by a later list, at once, or
past the deadline with a re-list asked for; `on_met` fires once per owner when its last one is met."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
from tests.unit.runtime.fakeapi import FakeApi

from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.informer import Informer, ListWatcher
from graylane.kube.workqueue import FakeClock
from graylane.runtime.expectations import Expectations, Want

OWNER = ("ctl", "ns/a")


def configmap(name: str, **data: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns"}, "data": data}


class Rig:
    def __init__(
        self, api: FakeApi, informer: Informer, expectations: Expectations, clock: FakeClock
    ) -> None:
        self.api, self.informer, self.expectations, self.clock = api, informer, expectations, clock
        self.met: list[object] = []

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    api = FakeApi()
    api.put(r.CONFIGMAP, configmap("a", v="1"))
    clock = FakeClock()
    informer = Informer(cast(ListWatcher, api), r.CONFIGMAP)
    met: list[object] = []
    expectations = Expectations(clock, met.append, timeout=30.0)
    expectations.track(informer)
    task = asyncio.create_task(informer.run())
    await informer.has_synced.wait()
    rig = Rig(api, informer, expectations, clock)
    rig.met = met
    try:
        yield rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_written_version_is_awaited_until_its_event_arrives(rig: Rig) -> None:
    rig.api.hold("configmaps")
    written = await rig.api.patch(r.CONFIGMAP, "a", {"data": {"v": "2"}}, "ns")
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, written["metadata"]["resourceVersion"])
    await rig.settle()
    verdict = rig.expectations.check(OWNER)
    assert verdict.waiting
    assert verdict.relist == ()
    assert rig.met == []

    rig.api.release("configmaps")
    await rig.settle()
    assert not rig.expectations.check(OWNER).waiting
    assert rig.met == [OWNER]  # the owner is woken once, when its last expectation is met


async def test_what_the_cache_already_shows_is_met_at_once(rig: Rig) -> None:
    version = rig.informer.version_of("ns", "a") or ""
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, version)  # a no-op patch keeps it
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.PRESENT)
    rig.expectations.expect(OWNER, rig.informer, "ns/gone", Want.ABSENT)
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.CHANGED, "older")
    assert not rig.expectations.check(OWNER).waiting
    assert len(rig.expectations) == 0


async def test_a_conflict_waits_for_a_newer_version_and_a_delete_for_the_deletion(rig: Rig) -> None:
    version = rig.informer.version_of("ns", "a") or ""
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.CHANGED, version)
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.ABSENT)
    assert rig.expectations.check(OWNER).waiting
    await rig.api.patch(r.CONFIGMAP, "a", {"data": {"v": "3"}}, "ns")
    await rig.settle()
    assert len(rig.expectations) == 1  # changed: met; absent: not yet
    await rig.api.remove(r.CONFIGMAP, "a", "ns")
    await rig.settle()
    assert not rig.expectations.check(OWNER).waiting


async def test_a_list_started_after_the_write_meets_it_even_without_the_event(rig: Rig) -> None:
    rig.api.hold("configmaps")
    written = await rig.api.patch(r.CONFIGMAP, "a", {"data": {"v": "4"}}, "ns")
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, "not-the-version-listed")
    assert written["metadata"]["resourceVersion"] != "not-the-version-listed"
    rig.informer.request_relist()  # the list reads the store as it is now: it includes the write
    await rig.settle()
    assert not rig.expectations.check(OWNER).waiting
    assert rig.informer.relists == 2


async def test_past_the_deadline_the_informer_is_named_for_a_relist_and_the_wait_starts_again(
    rig: Rig,
) -> None:
    rig.api.hold("configmaps")
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, "999999")
    rig.clock.advance(10)
    assert rig.expectations.check(OWNER).retry_in == pytest.approx(20)
    rig.clock.advance(25)
    verdict = rig.expectations.check(OWNER)
    assert verdict.waiting
    assert verdict.relist == (rig.informer,)
    rig.expectations.renew(OWNER)
    assert rig.expectations.check(OWNER).relist == ()
    rig.expectations.forget(OWNER)
    assert not rig.expectations.check(OWNER).waiting
    assert len(rig.expectations) == 0


async def test_many_owners_timing_out_on_one_informer_ask_for_one_relist(rig: Rig) -> None:
    rig.api.hold("configmaps")
    for n in range(5):
        rig.expectations.expect(("ctl", f"ns/{n}"), rig.informer, "ns/a", Want.VERSION, "999999")
    rig.clock.advance(31)
    asked = [rig.expectations.check(("ctl", f"ns/{n}")).relist for n in range(5)]
    assert asked == [(rig.informer,), (), (), (), ()]
    rig.clock.advance(31)
    assert rig.expectations.check(("ctl", "ns/1")).relist == (rig.informer,)  # a window later: again


async def test_a_version_overtaken_before_the_write_answered_is_met_at_once(rig: Rig) -> None:
    """The write's own event, then another writer's (a controller reacting at once), both delivered
    before the write's answer registers the expectation: the cache shows a newer version, and the
    written one has been seen. Waiting for it would cost the timeout and a re-list."""
    written = await rig.api.patch(r.CONFIGMAP, "a", {"data": {"v": "mine"}}, "ns")
    await rig.api.patch(r.CONFIGMAP, "a", {"data": {"v": "theirs"}}, "ns")
    await rig.settle()
    assert rig.informer.version_of("ns", "a") != written["metadata"]["resourceVersion"]
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, written["metadata"]["resourceVersion"])
    assert not rig.expectations.check(OWNER).waiting
    # A version never delivered still waits.
    rig.expectations.expect(OWNER, rig.informer, "ns/a", Want.VERSION, "never-seen")
    assert rig.expectations.check(OWNER).waiting
