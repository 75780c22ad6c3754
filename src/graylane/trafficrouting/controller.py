"""The TrafficRouting controller: caches → observe → plan (trafficrouting/planner.py) → status, then writes.

Thin: it builds the TrafficRouting's router (routing.py), reads the objects the router names from the
informers the Rollout controller shares (Services, Ingresses, HTTPRoutes, the customNetworkRefs kinds
the Rollout controller's TrafficObserver discovered at start-up, all with the same slim transform, and
the Lua ConfigMap), and hands the runtime's loop a `Decision`: the status (written first, guarded by
the version the plan was made from), then finalizer patches (guarded), traffic changes (see
executor/traffic.py for their guards) and Events. Conflicts and its own writes' expectations are the
runtime's. Events on a Service, Ingress, HTTPRoute or custom object re-queue the TrafficRoutings that
name it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping

from graylane.api.trafficrouting import TrafficRouting
from graylane.executor.traffic import apply_change
from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import Informer, object_key
from graylane.kube.resources import Resource
from graylane.observe.traffic import TrafficObserver, observe_router, slim, slim_configmap
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import CustomKind, Kind, ObjectKind
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.lua import CONFIGMAP_NAME
from graylane.providers.traffic.router import Router
from graylane.runtime.cache import parse_cached
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer
from graylane.trafficrouting import planner
from graylane.trafficrouting.planner import (
    AddFinalizer,
    RemoveFinalizer,
    TrafficRoutingAction,
    TrafficRoutingObserved,
)
from graylane.trafficrouting.routing import router_for

__all__ = ["TrafficRoutingInput", "TrafficRoutingReconciler", "object_index"]

log = logging.getLogger(__name__)
OBJECT_INDEX = "objects"


@dataclasses.dataclass(frozen=True)
class TrafficRoutingInput:
    obj: Obj  # the cached TrafficRouting (shared: never mutated)
    observed: TrafficRoutingObserved


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


class TrafficRoutingReconciler:
    name = "trafficrouting"
    primary = r.TRAFFICROUTING
    status_message = True

    def __init__(self, traffic: TrafficObserver | None = None, workers: int = 3) -> None:
        self.workers = workers  # Kruise's --trafficrouting-workers default
        self._traffic = traffic or TrafficObserver()
        self._routings: Informer | None = None
        self._objects: dict[Kind, Informer] = {}
        self._configmaps: Informer | None = None
        self._recorder: EventRecorder | None = None

    def _resources(self) -> dict[Kind, Resource]:
        return self._traffic.resources()  # as the Rollout controller watches them (same discovery)

    def setup(self, manager: Manager) -> Informer:
        self._recorder = manager.recorder
        self._routings = manager.watch(self, r.TRAFFICROUTING)
        self._routings.add_index(OBJECT_INDEX, object_index)
        for kind, resource in self._resources().items():
            manager.informer(resource, transform=slim)  # shared with the Rollout controller: same transform
            self._objects[kind] = manager.watch(self, resource, keys=self._routings_of(kind))
        namespace = self._traffic.config_namespace
        self._configmaps = manager.informer(r.CONFIGMAP, namespace=namespace, transform=slim_configmap)
        self._traffic.subscribe(self._kind_added(manager))
        return self._routings

    def _kind_added(self, manager: Manager) -> Callable[[Kind, Resource], None]:
        """A kind whose CRD appeared after start-up: watch it too, and look at every TrafficRouting again."""

        def added(kind: Kind, resource: Resource) -> None:
            assert self._routings is not None
            self._objects[kind] = manager.watch(self, resource, keys=self._routings_of(kind))
            queue = manager.queue(self.name)
            for tr in self._routings.list():
                key = object_key(tr)
                if key:
                    queue.add(key)

        return added

    def _routings_of(self, kind: Kind) -> Callable[[Obj], list[str]]:
        def keys(obj: Obj) -> list[str]:
            assert self._routings is not None
            meta = obj.get("metadata") or {}
            value = f"{meta.get('namespace')}/{kind}/{meta.get('name')}"
            found = self._routings.by_index(OBJECT_INDEX, value)
            return [key for key in map(object_key, found) if key]

        return keys

    # -- the three stages -------------------------------------------------------------------------

    async def observe(self, obj: Obj) -> TrafficRoutingInput | None:
        tr = parse_cached(obj, TrafficRouting)
        if tr is None:
            return None
        router = router_for(tr, self._traffic.scripts)
        traffic = self._observe(router, tr) if router else None
        return TrafficRoutingInput(obj, TrafficRoutingObserved(tr, traffic))

    def plan(self, inp: TrafficRoutingInput) -> Decision[TrafficRoutingAction]:
        result = planner.plan(inp.observed)
        status = result.status.to_obj() if result.status is not None else None
        return Decision(status, result.actions, result.requeue_after)

    async def act(self, action: TrafficRoutingAction, inp: TrafficRoutingInput, writer: Writer) -> None:
        meta = inp.obj["metadata"]
        if isinstance(action, AddFinalizer | RemoveFinalizer):
            current = list(meta.get("finalizers") or [])
            if isinstance(action, AddFinalizer):
                wanted = [*current, action.finalizer]
            else:
                wanted = [f for f in current if f != action.finalizer]
            await writer.set_finalizers(r.TRAFFICROUTING, meta, wanted)  # guarded: Rollouts edit it too
        elif isinstance(action, ApplyChange):
            await apply_change(writer, meta["namespace"], action.change, self._resources())
        elif isinstance(action, RecordEvent) and self._recorder is not None:
            kind = EventKind.WARNING if action.type == "Warning" else EventKind.NORMAL
            await self._recorder.event(inp.obj, kind, action.reason, action.message)

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
