"""Which provider handles which part of a `trafficRoutings` element: an enum-keyed registry.

`provider_for(ref, config, scripts)` builds the providers the element names (customNetworkRefs,
ingress, gateway — Kruise's order) and wraps several in a composite; the Lua-driven ones run their
scripts through `scripts` (the controller's runner). `router_for(rollout, scripts)` derives the
`RoutingConfig` from the Rollout and returns the `Router` the planner uses. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from graylane.api.rollout_v1beta1 import Rollout, TrafficRoutingRef
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.base import (
    Capability,
    Change,
    ObjectKey,
    RouteIntent,
    RoutingConfig,
    RoutingError,
    TrafficProvider,
)
from graylane.providers.traffic.composite import CompositeProvider
from graylane.providers.traffic.custom import CustomProvider
from graylane.providers.traffic.gateway_api import GatewayProvider
from graylane.providers.traffic.ingress import IngressProvider
from graylane.providers.traffic.lua import NO_SCRIPTS, ScriptRunner
from graylane.providers.traffic.router import Router
from graylane.providers.traffic.services import canary_service_name

__all__ = [
    "REGISTRY",
    "ProviderKind",
    "declared_provider",
    "kinds_of",
    "provider_for",
    "router_for",
    "routing_config",
]


class ProviderKind(enum.StrEnum):
    CUSTOM = "customNetworkRefs"
    INGRESS = "ingress"
    GATEWAY_API = "gateway"


@dataclasses.dataclass(frozen=True)
class UnsupportedProvider:
    """A provider kind graylane does not drive yet: it blocks routing with a message, undoes nothing."""

    label: str
    reason: str
    capabilities: frozenset[Capability] = frozenset(Capability)

    def fetches(self) -> list[ObjectKey]:
        return []

    def ensure(self, observed: TrafficObserved, route: RouteIntent) -> list[Change]:
        raise RoutingError(self.reason)

    def finalise(self, observed: TrafficObserved) -> list[Change]:
        return []  # it never changed anything


def _ingress(ref: TrafficRoutingRef, config: RoutingConfig, scripts: ScriptRunner) -> TrafficProvider:
    assert ref.ingress is not None
    return IngressProvider(ref.ingress, config, scripts)


def _gateway(ref: TrafficRoutingRef, config: RoutingConfig, scripts: ScriptRunner) -> TrafficProvider:
    assert ref.gateway is not None
    return GatewayProvider(ref.gateway, config)


def _custom(ref: TrafficRoutingRef, config: RoutingConfig, scripts: ScriptRunner) -> TrafficProvider:
    return CustomProvider(tuple(ref.custom_network_refs), config, scripts)


Builder = Callable[[TrafficRoutingRef, RoutingConfig, ScriptRunner], TrafficProvider]
REGISTRY: Mapping[ProviderKind, Builder] = {
    ProviderKind.CUSTOM: _custom,
    ProviderKind.INGRESS: _ingress,
    ProviderKind.GATEWAY_API: _gateway,
}


def kinds_of(ref: TrafficRoutingRef) -> list[ProviderKind]:
    present = {
        ProviderKind.CUSTOM: bool(ref.custom_network_refs),
        ProviderKind.INGRESS: ref.ingress is not None,
        ProviderKind.GATEWAY_API: ref.gateway is not None,
    }
    return [kind for kind in ProviderKind if present[kind]]


def provider_for(ref: TrafficRoutingRef, config: RoutingConfig, scripts: ScriptRunner) -> TrafficProvider:
    providers = tuple(REGISTRY[kind](ref, config, scripts) for kind in kinds_of(ref))
    if not providers:
        return UnsupportedProvider(
            "none", "the trafficRouting names no ingress, gateway or customNetworkRefs"
        )
    return providers[0] if len(providers) == 1 else CompositeProvider(providers)


def declared_provider(routing: Mapping[str, Any]) -> TrafficProvider | None:
    """The provider a raw `trafficRoutings` element names, for its label and capabilities (webhook).

    None when the element does not parse; its Services and owner are placeholders, and it runs no script.
    """
    try:
        ref = TrafficRoutingRef.model_validate(routing)
    except ValueError:
        return None
    config = RoutingConfig(namespace="", stable_service="", canary_service="", owner={})
    return provider_for(ref, config, NO_SCRIPTS)


def owner_reference(rollout: Rollout) -> dict[str, Any]:
    meta = rollout.metadata
    return {
        "apiVersion": rollout.api_version,
        "kind": rollout.kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def routing_config(rollout: Rollout, ref: TrafficRoutingRef) -> RoutingConfig:
    generate = not rollout.spec.strategy.disable_generate_canary_service()
    canary = rollout.spec.strategy.canary
    patch = canary.patch_pod_template_metadata if canary is not None else None
    return RoutingConfig(
        namespace=str(rollout.metadata.get("namespace", "")),
        stable_service=ref.service,
        canary_service=canary_service_name(ref.service, generate=generate),
        owner=owner_reference(rollout),
        generate_canary_service=generate,
        selector_patch=dict(patch.labels) if patch is not None and patch.labels else {},
    )


def router_for(rollout: Rollout, scripts: ScriptRunner) -> Router | None:
    """The Router of the Rollout's first (only) trafficRoutings element; None without one."""
    routings = rollout.spec.strategy.traffic_routings()
    if not routings:
        return None
    config = routing_config(rollout, routings[0])
    return Router(config, provider_for(routings[0], config, scripts))
