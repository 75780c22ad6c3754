"""The webhook's cache-backed listers: the API lister until the informer synced, then the cache, as copies."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from graylane.kube.informer import Store
from graylane.webhook.cache import (
    OWNER_INDEX,
    CachedReplicaSetLister,
    CachedRolloutLister,
    controller_uids,
    json_copy,
)

Obj = dict[str, Any]


class StoreCache:
    """The InformerCache surface over a real informer Store, synced when the test says so."""

    def __init__(self, objects: list[Obj]) -> None:
        self.store = Store()
        for obj in objects:
            self.store.upsert(obj)
        self.has_synced = asyncio.Event()

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        return self.store.list(namespace)

    def add_index(self, name: str, fn: Any) -> None:
        self.store.add_index(name, fn)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return self.store.by_index(name, value)


class ApiLister:
    """Stands in for the API listers: records that it was asked."""

    def __init__(self) -> None:
        self.asked: builtins.list[tuple[str, str | None]] = []

    async def list_rollouts(self, namespace: str) -> builtins.list[Obj]:
        self.asked.append((namespace, None))
        return [rollout(namespace, "from-api")]

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> builtins.list[Obj]:
        self.asked.append((namespace, owner_uid))
        return [replica_set(namespace, "from-api", owner_uid or "")]


def rollout(namespace: str, name: str) -> Obj:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"workloadRef": {"name": "web"}}}


def replica_set(namespace: str, name: str, owner: str, *, controller: bool = True) -> Obj:
    ref = {"kind": "Deployment", "name": "web", "uid": owner, "controller": controller}
    return {"metadata": {"namespace": namespace, "name": name, "ownerReferences": [ref]}}


async def test_rollouts_come_from_the_api_until_synced_then_from_the_cache() -> None:
    cache = StoreCache([rollout("a", "one"), rollout("a", "two"), rollout("b", "three")])
    api = ApiLister()
    lister = CachedRolloutLister(cache, api)

    unsynced = await lister.list_rollouts("a")
    cache.has_synced.set()
    synced = await lister.list_rollouts("a")

    assert [ro["metadata"]["name"] for ro in unsynced] == ["from-api"]
    assert [ro["metadata"]["name"] for ro in synced] == ["one", "two"]
    assert api.asked == [("a", None)]


async def test_listed_rollouts_are_copies_the_caller_may_change() -> None:
    cache = StoreCache([rollout("a", "one")])
    cache.has_synced.set()

    (listed,) = await CachedRolloutLister(cache, ApiLister()).list_rollouts("a")
    listed["spec"]["workloadRef"]["name"] = "changed"
    listed["metadata"].setdefault("labels", {})["x"] = "y"

    assert cache.list("a") == [rollout("a", "one")]


async def test_replica_sets_are_looked_up_by_controller_owner_within_the_namespace() -> None:
    cache = StoreCache(
        [
            replica_set("a", "web-1", "uid-web"),
            replica_set("a", "web-2", "uid-web"),
            replica_set("a", "other", "uid-other"),
            replica_set("a", "adopted-not", "uid-web", controller=False),
        ]
    )
    cache.has_synced.set()
    lister = CachedReplicaSetLister(cache, ApiLister())

    owned = await lister.list_replicasets("a", "uid-web")
    elsewhere = await lister.list_replicasets("b", "uid-web")
    everything = await lister.list_replicasets("a")

    assert [rs["metadata"]["name"] for rs in owned] == ["web-1", "web-2"]
    assert elsewhere == []
    assert len(everything) == 4
    owned[0]["metadata"]["name"] = "changed"
    assert cache.by_index(OWNER_INDEX, "uid-web")[0]["metadata"]["name"] == "web-1"


async def test_replica_sets_come_from_the_api_until_synced() -> None:
    cache = StoreCache([replica_set("a", "web-1", "uid-web")])
    api = ApiLister()

    listed = await CachedReplicaSetLister(cache, api).list_replicasets("a", "uid-web")

    assert [rs["metadata"]["name"] for rs in listed] == ["from-api"]
    assert api.asked == [("a", "uid-web")]


def test_two_listers_over_one_informer_share_its_owner_index() -> None:
    cache = StoreCache([])
    CachedReplicaSetLister(cache, ApiLister())
    CachedReplicaSetLister(cache, ApiLister())  # must not fail on the index the first one added

    cache.store.upsert(replica_set("a", "web-1", "uid-web"))
    assert [rs["metadata"]["name"] for rs in cache.by_index(OWNER_INDEX, "uid-web")] == ["web-1"]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (replica_set("a", "x", "u1"), ["u1"]),
        (replica_set("a", "x", "u1", controller=False), []),
        ({"metadata": {"name": "x"}}, []),
        ({"metadata": {"ownerReferences": [{"controller": True}]}}, []),
    ],
)
def test_controller_uids(obj: Obj, expected: list[str]) -> None:
    assert list(controller_uids(obj)) == expected


def test_json_copy_is_deep_and_equal() -> None:
    original = {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}
    copied = json_copy(original)

    assert copied == original
    copied["a"][1]["b"] = "changed"
    assert original["a"][1]["b"] == "c"
