"""Informer internals without a cluster: the pure store/diff/index logic, and the LIST/WATCH loop
driven by a scripted fake client (410 → re-list with synthetic deletes, dropped stream → re-watch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graylane.kube.client import ApiError, Obj
from graylane.kube.informer import (
    NAMESPACE_INDEX,
    Change,
    EventType,
    Informer,
    Store,
    diff,
    object_key,
    split_key,
    strip_noise,
)
from graylane.kube.resources import CONFIGMAP, NAMESPACE, Resource
from graylane.kube.retry import Backoff


def cm(name: str, rv: str = "1", ns: str = "default", **labels: str) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "resourceVersion": rv}
    if labels:
        meta["labels"] = labels
    return {"metadata": meta}


def by_app(obj: Obj) -> list[str]:
    app = obj["metadata"].get("labels", {}).get("app")
    return [app] if app else []


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


# -- keys and transform ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        (cm("a", ns="ns1"), "ns1/a"),
        ({"metadata": {"name": "node-1"}}, "node-1"),
        ({"metadata": {"namespace": "x"}}, None),
        ({"metadata": {"name": ""}}, None),
        ({"metadata": "garbage"}, None),
        ({}, None),
    ],
)
def test_object_key(obj: Obj, key: str | None) -> None:
    assert object_key(obj) == key


def test_split_key() -> None:
    assert split_key("ns/name") == ("ns", "name")
    assert split_key("cluster-thing") == (None, "cluster-thing")


def test_strip_noise_drops_managed_fields_and_last_applied_only() -> None:
    obj = {
        "metadata": {
            "name": "a",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "keep": "me"},
        }
    }
    assert strip_noise(obj) is obj  # in place: no second copy of every listed object
    assert obj == {"metadata": {"name": "a", "annotations": {"keep": "me"}}}
    assert strip_noise({"metadata": None}) == {"metadata": None}


# -- diff --------------------------------------------------------------------------------------


def test_diff_synthesises_adds_changes_and_deletes() -> None:
    current = {"default/a": cm("a", "1"), "default/b": cm("b", "1"), "default/gone": cm("gone", "1")}
    listed = {"default/a": cm("a", "1"), "default/b": cm("b", "2"), "default/new": cm("new", "3")}
    changes = {(c.kind, object_key(c.new or c.old or {})) for c in diff(current, listed)}
    assert changes == {
        (EventType.MODIFIED, "default/b"),
        (EventType.ADDED, "default/new"),
        (EventType.DELETED, "default/gone"),
    }


def test_diff_of_identical_states_is_empty() -> None:
    state = {"default/a": cm("a", "7")}
    assert diff(state, dict(state)) == []


def test_diff_carries_old_and_new_objects() -> None:
    old, new = cm("a", "1"), cm("a", "2")
    assert diff({"default/a": old}, {"default/a": new}) == [Change(EventType.MODIFIED, old, new)]
    assert diff({"default/a": old}, {}) == [Change(EventType.DELETED, old, None)]


# -- store and indexes ---------------------------------------------------------------------------


def test_replace_keeps_unchanged_dicts_and_applies_changes() -> None:
    store = Store()
    kept = cm("a", "1")
    store.replace({"default/a": kept, "default/b": cm("b", "1")})
    store.replace({"default/a": cm("a", "1"), "default/c": cm("c", "1")})
    assert store.get("default/a") is kept  # one dict per object, not one per list
    assert store.get("default/b") is None
    assert sorted(store.items()) == ["default/a", "default/c"]


def test_indexes_follow_updates_and_deletes() -> None:
    store = Store()
    store.add_index("app", by_app)
    store.upsert(cm("a", app="web"))
    store.upsert(cm("b", app="web"))
    store.upsert(cm("c", app="db"))
    assert names(store.by_index("app", "web")) == ["a", "b"]
    store.upsert(cm("b", "2", app="db"))  # relabelled
    assert names(store.by_index("app", "web")) == ["a"]
    assert names(store.by_index("app", "db")) == ["b", "c"]
    store.remove(cm("a"))
    assert store.by_index("app", "web") == []
    assert store.index_values("app") == ["db"]  # empty values are dropped, not kept as empty sets


def test_an_index_value_of_one_object_holds_its_key_alone() -> None:
    store = Store()
    store.add_index("app", by_app)
    store.upsert(cm("a", app="web"))
    store.upsert(cm("a", "2", app="web"))  # the same object again: still one key
    assert names(store.by_index("app", "web")) == ["a"]
    assert store._indices["app"]["web"] == "default/a"  # not a set of one (issue 14: memory)
    store.upsert(cm("b", app="web"))
    assert names(store.by_index("app", "web")) == ["a", "b"]
    store.remove(cm("b"))
    assert store._indices["app"]["web"] == "default/a"  # back to one key
    store.remove(cm("a"))
    assert store.index_values("app") == []


def test_index_added_late_covers_existing_objects() -> None:
    store = Store()
    store.upsert(cm("a", app="web"))
    store.add_index("app", by_app)
    assert names(store.by_index("app", "web")) == ["a"]
    with pytest.raises(ValueError, match="already exists"):
        store.add_index("app", by_app)


def test_index_maintained_through_replace() -> None:
    store = Store()
    store.add_index("app", by_app)
    store.replace({"default/a": cm("a", app="web"), "default/b": cm("b", app="web")})
    store.replace({"default/a": cm("a", "2", app="db")})
    assert store.by_index("app", "web") == []
    assert names(store.by_index("app", "db")) == ["a"]


def test_list_by_namespace_uses_the_builtin_index() -> None:
    store = Store()
    store.upsert(cm("a", ns="one"))
    store.upsert(cm("b", ns="two"))
    store.upsert({"metadata": {"name": "cluster-wide", "resourceVersion": "1"}})
    assert names(store.list("one")) == ["a"]
    assert len(store.list()) == 3
    assert names(store.by_index(NAMESPACE_INDEX, "")) == ["cluster-wide"]


def test_a_failing_index_function_is_contained() -> None:
    store = Store()

    def broken(obj: Obj) -> list[str]:
        raise KeyError("boom")

    store.add_index("broken", broken)
    store.upsert(cm("a"))
    assert store.get("default/a") is not None
    assert store.by_index("broken", "x") == []


def test_remove_of_unknown_object_reports_its_last_state() -> None:
    store = Store()
    change = store.remove(cm("ghost", "9"))
    assert change.kind is EventType.DELETED
    assert change.old == cm("ghost", "9")


# -- the LIST/WATCH loop against a scripted fake client ---------------------------------------

Script = list[tuple[str, Obj] | BaseException]


class FakeListWatcher:
    """Serves `lists` in turn (each a list of pages) and `watches` in turn (events, maybe an error)."""

    def __init__(self, lists: list[list[Obj]], watches: list[Script]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls: list[dict[str, Any]] = []
        self.watch_versions: list[str | None] = []
        self.idle = asyncio.Event()

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        self.list_calls.append({"limit": limit, "continue": continue_token})
        pages = self.lists[0]
        index = int(continue_token or 0)
        if index == len(pages) - 1:
            self.lists.pop(0)
        return pages[index]

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, Obj]]:
        self.watch_versions.append(resource_version)
        if not self.watches:
            self.idle.set()
            await asyncio.Event().wait()  # a quiet stream, until the test cancels
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


def page(items: list[Obj], rv: str, cont: str | None = None) -> Obj:
    return {"metadata": {"resourceVersion": rv, "continue": cont}, "items": items}


async def run_until_idle(informer: Informer, fake: FakeListWatcher) -> list[tuple[EventType, str]]:
    seen: list[tuple[EventType, str]] = []
    informer.on_event(lambda kind, old, new: seen.append((kind, object_key(new or old or {}) or "")))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(fake.idle.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


def quick_informer(fake: FakeListWatcher, resource: Resource = CONFIGMAP) -> Informer:
    return Informer(fake, resource, page_size=2, backoff=Backoff(initial=0.001, jitter=0))


async def test_paginated_list_then_watch_from_the_lists_version() -> None:
    fake = FakeListWatcher(
        lists=[[page([cm("a"), cm("b")], "10", cont="1"), page([cm("c")], "12")]],
        watches=[[("ADDED", cm("d", "13")), ("BOOKMARK", {"metadata": {"resourceVersion": "20"}})]],
    )
    informer = quick_informer(fake)
    seen = await run_until_idle(informer, fake)
    assert [c["limit"] for c in fake.list_calls] == [2, 2]
    assert fake.watch_versions == ["12", "20"]  # resumed after the bookmark, not re-listed
    assert seen == [(EventType.ADDED, f"default/{n}") for n in "abcd"]
    assert informer.has_synced.is_set()
    assert informer.relists == 1
    assert informer.get("default", "a") == {**cm("a"), "apiVersion": "v1", "kind": "ConfigMap"}


async def test_gone_relists_and_synthesises_deletes_for_what_was_missed() -> None:
    gone = ApiError(410, "Expired", "too old resource version")
    fake = FakeListWatcher(
        lists=[[page([cm("a"), cm("b")], "10")], [page([cm("b", "11"), cm("c", "12")], "12")]],
        watches=[[gone]],
    )
    informer = quick_informer(fake)
    seen = await run_until_idle(informer, fake)
    assert seen[2:] == [
        (EventType.MODIFIED, "default/b"),
        (EventType.ADDED, "default/c"),
        (EventType.DELETED, "default/a"),
    ]
    assert informer.relists == 2
    assert fake.watch_versions == ["10", "12"]
    assert names(informer.list()) == ["b", "c"]


async def test_dropped_stream_rewatches_from_the_last_version_without_relisting() -> None:
    fake = FakeListWatcher(
        lists=[[page([cm("a")], "10")]],
        watches=[[("MODIFIED", cm("a", "15")), ConnectionResetError("peer went away")]],
    )
    informer = quick_informer(fake)
    seen = await run_until_idle(informer, fake)
    assert fake.watch_versions == ["10", "15"]
    assert informer.relists == 1
    assert seen == [(EventType.ADDED, "default/a"), (EventType.MODIFIED, "default/a")]


async def test_malformed_objects_are_skipped_in_lists_and_watches() -> None:
    fake = FakeListWatcher(
        lists=[[page([{"metadata": {}}, "junk", cm("a")], "10")]],  # type: ignore[list-item]
        watches=[[("ADDED", {"nometa": True}), ("DELETED", cm("a", "11")), ("WEIRD", cm("z"))]],
    )
    informer = quick_informer(fake)
    seen = await run_until_idle(informer, fake)
    assert seen == [(EventType.ADDED, "default/a"), (EventType.DELETED, "default/a")]
    assert len(informer) == 0


async def test_handler_failure_does_not_stop_other_handlers_or_the_watch() -> None:
    fake = FakeListWatcher(lists=[[page([cm("a")], "1")]], watches=[[("ADDED", cm("b", "2"))]])
    informer = quick_informer(fake)

    def broken(*_: object) -> None:
        raise RuntimeError("handler bug")

    informer.on_event(broken)
    seen = await run_until_idle(informer, fake)
    assert [key for _, key in seen] == ["default/a", "default/b"]


async def test_late_handler_gets_the_cache_replayed_as_adds() -> None:
    fake = FakeListWatcher(lists=[[page([cm("a"), cm("b")], "1")]], watches=[])
    informer = quick_informer(fake)
    await run_until_idle(informer, fake)
    late: list[tuple[EventType, Obj | None]] = []
    informer.on_event(lambda kind, old, new: late.append((kind, old)))
    assert late == [(EventType.ADDED, None), (EventType.ADDED, None)]


async def test_cluster_scoped_objects_are_keyed_by_name() -> None:
    fake = FakeListWatcher(
        lists=[[page([{"metadata": {"name": "ns1", "resourceVersion": "1"}}], "1")]], watches=[]
    )
    informer = quick_informer(fake, NAMESPACE)
    await run_until_idle(informer, fake)
    assert informer.get(None, "ns1") is not None
    assert informer.list()[0]["kind"] == "Namespace"


class RecordingBackoff(Backoff):
    """Records every delay handed out; `waiting` is set once one has been."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.delays: list[float] = []
        self.waiting = asyncio.Event()

    def next(self) -> float:
        delay = super().next()
        self.delays.append(delay)
        self.waiting.set()
        return delay


async def test_a_stream_that_delivered_starts_the_back_off_afresh() -> None:
    cut = ConnectionResetError("cut")
    fake = FakeListWatcher(
        lists=[[page([cm("a")], "10")]],
        watches=[[("MODIFIED", cm("a", str(v))), cut] for v in (11, 12, 13)],
    )
    backoff = RecordingBackoff(initial=0.001, factor=100.0, cap=30.0, jitter=0)
    informer = Informer(fake, CONFIGMAP, backoff=backoff)
    await run_until_idle(informer, fake)
    # Without the reset the third cut would wait 10 s (0.001 * 100**2).
    assert backoff.delays == [0.001, 0.001, 0.001]


async def test_consecutive_failures_still_back_off() -> None:
    cut = ConnectionResetError("cut")
    fake = FakeListWatcher(lists=[[page([cm("a")], "10")]], watches=[[cut], [cut], [cut]])
    backoff = RecordingBackoff(initial=0.001, factor=2.0, cap=30.0, jitter=0)
    informer = Informer(fake, CONFIGMAP, backoff=backoff)
    await run_until_idle(informer, fake)
    assert backoff.delays == [0.001, 0.002, 0.004]


async def test_a_relist_request_ends_the_back_off_wait() -> None:
    fake = FakeListWatcher(
        lists=[[page([cm("a")], "10")], [page([cm("a", "20")], "20")]],
        watches=[[ConnectionResetError("cut")]],
    )
    backoff = RecordingBackoff(initial=3600.0, jitter=0)
    relisted = asyncio.Event()
    informer = Informer(fake, CONFIGMAP, backoff=backoff)
    informer.on_relist(lambda number: relisted.set() if number == 2 else None)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(backoff.waiting.wait(), 60)  # the watch was cut: it now waits an hour
        informer.request_relist()
        await asyncio.wait_for(relisted.wait(), 60)  # listed again long before the hour
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert informer.get("default", "a")["metadata"]["resourceVersion"] == "20"  # type: ignore[index]
