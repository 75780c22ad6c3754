"""Watch filters: which updates reach a controller's queue."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from tests.unit.runtime.fakeapi import FakeApi

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.runtime.manager import Manager, ManagerOptions
from graylane.runtime.predicates import beyond_status, spec_or_metadata


def dep(**changes: Any) -> Obj:
    obj: Obj = {
        "metadata": {
            "name": "d",
            "namespace": "ns",
            "generation": 2,
            "resourceVersion": "10",
            "labels": {"app": "a"},
            "annotations": {"x": "1"},
        },
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 1},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        obj[section] = {**obj[section], key: value}
    return obj


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({"status__readyReplicas": 2, "metadata__resourceVersion": "11"}, False),  # progress only
        ({"status__conditions": [{"type": "Available"}]}, False),
        ({"metadata__generation": 3}, True),  # a spec change
        ({"status__observedGeneration": 1}, True),  # its controller caught up (or fell behind)
        ({"metadata__labels": {"app": "b"}}, True),
        ({"metadata__annotations": {}}, True),
        ({"metadata__deletionTimestamp": "2026-01-01T00:00:00Z"}, True),
        ({"metadata__finalizers": ["f"]}, True),
        ({"metadata__ownerReferences": [{"uid": "u"}]}, True),
    ],
)
def test_only_status_progress_is_filtered(changed: dict[str, Any], expected: bool) -> None:
    assert beyond_status(dep(), dep(**changed)) is expected


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({"status__observedGeneration": 1}, False),  # a spec-and-metadata reader ignores all status
        ({"status__readyReplicas": 2}, False),
        ({"metadata__generation": 3}, True),
        ({"metadata__labels": {"app": "b"}}, True),
    ],
)
def test_spec_or_metadata_ignores_the_whole_status(changed: dict[str, Any], expected: bool) -> None:
    assert spec_or_metadata(dep(), dep(**changed)) is expected


def test_an_object_without_a_generation_always_counts() -> None:
    configmap = {"metadata": {"name": "c", "resourceVersion": "1"}, "data": {"a": "1"}}
    assert beyond_status(configmap, {**configmap, "data": {"a": "2"}}) is True
    assert spec_or_metadata(configmap, {**configmap, "data": {"a": "2"}}) is True


class Queued:
    name = "queued"
    workers = 1

    def setup(self, manager: Manager) -> None:
        manager.watch(self, r.DEPLOYMENT, changed=beyond_status)

    async def reconcile(self, key: str) -> float | None:
        return None


async def test_the_manager_skips_filtered_updates_but_never_adds_or_deletes() -> None:
    api = FakeApi()
    options = ManagerOptions(leader_election=False, handle_signals=False, probe_port=0)
    manager = Manager(cast(KubeClient, api), options, own_client=False)
    manager.add(Queued())
    queue = manager.queue("queued")

    async def settle() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    async def drained() -> list[str]:
        await settle()
        keys = []
        while len(queue):
            key = await queue.get()
            queue.done(key)
            keys.append(key)
        return keys

    async with manager.caches():
        await api.create(r.DEPLOYMENT, dep())
        assert await drained() == ["ns/d"]  # added
        stored = api.stored(r.DEPLOYMENT, "d", "ns")
        assert stored is not None
        await api.replace(r.DEPLOYMENT, {**stored, "status": {"observedGeneration": 2, "readyReplicas": 3}})
        assert await drained() == []  # status progress: skipped
        await api.patch(r.DEPLOYMENT, "d", {"metadata": {"labels": {"app": "b"}}}, "ns")
        assert await drained() == ["ns/d"]
        await api.delete(r.DEPLOYMENT, "d", "ns")
        assert await drained() == ["ns/d"]  # deleted
