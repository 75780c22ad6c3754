"""Controllers on the runtime, driven by hand against the FakeApi: informers run, keys are reconciled by
the test in the order it chooses, and `kcm()` plays the Deployment controller's status bookkeeping.

Only the informers run (Manager.caches): no workers, no election, so a test decides exactly which
reconcile happens when, and `settle()` lets every watch that is not held deliver what it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, cast

from tests.unit.runtime.fakeapi import FakeApi

from graylane.batchrelease import AdvancedDeploymentReconciler, BatchReleaseReconciler
from graylane.controller.rollout import RolloutReconciler
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import object_key
from graylane.kube.workqueue import Clock
from graylane.observe.traffic import TrafficObserver
from graylane.runtime.loop import ReconcileLoop
from graylane.runtime.manager import Manager, ManagerOptions

OPTIONS = ManagerOptions(leader_election=False, handle_signals=False, probe_port=0)


class Harness:
    def __init__(self, api: FakeApi, manager: Manager, loops: dict[str, ReconcileLoop[Any, Any]]) -> None:
        self.api = api
        self.manager = manager
        self.loops = loops

    async def settle(self) -> None:
        """Let the informers take every event that is not held back."""
        for _ in range(200):
            await asyncio.sleep(0)
        for informer in self.manager._informers.values():
            held = informer.resource.plural in self.api._held
            if not held:
                last = max((v for v, _, _ in self.api.log.get(informer.resource.plural, [])), default=0)
                await _until(lambda i=informer, last=last: int(i._version or 0) >= last)

    async def reconcile(self, controller: str, key: str) -> float | None:
        return await self.loops[controller].reconcile(key)

    async def kcm(self) -> None:
        """The Deployment controller's status: caught up with the spec; a resumed one fully rolled out."""
        for (plural, _, _), dep in list(self.api.objects.items()):
            if plural != "deployments":
                continue
            replicas = int(dep["spec"].get("replicas", 1))
            status = dict(dep.get("status") or {})
            status["observedGeneration"] = dep["metadata"].get("generation", 1)
            if not dep["spec"].get("paused"):
                status |= {"replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas}
            if status != dep.get("status"):
                await self.api.replace(r.DEPLOYMENT, {**dep, "status": status}, subresource="status")

    async def run_until_quiet(self, controllers: Iterable[str], rounds: int = 40) -> None:
        """Reconcile every object of the given controllers, round after round, until no write happens."""
        names = list(controllers)
        for _ in range(rounds):
            await self.kcm()
            await self.settle()
            before = len(self.api.calls)
            for name in names:
                loop = self.loops[name]
                informer = loop._primary
                assert informer is not None
                for obj in list(informer.list()):
                    key = object_key(obj)
                    if key:
                        await loop.reconcile(key)
                await self.settle()
            if len(self.api.calls) == before:
                return
        raise AssertionError(f"still writing after {rounds} rounds: {self.api.calls[-10:]}")


async def _until(check: Any, attempts: int = 2000) -> None:
    for _ in range(attempts):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the informers did not catch up")


@asynccontextmanager
async def harness(api: FakeApi, *, clock: Clock | None = None) -> AsyncIterator[Harness]:
    """The Rollout, BatchRelease and advanced Deployment controllers on `api`, informers synced."""
    manager = Manager(cast(KubeClient, api), OPTIONS, clock=clock, own_client=False)
    loops: dict[str, ReconcileLoop[Any, Any]] = {
        "rollout": ReconcileLoop(RolloutReconciler(traffic=TrafficObserver())),
        "batchrelease": ReconcileLoop(BatchReleaseReconciler()),
        "advanced-deployment": ReconcileLoop(AdvancedDeploymentReconciler()),
    }
    for loop in loops.values():
        manager.add(loop)
    async with manager.caches():
        yield Harness(api, manager, loops)


def stored_or_fail(api: FakeApi, plural_res: r.Resource, name: str) -> Obj:
    found = api.stored(plural_res, name)
    assert found is not None, f"{plural_res.plural} {name} is gone"
    return found
