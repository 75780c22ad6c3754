"""A TrafficRouting's router and route, built with Kruise's OnlyTrafficRouting semantics (reference §3.6).

The gateway rules of a TrafficRouting are shared by several Rollouts, so there is no canary Service:
the canary "service" is the stable Service itself (the canary Ingress sends matching requests to the
same Service, and a header such as `x-mse-tag: gray` lets the mesh pick the gray pods), and no Service
is created, narrowed, restored or removed. Objects the providers create are owned by the TrafficRouting.
The providers are the Rollouts' own (`provider_for`). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from graylane.api import rollout_v1beta1 as v1beta1
from graylane.api.trafficrouting import TrafficRouting
from graylane.providers.traffic.base import RoutingConfig
from graylane.providers.traffic.lua import ScriptRunner
from graylane.providers.traffic.registry import provider_for
from graylane.providers.traffic.router import Router

__all__ = ["owner_reference", "router_for", "routing_config"]


def owner_reference(tr: TrafficRouting) -> dict[str, Any]:
    meta = tr.metadata
    return {
        "apiVersion": tr.api_version,
        "kind": tr.kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def routing_config(tr: TrafficRouting, ref: v1beta1.TrafficRoutingRef) -> RoutingConfig:
    return RoutingConfig(
        namespace=str(tr.metadata.get("namespace", "")),
        stable_service=ref.service,
        canary_service=ref.service,
        owner=owner_reference(tr),
        generate_canary_service=False,
    )


def router_for(tr: TrafficRouting, scripts: ScriptRunner) -> Router | None:
    """The Router of `spec.objectRef[0]` (Kruise uses only the first); None without one."""
    if not tr.spec.object_ref:
        return None
    # The v1alpha1 reference has the v1beta1 fields (customNetworkRefs are the same three fields).
    ref = v1beta1.TrafficRoutingRef.from_obj(tr.spec.object_ref[0].to_obj())
    config = routing_config(tr, ref)
    return Router(config, provider_for(ref, config, scripts))
