"""Observe a Rollout's traffic objects from informers: Services, Ingresses, HTTPRoutes, custom kinds, Lua.

The Rollout controller registers the informers here (HTTPRoutes only when their CRD exists at start-up,
in the newest served version) and asks `observe(rollout)` for the frozen `TrafficObserved` the planner
plans from. Events on these objects re-queue the Rollouts that use them, through an index of Rollouts
by `namespace/Kind/name` of their traffic objects.

Custom kinds (`customNetworkRefs`) are watched when a Lua script exists for them (shipped, or a
`lua.traffic.routing.<Kind>.<group>` key of the ConfigMap) and the API serves the kind: at start-up as
API discovery finds them (`discover_custom_kinds`, the group's preferred version), later as their CRD
becomes established or their script key appears (observe/kinds.py: the CRD's highest served version).
HTTPRoutes likewise: discovered at start-up, or watched from the moment their CRD is established.

Memory: the caches hold only what the providers read — Services, Ingresses and HTTPRoutes keep
metadata (name, namespace, uid, resourceVersion, labels, annotations, owners, deletion) and spec, no
status; the ConfigMap informer watches only the controller namespace and keeps only the
`lua.traffic.routing.*` keys of `kruise-rollout-configuration`.
This module decides nothing about routing (the providers and the planner do).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping

from graylane.api.rollout_v1beta1 import Rollout
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.informer import Informer, object_key
from graylane.kube.resources import Resource
from graylane.observe.kinds import CRD_INDEX, crd_index, crd_resource, established, slim_crd
from graylane.planner.changes import CustomKind, Kind, ObjectKind
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.lua import (
    CONFIGMAP_NAME,
    CUSTOM_KEY_PREFIX,
    INGRESS_KEY_PREFIX,
    NO_SCRIPTS,
    ScriptRunner,
    builtin_custom_kinds,
)
from graylane.providers.traffic.registry import router_for
from graylane.providers.traffic.router import Router
from graylane.runtime.manager import Manager, Named

__all__ = [
    "TRAFFIC_INDEX",
    "TrafficObserver",
    "discover_custom_kinds",
    "discover_http_route",
    "observe_router",
    "slim",
    "traffic_index",
]

log = logging.getLogger(__name__)
TRAFFIC_INDEX = "traffic"
LUA_KEY_PREFIX = "lua.traffic.routing."
ANY_INGRESS = "*/Ingress"  # index value of every Rollout routing through an Ingress (Lua users)
ANY_CUSTOM = "*/custom"  # index value of every Rollout with customNetworkRefs (Lua users too)
HTTPROUTE_CRD = "httproutes.gateway.networking.k8s.io"
_KEPT_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
)


async def discover_http_route(client: KubeClient) -> Resource | None:
    """The HTTPRoute resource in the newest served version (v1, else Kruise's v1beta1), or None."""
    crd = await client.get_or_none(r.CRD, HTTPROUTE_CRD)
    if crd is None:
        log.info("HTTPRoute CRD not installed: HTTPRoutes are watched once it is established")
        return None
    served = {v.get("name") for v in crd.get("spec", {}).get("versions", []) if v.get("served")}
    version = next((v for v in ("v1", "v1beta1") if v in served), None)
    return dataclasses.replace(r.HTTPROUTE, version=version) if version else None


def configured_custom_kinds(data: Mapping[str, str]) -> set[CustomKind]:
    """Kinds the ConfigMap has a script for: keys `lua.traffic.routing.<Kind>.<group>` (not `ingress.`)."""
    kinds = set()
    for key in data:
        if key.startswith(CUSTOM_KEY_PREFIX) and not key.startswith(INGRESS_KEY_PREFIX):
            kind, _, group = key.removeprefix(CUSTOM_KEY_PREFIX).partition(".")
            if kind and group:
                kinds.add(CustomKind(group, kind))
    return kinds


async def discover_custom_kinds(client: KubeClient, config_namespace: str) -> dict[CustomKind, Resource]:
    """The resource of every custom kind with a script (shipped or configured) that the API serves now."""
    config = await client.get_or_none(r.CONFIGMAP, CONFIGMAP_NAME, config_namespace)
    wanted = {CustomKind(group, kind) for group, kind in builtin_custom_kinds()}
    wanted |= configured_custom_kinds((config or {}).get("data") or {})
    found = {}
    for kind in sorted(wanted, key=str):
        resource = await discover_resource(client, kind)
        if resource is None:
            log.info("%s is not served: it is watched once its CRD is established", kind)
        else:
            found[kind] = resource
    return found


async def discover_resource(client: KubeClient, kind: CustomKind) -> Resource | None:
    """API discovery: the group's preferred version, then the resource whose kind matches; None if absent."""
    try:
        group = await client.request("GET", f"/apis/{kind.group}", resource="discovery")
        version = str(((group or {}).get("preferredVersion") or {}).get("version") or "")
        listing = await client.request("GET", f"/apis/{kind.group}/{version}", resource="discovery")
    except ApiError as err:
        if err.not_found:
            return None
        raise
    for item in (listing or {}).get("resources") or []:
        if item.get("kind") == kind.kind and "/" not in str(item.get("name")):
            return Resource(kind.group, version, str(item["name"]), kind.kind, bool(item.get("namespaced")))
    return None


def slim(obj: Obj) -> Obj:
    """Informer transform: metadata the providers read, and spec; never status or managedFields."""
    meta = obj.get("metadata") or {}
    kept: Obj = {"metadata": {k: meta[k] for k in _KEPT_META if k in meta}, "spec": obj.get("spec") or {}}
    annotations = kept["metadata"].get("annotations")
    if isinstance(annotations, dict):
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    for key in ("apiVersion", "kind"):
        if key in obj:
            kept[key] = obj[key]
    return kept


def slim_configmap(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    data = obj.get("data") or {} if meta.get("name") == CONFIGMAP_NAME else {}
    return {
        "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion") if k in meta},
        "data": {k: v for k, v in data.items() if k.startswith(LUA_KEY_PREFIX)},
    }


def traffic_index(rollout: Obj) -> list[str]:
    """`namespace/Kind/name` of every traffic object a (v1beta1) Rollout reads."""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    body = strategy.get("blueGreen") or strategy.get("canary") or {}
    routings = body.get("trafficRoutings") or []
    if not routings:
        return []
    ns = (rollout.get("metadata") or {}).get("namespace", "")
    ref = routings[0]
    values = [f"{ns}/Service/{ref.get('service')}", f"{ns}/Service/{ref.get('service')}-canary"]
    if (ref.get("ingress") or {}).get("name"):
        name = ref["ingress"]["name"]
        values += [f"{ns}/Ingress/{name}", f"{ns}/Ingress/{name}-canary", ANY_INGRESS]
    if (ref.get("gateway") or {}).get("httpRouteName"):
        values.append(f"{ns}/HTTPRoute/{ref['gateway']['httpRouteName']}")
    for custom in ref.get("customNetworkRefs") or []:
        kind = CustomKind.of(str(custom.get("apiVersion", "")), str(custom.get("kind", "")))
        values += [f"{ns}/{kind}/{custom.get('name')}", ANY_CUSTOM]
    return values


KindAdded = Callable[[Kind, Resource], None]


class TrafficObserver:
    """Owns the traffic informers of the Rollout controller; `observe` reads them, never the API.

    Kinds that become available later are added through `_add`: their informer starts, the Rollouts
    that route traffic are re-queued, and `subscribe`rs (the TrafficRouting controller) are told.
    """

    def __init__(
        self,
        http_route: Resource | None = None,
        config_namespace: str = "kruise-rollout",
        custom: Mapping[CustomKind, Resource] | None = None,
        *,
        scripts: ScriptRunner = NO_SCRIPTS,
        denied: Collection[CustomKind] = (),
    ) -> None:
        self.http_route = http_route
        self.config_namespace = config_namespace
        # Runs the providers' Lua scripts (graylane.scripting's process pool in the controller).
        self.scripts = scripts
        self.custom_resources: Mapping[CustomKind, Resource] = dict(custom or {})
        self._informers: dict[Kind, Informer] = {}
        self._configmaps: Informer | None = None
        self._crds: Informer | None = None
        self._subscribers: list[KindAdded] = []
        self._added: Callable[[Kind, Resource], None] | None = None
        # Served at start-up but not ours to list and watch (RBAC): their established CRDs, which the CRD
        # informer reports at once, must not start an informer that would only ever be refused.
        self._denied = frozenset(denied)

    @property
    def watched(self) -> frozenset[Kind]:
        return frozenset(self._informers)

    def resources(self) -> dict[Kind, Resource]:
        """What each watched kind is in the API (HTTPRoutes and custom kinds as discovered)."""
        kinds: dict[Kind, Resource] = {ObjectKind.SERVICE: r.SERVICE, ObjectKind.INGRESS: r.INGRESS}
        if self.http_route is not None:
            kinds[ObjectKind.HTTP_ROUTE] = self.http_route
        kinds.update(self.custom_resources.items())
        return kinds

    def subscribe(self, fn: KindAdded) -> None:
        """Be told of every kind watched from now on (after start-up)."""
        self._subscribers.append(fn)

    def setup(self, manager: Manager, controller: Named, rollouts: Informer) -> None:
        rollouts.add_index(TRAFFIC_INDEX, traffic_index)
        for kind, resource in self.resources().items():
            manager.informer(resource, transform=slim)
            self._informers[kind] = manager.watch(controller, resource, keys=_by_object(rollouts, kind))
        manager.informer(r.CONFIGMAP, namespace=self.config_namespace, transform=slim_configmap)
        self._configmaps = manager.watch(
            controller, r.CONFIGMAP, namespace=self.config_namespace, keys=_on_lua_change(rollouts)
        )
        self._crds = manager.informer(r.CRD, transform=slim_crd)
        self._crds.add_index(CRD_INDEX, crd_index)
        self._added = self._adder(manager, controller, rollouts)
        self._crds.on_event(lambda _, __, crd: self._consider(crd))
        self._configmaps.on_event(lambda *_: self._scripts_changed())

    def _adder(self, manager: Manager, controller: Named, rollouts: Informer) -> KindAdded:
        def add(kind: Kind, resource: Resource) -> None:
            if kind == ObjectKind.HTTP_ROUTE:
                self.http_route = resource
            elif isinstance(kind, CustomKind):
                self.custom_resources = {**self.custom_resources, kind: resource}
            manager.informer(resource, transform=slim)
            self._informers[kind] = manager.watch(controller, resource, keys=_by_object(rollouts, kind))
            log.info("%s is served now: watching it", kind, extra={"resource": resource.plural})
            for fn in self._subscribers:
                fn(kind, resource)
            queue = manager.queue(controller.name)
            for rollout in rollouts.list():  # a Rollout told to wait for this kind plans again
                key = object_key(rollout)
                if key and traffic_index(rollout):
                    queue.add(key)

        return add

    def _consider(self, crd: Obj | None) -> None:
        """A CRD was added or changed: watch its kind if traffic routing can use it and it is served."""
        if crd is None or not established(crd):
            return
        found = crd_resource(crd)
        if found is None or found[0] in self._informers or self._added is None:
            return
        kind, resource = found
        if kind in self._denied:
            return
        if kind == ObjectKind.HTTP_ROUTE or kind in self._scripted_kinds():
            self._added(kind, resource)

    def _scripts_changed(self) -> None:
        """A script key may have been added for a kind whose CRD is already there."""
        if self._crds is None:
            return
        for kind in self._scripted_kinds() - self.watched:
            if isinstance(kind, CustomKind):
                for crd in self._crds.by_index(CRD_INDEX, f"{kind.group}/{kind.kind}"):
                    self._consider(crd)

    def _scripted_kinds(self) -> set[Kind]:
        kinds: set[Kind] = {CustomKind(group, kind) for group, kind in builtin_custom_kinds()}
        kinds.update(configured_custom_kinds(self._lua_scripts()))
        return kinds

    def observe(self, rollout: Rollout) -> TrafficObserved | None:
        router = router_for(rollout, self.scripts)
        if router is None:
            return None
        namespace = rollout.metadata.get("namespace")
        return observe_router(router, namespace, self._get, self._lua_scripts(), self.watched)

    def _get(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        informer = self._informers.get(kind)
        return informer.get(namespace, name) if informer is not None else None

    def _lua_scripts(self) -> dict[str, str]:
        found = self._configmaps.get(self.config_namespace, CONFIGMAP_NAME) if self._configmaps else None
        return dict((found or {}).get("data") or {})


Getter = Callable[[Kind, str | None, str], Obj | None]


def observe_router(
    router: Router,
    namespace: str | None,
    get: Getter,
    lua_scripts: Mapping[str, str],
    watched: frozenset[Kind],
    *,
    canary_service: bool = True,
) -> TrafficObserved:
    """The frozen snapshot of what `router` reads, from `get` (the informers); no canary Service when
    routing only traffic (a TrafficRouting: OnlyTrafficRouting)."""
    objects = {}
    for kind, name in router.fetches():
        found = get(kind, namespace, name)
        if found is not None:
            objects[(kind, name)] = found
    config = router.config
    return TrafficObserved(
        router=router,
        stable_service=get(ObjectKind.SERVICE, namespace, config.stable_service),
        canary_service=get(ObjectKind.SERVICE, namespace, config.canary_service) if canary_service else None,
        objects=objects,
        lua_scripts=dict(lua_scripts),
        watched=watched,
    )


def _by_object(rollouts: Informer, kind: Kind) -> Callable[[Obj], list[str]]:
    def keys(obj: Obj) -> list[str]:
        meta = obj.get("metadata") or {}
        return _keys(rollouts, f"{meta.get('namespace')}/{kind}/{meta.get('name')}")

    return keys


def _on_lua_change(rollouts: Informer) -> Callable[[Obj], list[str]]:
    """A change of the Lua ConfigMap concerns every Rollout routing through an Ingress or a custom kind."""

    def keys(obj: Obj) -> list[str]:
        if (obj.get("metadata") or {}).get("name") != CONFIGMAP_NAME:
            return []
        return list(dict.fromkeys(_keys(rollouts, ANY_INGRESS) + _keys(rollouts, ANY_CUSTOM)))

    return keys


def _keys(rollouts: Informer, value: str) -> list[str]:
    return [key for key in map(object_key, rollouts.by_index(TRAFFIC_INDEX, value)) if key]
