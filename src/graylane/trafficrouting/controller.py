"""The TrafficRouting controller: fetch from caches → observe → plan (trafficrouting/planner.py) → execute.

Thin: it builds the TrafficRouting's router (routing.py), reads the objects the router names from the
informers the Rollout controller shares (Services, Ingresses, HTTPRoutes, the customNetworkRefs kinds
the Rollout controller's TrafficObserver discovered at start-up, all with the same slim transform, and
the Lua ConfigMap), and carries out the plan: finalizer patches guarded by the resourceVersion the
plan was made from, traffic changes, Events, and one status write. A conflict or a vanished object
re-queues the key so the next pass plans from fresh state.
Events on a Service, Ingress, HTTPRoute or custom object re-queue the TrafficRoutings that name it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from graylane.api.trafficrouting import TrafficRouting, TrafficRoutingStatus
from graylane.controller.cached import load_cached
from graylane.controller.manager import Manager
from graylane.controller.traffic_observe import TrafficObserver, observe_router, slim, slim_configmap
from graylane.executor.traffic import apply_change
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import Informer, object_key
from graylane.kube.resources import Resource
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import CustomKind, Kind, ObjectKind
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.lua import CONFIGMAP_NAME
from graylane.providers.traffic.router import Router
from graylane.trafficrouting import planner
from graylane.trafficrouting.planner import AddFinalizer, RemoveFinalizer, TrafficRoutingAction
from graylane.trafficrouting.routing import router_for

__all__ = ["TrafficRoutingController", "object_index"]

log = logging.getLogger(__name__)
OBJECT_INDEX = "objects"
CONFLICT_REQUEUE = 0.2


def object_index(tr: Obj) -> list[str]:
    """`namespace/Kind/name` of every object spec.objectRef[0] names (Kruise routes the first only)."""
    refs = (tr.get("spec") or {}).get("objectRef") or []
    if not refs:
        return []
    ns, ref = (tr.get("metadata") or {}).get("namespace", ""), refs[0]
    values = [f"{ns}/{ObjectKind.SERVICE}/{ref.get('service')}"]
    if (ref.get("ingress") or {}).get("name"):
        name = ref["ingress"]["name"]
        values += [f"{ns}/{ObjectKind.INGRESS}/{name}", f"{ns}/{ObjectKind.INGRESS}/{name}-canary"]
    if (ref.get("gateway") or {}).get("httpRouteName"):
        values.append(f"{ns}/{ObjectKind.HTTP_ROUTE}/{ref['gateway']['httpRouteName']}")
    for custom in ref.get("customNetworkRefs") or []:
        kind = CustomKind.of(str(custom.get("apiVersion", "")), str(custom.get("kind", "")))
        values.append(f"{ns}/{kind}/{custom.get('name')}")
    return values


class TrafficRoutingController:
    name = "trafficrouting"

    def __init__(self, traffic: TrafficObserver | None = None, workers: int = 3) -> None:
        self.workers = workers  # Kruise's --trafficrouting-workers default
        self._traffic = traffic or TrafficObserver()
        self._routings: Informer | None = None
        self._objects: dict[Kind, Informer] = {}
        self._configmaps: Informer | None = None
        self._client: KubeClient | None = None
        self._recorder: EventRecorder | None = None

    def _resources(self) -> dict[Kind, Resource]:
        return self._traffic.resources()  # as the Rollout controller watches them (same discovery)

    def setup(self, manager: Manager) -> None:
        self._client, self._recorder = manager.client, manager.recorder
        self._routings = manager.watch(self, r.TRAFFICROUTING)
        self._routings.add_index(OBJECT_INDEX, object_index)
        for kind, resource in self._resources().items():
            manager.informer(resource, transform=slim)  # shared with the Rollout controller: same transform
            self._objects[kind] = manager.watch(self, resource, keys=self._routings_of(kind))
        namespace = self._traffic.config_namespace
        self._configmaps = manager.informer(r.CONFIGMAP, namespace=namespace, transform=slim_configmap)

    def _routings_of(self, kind: Kind) -> Callable[[Obj], list[str]]:
        def keys(obj: Obj) -> list[str]:
            assert self._routings is not None
            meta = obj.get("metadata") or {}
            value = f"{meta.get('namespace')}/{kind}/{meta.get('name')}"
            found = self._routings.by_index(OBJECT_INDEX, value)
            return [key for key in map(object_key, found) if key]

        return keys

    async def reconcile(self, key: str) -> float | None:
        assert self._routings is not None
        loaded = load_cached(self._routings, key, TrafficRouting)
        if loaded is None:
            return None
        raw, tr = loaded
        router = router_for(tr, self._traffic.scripts)
        observed = planner.TrafficRoutingObserved(tr, self._observe(router, tr) if router else None)
        # Off the event loop: a provider may wait on a Lua script's worker process (up to its deadline).
        plan = await asyncio.to_thread(planner.plan, observed)
        try:
            for action in plan.actions:
                await self._execute(raw, action)
            if plan.status is not None:
                await self._write_status(raw, plan.status)
        except ApiError as err:
            if err.conflict or err.not_found:
                return CONFLICT_REQUEUE
            raise
        return plan.requeue_after

    def _observe(self, router: Router, tr: TrafficRouting) -> TrafficObserved:
        ns = tr.metadata.get("namespace")
        watched = frozenset(self._objects)
        return observe_router(router, ns, self._get, self._lua_scripts(), watched, canary_service=False)

    def _get(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        # A kind not watched (a custom kind without a script or CRD at start-up) reads as absent; the
        # provider then names it, with the restart hint, from `watched`.
        informer = self._objects.get(kind)
        return informer.get(namespace, name) if informer is not None else None

    def _lua_scripts(self) -> Mapping[str, str]:
        namespace = self._traffic.config_namespace
        found = self._configmaps.get(namespace, CONFIGMAP_NAME) if self._configmaps else None
        return dict((found or {}).get("data") or {})

    async def _execute(self, raw: Obj, action: TrafficRoutingAction) -> None:
        assert self._client is not None
        meta = raw["metadata"]
        if isinstance(action, AddFinalizer | RemoveFinalizer):
            await self._finalizers(raw, action)
        elif isinstance(action, ApplyChange):
            await apply_change(self._client, meta["namespace"], action.change, self._resources())
        elif isinstance(action, RecordEvent) and self._recorder is not None:
            kind = EventKind.WARNING if action.type == "Warning" else EventKind.NORMAL
            await self._recorder.event(raw, kind, action.reason, action.message)

    async def _finalizers(self, raw: Obj, action: AddFinalizer | RemoveFinalizer) -> None:
        assert self._client is not None
        meta = raw["metadata"]
        current = list(meta.get("finalizers") or [])
        if isinstance(action, AddFinalizer):
            wanted = [*current, action.finalizer]
        else:
            wanted = [f for f in current if f != action.finalizer]
        body = {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}}
        updated = await self._client.patch(r.TRAFFICROUTING, meta["name"], body, meta["namespace"])
        meta["resourceVersion"] = updated["metadata"]["resourceVersion"]
        meta["finalizers"] = wanted

    async def _write_status(self, raw: Obj, status: TrafficRoutingStatus) -> None:
        assert self._client is not None
        body = {
            "apiVersion": r.TRAFFICROUTING.api_version,
            "kind": "TrafficRouting",
            "metadata": {k: raw["metadata"][k] for k in ("name", "namespace", "resourceVersion")},
            "status": status.to_obj(),
        }
        await self._client.replace(r.TRAFFICROUTING, body, subresource="status")
