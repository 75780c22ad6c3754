"""Informer against the real API server: list+watch of ConfigMaps, and re-lists that catch missed deletes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.informer import EventType, Informer, object_key

Seen = list[tuple[EventType, str]]


def configmap(name: str, namespace: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "demo"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "data": data,
    }


def recorder(informer: Informer) -> Seen:
    seen: Seen = []
    informer.on_event(lambda kind, old, new: seen.append((kind, object_key(new or old or {}) or "")))
    return seen


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls state the API server changes, not an Event of ours
            await asyncio.sleep(0.05)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Informer], asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []

    def start(informer: Informer) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(informer.run()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_list_then_watch_sees_creates_updates_and_deletes(
    kube: KubeClient, namespace: str, running: Callable[[Informer], asyncio.Task[None]]
) -> None:
    for i in range(3):  # page_size 2: the initial list needs two pages
        await kube.create(r.CONFIGMAP, configmap(f"pre-{i}", namespace))
    informer = Informer(kube, r.CONFIGMAP, namespace=namespace, page_size=2)
    informer.add_index("app", lambda o: [o["metadata"].get("labels", {}).get("app", "")])
    seen = recorder(informer)
    running(informer)
    await asyncio.wait_for(informer.has_synced.wait(), 10)
    assert {key for _, key in seen} >= {f"{namespace}/pre-{i}" for i in range(3)}

    await kube.create(r.CONFIGMAP, configmap("live", namespace, v="1"))
    await kube.patch(r.CONFIGMAP, "live", {"data": {"v": "2"}}, namespace)
    await kube.delete(r.CONFIGMAP, "pre-0", namespace)
    key = f"{namespace}/live"
    await eventually(lambda: (EventType.DELETED, f"{namespace}/pre-0") in seen)
    assert (EventType.ADDED, key) in seen
    assert (EventType.MODIFIED, key) in seen
    cached = informer.get(namespace, "live")
    assert cached is not None
    assert cached["data"] == {"v": "2"}
    assert "managedFields" not in cached["metadata"]
    assert cached["metadata"]["annotations"] == {}
    assert informer.get(namespace, "pre-0") is None
    assert len(informer.by_index("app", "demo")) == 3
    assert informer.relists == 1  # warm: no periodic re-list


async def test_relist_after_a_pause_reports_deletes_that_happened_meanwhile(
    kube: KubeClient, namespace: str
) -> None:
    for name in ("keep", "drop", "change"):
        await kube.create(r.CONFIGMAP, configmap(name, namespace))
    informer = Informer(kube, r.CONFIGMAP, namespace=namespace)
    seen = recorder(informer)
    await informer._relist()
    seen.clear()

    await kube.delete(r.CONFIGMAP, "drop", namespace)  # nobody is watching
    await kube.patch(r.CONFIGMAP, "change", {"data": {"x": "y"}}, namespace)
    await kube.create(r.CONFIGMAP, configmap("new", namespace))
    await informer._relist()
    assert sorted(seen) == sorted(
        [
            (EventType.DELETED, f"{namespace}/drop"),
            (EventType.MODIFIED, f"{namespace}/change"),
            (EventType.ADDED, f"{namespace}/new"),
        ]
    )


class ExpiringWatches:
    """Proxies a KubeClient; when armed, the next watch event is swallowed and replaced by a 410."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.armed = False

    async def list(self, *args: Any, **kwargs: Any) -> Obj:
        return await self.kube.list(*args, **kwargs)

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, Obj]]:
        async for kind, obj in self.kube.watch(*args, **kwargs):
            if self.armed and kind != "BOOKMARK":
                self.armed = False
                raise ApiError(410, "Expired", "simulated: resource version too old")
            yield kind, obj


async def test_410_relists_and_synthesises_the_delete_the_watch_lost(
    kube: KubeClient, namespace: str, running: Callable[[Informer], asyncio.Task[None]]
) -> None:
    await kube.create(r.CONFIGMAP, configmap("victim", namespace))
    proxy = ExpiringWatches(kube)
    informer = Informer(proxy, r.CONFIGMAP, namespace=namespace)
    seen = recorder(informer)
    running(informer)
    await asyncio.wait_for(informer.has_synced.wait(), 10)

    proxy.armed = True
    await kube.delete(r.CONFIGMAP, "victim", namespace)  # its watch event is the one swallowed
    await eventually(lambda: (EventType.DELETED, f"{namespace}/victim") in seen)
    assert informer.relists == 2
    assert informer.get(namespace, "victim") is None

    await kube.create(r.CONFIGMAP, configmap("after", namespace))  # the new watch works
    await eventually(lambda: (EventType.ADDED, f"{namespace}/after") in seen)


async def test_label_selector_limits_the_cache(
    kube: KubeClient, namespace: str, running: Callable[[Informer], asyncio.Task[None]]
) -> None:
    await kube.create(r.CONFIGMAP, configmap("labelled", namespace))
    await kube.create(r.CONFIGMAP, {"metadata": {"name": "plain", "namespace": namespace}})
    informer = Informer(kube, r.CONFIGMAP, namespace=namespace, label_selector="app=demo")
    running(informer)
    await asyncio.wait_for(informer.has_synced.wait(), 10)
    assert [o["metadata"]["name"] for o in informer.list(namespace)] == ["labelled"]
