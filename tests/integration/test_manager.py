"""The Manager end to end with a tiny ConfigMap controller: reconciles, requeues, retries, probes,
metrics, leader gating, SIGTERM shutdown (lease released, exit 0) and lost leadership (exit 1)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import Informer, split_key
from graylane.runtime.manager import Manager, ManagerOptions

QUICK_LEASE: dict[str, Any] = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5}


class ConfigMapController:
    """Reconciles ConfigMaps: `data.requeue` asks for a requeue, `data.fail` fails that many times."""

    name = "configmaps"
    workers = 3

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.calls: list[tuple[str, float]] = []
        self.failures: dict[str, int] = {}
        self.concurrent = 0
        self.max_concurrent = 0
        self.informer: Informer | None = None

    def setup(self, manager: Manager) -> None:
        self.informer = manager.watch(self, r.CONFIGMAP, namespace=self.namespace)

    async def reconcile(self, key: str) -> float | None:
        self.calls.append((key, time.monotonic()))
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await asyncio.sleep(0.01)
            return self._decide(key)
        finally:
            self.concurrent -= 1

    def _decide(self, key: str) -> float | None:
        assert self.informer is not None
        namespace, name = split_key(key)
        obj = self.informer.get(namespace, name)
        data = (obj or {}).get("data") or {}
        if self.failures.get(key, 0) < int(data.get("fail", 0)):
            self.failures[key] = self.failures.get(key, 0) + 1
            raise RuntimeError(f"simulated failure {self.failures[key]}")
        return float(data["requeue"]) if "requeue" in data else None

    def times(self, name: str) -> list[float]:
        return [t for key, t in self.calls if key == f"{self.namespace}/{name}"]


def configmap(name: str, namespace: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls state the API server changes, not an Event of ours
            await asyncio.sleep(0.05)


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def lease_spec(kube: KubeClient, name: str, namespace: str) -> Obj:
    lease = await kube.get(r.LEASE, name, namespace)
    return dict(lease["spec"])


@pytest.fixture
def lease_name() -> str:
    return f"test-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def start_manager(
    kubeconfig: Path, namespace: str, lease_name: str
) -> AsyncIterator[Callable[..., tuple[Manager, ConfigMapController, asyncio.Task[int]]]]:
    tasks: list[tuple[Manager, asyncio.Task[int]]] = []

    def start(**options: Any) -> tuple[Manager, ConfigMapController, asyncio.Task[int]]:
        base = ManagerOptions(lease_namespace=namespace, lease_name=lease_name, probe_port=0)
        opts = dataclasses.replace(base, **QUICK_LEASE, **options)
        manager = Manager(KubeClient.from_kubeconfig(str(kubeconfig)), opts)  # closed by the manager
        controller = ConfigMapController(namespace)
        manager.add(controller)
        task = asyncio.create_task(manager.run())
        tasks.append((manager, task))
        return manager, controller, task

    yield start
    for manager, task in tasks:
        manager.request_shutdown()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)


async def test_manager_reconciles_requeues_retries_serves_probes_and_stops_on_sigterm(
    kube: KubeClient,
    namespace: str,
    lease_name: str,
    start_manager: Callable[..., tuple[Manager, ConfigMapController, asyncio.Task[int]]],
) -> None:
    await kube.create(r.CONFIGMAP, configmap("plain", namespace))
    await kube.create(r.CONFIGMAP, configmap("periodic", namespace, requeue="0.4"))
    await kube.create(r.CONFIGMAP, configmap("flaky", namespace, fail="3"))
    manager, controller, task = start_manager(handle_signals=True)

    await eventually(lambda: bool(controller.times("plain")))
    await kube.create(r.CONFIGMAP, configmap("later", namespace))
    await eventually(lambda: bool(controller.times("later")))
    await eventually(lambda: len(controller.times("periodic")) >= 4)
    gaps = [b - a for a, b in itertools.pairwise(controller.times("periodic"))]
    assert min(gaps) >= 0.35  # requeue_after honoured (timer slack aside)...
    assert len(controller.times("plain")) == 1  # ...and no requeue means none
    await eventually(lambda: len(controller.times("flaky")) == 4)  # 3 failures, then success
    flaky = controller.times("flaky")
    assert all(b > a for a, b in itertools.pairwise(flaky))
    assert controller.max_concurrent <= controller.workers

    base = f"http://127.0.0.1:{manager.port}"
    assert await fetch(f"{base}/healthz") == (200, "ok")
    assert await fetch(f"{base}/readyz") == (200, "ok")
    status, metrics = await fetch(f"{base}/metrics")
    assert status == 200
    assert 'controller_runtime_reconcile_errors_total{controller="configmaps"} 3.0' in metrics
    assert 'controller_runtime_reconcile_total{controller="configmaps",result="requeue_after"}' in metrics
    assert 'workqueue_adds_total{name="configmaps"}' in metrics
    assert (
        f'graylane_informer_objects{{namespace="{namespace}",resource="configmaps",selector=""}} 5.0'
        in metrics
    )
    assert f'leader_election_master_status{{name="{lease_name}"}} 1.0' in metrics
    assert (await lease_spec(kube, lease_name, namespace))["holderIdentity"] == manager.options.identity

    os.kill(os.getpid(), signal.SIGTERM)  # the manager's handler turns it into a clean shutdown
    assert await asyncio.wait_for(task, 15) == 0
    assert (await lease_spec(kube, lease_name, namespace))["holderIdentity"] == ""
    reconciles = len(controller.calls)
    await asyncio.sleep(1)
    assert len(controller.calls) == reconciles  # workers are gone, periodic requeues included


async def test_standby_waits_for_the_lease_then_exits_1_when_it_is_lost(
    kube: KubeClient,
    namespace: str,
    lease_name: str,
    start_manager: Callable[..., tuple[Manager, ConfigMapController, asyncio.Task[int]]],
) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": lease_name, "namespace": namespace},
        "spec": {"holderIdentity": "other-replica", "leaseDurationSeconds": 3600},
    }
    await kube.create(r.LEASE, lease)
    await kube.create(r.CONFIGMAP, configmap("a", namespace))
    manager, controller, task = start_manager(handle_signals=False)

    await eventually(manager.ready)  # informers sync while standing by...
    status, _ = await fetch(f"http://127.0.0.1:{manager.port}/readyz")
    assert status == 200
    await asyncio.sleep(1.5)
    assert not manager.is_leader
    assert controller.calls == []  # ...but nothing is reconciled without the lease

    current = await kube.get(r.LEASE, lease_name, namespace)
    current["spec"].update(holderIdentity="", leaseDurationSeconds=1)
    await kube.replace(r.LEASE, current)  # the other replica releases
    await eventually(lambda: bool(controller.times("a")), within=5)
    assert manager.is_leader

    current = await kube.get(r.LEASE, lease_name, namespace)
    current["spec"].update(holderIdentity="thief", leaseDurationSeconds=3600)
    await kube.replace(r.LEASE, current)
    assert await asyncio.wait_for(task, 10) == 1  # lost the lease: exit non-zero for a restart
    assert (await lease_spec(kube, lease_name, namespace))["holderIdentity"] == "thief"


async def test_without_leader_election_workers_start_once_synced(
    kube: KubeClient,
    namespace: str,
    start_manager: Callable[..., tuple[Manager, ConfigMapController, asyncio.Task[int]]],
) -> None:
    await kube.create(r.CONFIGMAP, configmap("solo", namespace))
    manager, controller, task = start_manager(leader_election=False, handle_signals=False)
    await eventually(lambda: bool(controller.times("solo")))
    manager.request_shutdown()
    assert await asyncio.wait_for(task, 10) == 0
