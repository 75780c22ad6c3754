"""The write primitives on the FakeApi: guards in every patch type, what each answer becomes, and the
expectation each write leaves for the key's next decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
from tests.unit.runtime.fakeapi import FakeApi

from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.informer import Informer, ListWatcher
from graylane.kube.resources import Resource
from graylane.kube.workqueue import FakeClock
from graylane.runtime.errors import Refused, Stale
from graylane.runtime.expectations import Expectations
from graylane.runtime.writer import Writer

THING = Resource("example.io", "v1", "things", "Thing")
OWNER = ("ctl", "ns/owner")


class Rig:
    def __init__(self, api: FakeApi, informer: Informer, expectations: Expectations) -> None:
        self.api, self.informer, self.expectations = api, informer, expectations

    def writer(self) -> Writer:
        return Writer(cast(KubeClient, self.api), self.expectations, lambda res, ns: [self.informer], OWNER)

    def version(self) -> str:
        found = self.api.stored(THING, "t")
        assert found is not None
        return str(found["metadata"]["resourceVersion"])

    def waiting(self) -> bool:
        return self.expectations.check(OWNER).waiting


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    api = FakeApi()
    api.put(THING, {"metadata": {"name": "t", "namespace": "ns", "finalizers": ["a"]}, "spec": {"x": 1}})
    informer = Informer(cast(ListWatcher, api), THING)
    expectations = Expectations(FakeClock(), lambda _: None)
    expectations.track(informer)
    task = asyncio.create_task(informer.run())
    await informer.has_synced.wait()
    api.hold("things")  # the cache lags: every write leaves something to wait for
    try:
        yield Rig(api, informer, expectations)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("patch_type", "body"),
    [
        ("merge", {"spec": {"x": 2}}),
        ("strategic", {"spec": {"x": 2}}),
        ("json", [{"op": "replace", "path": "/spec", "value": {"x": 2}}]),
    ],
)
async def test_a_guarded_patch_fails_as_stale_once_the_object_moved_on(
    rig: Rig, patch_type: str, body: object
) -> None:
    seen = rig.version()
    await rig.api.patch(THING, "t", {"metadata": {"labels": {"someone": "else"}}}, "ns")
    with pytest.raises(Stale):
        await rig.writer().patch(THING, "t", body, "ns", patch_type=patch_type, guard=seen)  # type: ignore[arg-type]
    assert rig.api.stored(THING, "t") is not None
    assert cast(Obj, rig.api.stored(THING, "t"))["spec"] == {"x": 1}
    assert rig.waiting()  # until the cache shows the newer object


async def test_later_writes_of_a_pass_build_on_its_own_earlier_ones(rig: Rig) -> None:
    writer = rig.writer()
    seen = rig.version()
    await writer.patch(THING, "t", {"spec": {"x": 2}}, "ns", guard=seen)
    await writer.set_finalizers(THING, {"name": "t", "namespace": "ns", "resourceVersion": seen}, ["a", "b"])
    stored = cast(Obj, rig.api.stored(THING, "t"))
    assert (stored["spec"], stored["metadata"]["finalizers"]) == ({"x": 2}, ["a", "b"])
    assert writer.writes == 2


async def test_a_taken_name_is_no_error_but_waits_to_be_seen(rig: Rig) -> None:
    writer = rig.writer()
    created = await writer.create(THING, {"metadata": {"name": "t", "namespace": "ns"}})
    assert created is None
    # The name was cached already: nothing to wait for; a name the cache has not shown is awaited.
    assert not rig.waiting()
    await rig.api.create(THING, {"metadata": {"name": "u", "namespace": "ns"}}, "ns")
    assert await writer.create(THING, {"metadata": {"name": "u", "namespace": "ns"}}) is None
    assert rig.waiting()


async def test_a_delete_held_by_finalizers_waits_for_the_marked_version_then_the_absence(rig: Rig) -> None:
    writer = rig.writer()
    await writer.delete(THING, "t", "ns")
    marked = cast(Obj, rig.api.stored(THING, "t"))
    assert marked["metadata"]["deletionTimestamp"]
    assert rig.waiting()
    await writer.delete(THING, "gone", "ns")  # already gone: fine, and nothing more to wait for


async def test_a_delete_of_another_incarnation_is_stale(rig: Rig) -> None:
    with pytest.raises(Stale):
        await rig.writer().delete(THING, "t", "ns", uid="an-older-uid")
    assert rig.api.stored(THING, "t") is not None


async def test_a_patch_of_a_gone_object_is_stale(rig: Rig) -> None:
    with pytest.raises(Stale):
        await rig.writer().patch(THING, "missing", {"spec": {}}, "ns")


@pytest.mark.parametrize(("code", "reason"), [(400, "BadRequest"), (403, "Forbidden"), (422, "Invalid")])
async def test_refusals_are_told_apart_from_failures(rig: Rig, code: int, reason: str) -> None:
    rig.api.fail("patch", "things", code, reason, "denied")
    with pytest.raises(Refused) as raised:
        await rig.writer().patch(THING, "t", {"spec": {"x": 3}}, "ns")
    assert raised.value.describe() == f"graylane could not patch Thing t: {code} denied"


@pytest.mark.parametrize(("code", "reason"), [(429, "TooManyRequests"), (500, "InternalError"), (503, "")])
async def test_throttling_and_server_errors_go_back_to_the_caller(rig: Rig, code: int, reason: str) -> None:
    rig.api.fail("patch", "things", code, reason)
    with pytest.raises(ApiError):
        await rig.writer().patch(THING, "t", {"spec": {"x": 3}}, "ns")


class LateAnswers:
    """A client whose answers are read late: before a write's response comes back, the object is written
    again by someone else (the controller-manager's status update) and the informer delivers both."""

    def __init__(self, api: FakeApi, informer: Informer) -> None:
        self.api, self.informer = api, informer

    async def _late(self, written: Obj, name: str) -> Obj:
        self.api.release("things")
        await self.api.patch(THING, name, {"status": {"by": "someone else"}}, "ns", subresource="status")
        newest = cast(Obj, self.api.stored(THING, name))["metadata"]["resourceVersion"]
        for _ in range(200):  # the informer has delivered ours and the newer one
            if (self.informer.version_of("ns", name) or "") == newest:
                break
            await asyncio.sleep(0)
        return written

    async def patch(self, res: Resource, name: str, body: object, namespace: str | None, **kw: object) -> Obj:
        return await self._late(await self.api.patch(res, name, body, namespace, **kw), name)  # type: ignore[arg-type]

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        created = await self.api.create(res, obj, namespace)
        return await self._late(created, str(created["metadata"]["name"]))


async def test_a_version_delivered_before_the_answer_was_read_is_not_awaited(rig: Rig) -> None:
    late = LateAnswers(rig.api, rig.informer)
    writer = Writer(cast(KubeClient, late), rig.expectations, lambda res, ns: [rig.informer], OWNER)
    written = await writer.patch(THING, "t", {"spec": {"x": 2}}, "ns")
    # The cache is past our version already: waiting for our version's event would wait for good.
    assert rig.informer.version_of("ns", "t") != written["metadata"]["resourceVersion"]
    assert not rig.waiting()


@pytest.mark.parametrize("meta", [{"name": "named"}, {"generateName": "generated-"}])
async def test_a_created_object_seen_before_the_answer_is_not_awaited(rig: Rig, meta: Obj) -> None:
    late = LateAnswers(rig.api, rig.informer)
    writer = Writer(cast(KubeClient, late), rig.expectations, lambda res, ns: [rig.informer], OWNER)
    created = await writer.create(THING, {"metadata": {**meta, "namespace": "ns"}})
    assert created is not None
    name = created["metadata"]["name"]
    assert rig.informer.version_of("ns", name) != created["metadata"]["resourceVersion"]
    assert not rig.waiting()


async def test_a_generated_name_not_yet_cached_is_awaited(rig: Rig) -> None:
    created = await rig.writer().create(THING, {"metadata": {"generateName": "g-", "namespace": "ns"}})
    assert created is not None
    assert rig.waiting()  # the cache lags (held): the new object must be seen before deciding again
