"""The Rollout controller's view of the TrafficRouting a Rollout names (its end-to-end gateway rules).

`LinkObserver.setup` watches TrafficRoutings for the Rollout controller and indexes Rollouts by the
TrafficRouting they name, so a TrafficRouting's change (its phase, a finalizer) re-queues the Rollouts
that wait on it; `observe(rollout)` returns the frozen `LinkedTrafficRouting` the planner reads
(planner/trafficrouting_link.py decides what to do with it). No decisions, no writes here.
"""

from __future__ import annotations

from graylane.api import keys
from graylane.api.rollout_v1beta1 import Rollout
from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.informer import Informer, object_key
from graylane.planner.observed import LinkedTrafficRouting
from graylane.planner.trafficrouting_link import linked_name
from graylane.runtime.manager import Manager, Named

__all__ = ["LINK_INDEX", "LinkObserver", "link_index"]

LINK_INDEX = "trafficrouting"


def link_index(rollout: Obj) -> list[str]:
    """`namespace/name` of the TrafficRouting a (v1beta1) Rollout names: the field, else the annotation."""
    meta = rollout.get("metadata") or {}
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    body = strategy.get("blueGreen") or strategy.get("canary") or {}
    annotations = meta.get("annotations") or {}
    name = body.get("trafficRoutingRef") or annotations.get(keys.TRAFFIC_ROUTING_ANNOTATION)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


class LinkObserver:
    def __init__(self) -> None:
        self._routings: Informer | None = None

    def setup(self, manager: Manager, controller: Named, rollouts: Informer) -> None:
        rollouts.add_index(LINK_INDEX, link_index)

        def keys_of(tr: Obj) -> list[str]:
            found = rollouts.by_index(LINK_INDEX, object_key(tr) or "")
            return [key for key in map(object_key, found) if key]

        self._routings = manager.watch(controller, r.TRAFFICROUTING, keys=keys_of)

    def observe(self, rollout: Rollout) -> LinkedTrafficRouting | None:
        name = linked_name(rollout)
        if not name:
            return None
        assert self._routings is not None
        found = self._routings.get(rollout.metadata.get("namespace"), name)
        if found is None:
            return LinkedTrafficRouting(name=name)
        meta, status = found.get("metadata") or {}, found.get("status") or {}
        return LinkedTrafficRouting(
            name=name,
            found=True,
            phase=str(status.get("phase") or ""),
            message=str(status.get("message") or ""),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
            deleting=bool(meta.get("deletionTimestamp")),
        )
