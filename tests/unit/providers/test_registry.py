"""Registry, composite and Router: which providers a trafficRouting gets, and how they combine."""

from __future__ import annotations

import pytest
from tests.unit.inline_scripts import SCRIPTS
from tests.unit.planner.builders import rollout
from tests.unit.providers.builders import CONFIG, http_route, ingress, observed, routing, service

from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.changes import Create, CustomKind, Delete, ObjectKind, Patch
from graylane.planner.routing import RouteIntent
from graylane.providers.traffic.base import Capability, RoutingError
from graylane.providers.traffic.composite import CompositeProvider
from graylane.providers.traffic.custom import CustomProvider
from graylane.providers.traffic.gateway_api import GatewayProvider
from graylane.providers.traffic.ingress import IngressProvider
from graylane.providers.traffic.registry import (
    ProviderKind,
    declared_provider,
    kinds_of,
    provider_for,
    router_for,
)

BOTH = routing(ingress={"name": "web"}, gateway={"httpRouteName": "web-route"})
OBJECTS = {(ObjectKind.INGRESS, "web"): ingress(), (ObjectKind.HTTP_ROUTE, "web-route"): http_route()}


def test_kinds_in_kruise_order() -> None:
    custom = {
        "customNetworkRefs": [{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "v"}]
    }
    assert kinds_of(routing(**custom, ingress={"name": "x"})) == [ProviderKind.CUSTOM, ProviderKind.INGRESS]


def test_one_provider_alone_several_in_a_composite() -> None:
    assert isinstance(provider_for(routing(ingress={"name": "web"}), CONFIG, SCRIPTS), IngressProvider)
    composite = provider_for(BOTH, CONFIG, SCRIPTS)
    assert isinstance(composite, CompositeProvider)
    assert [type(p) for p in composite.providers] == [IngressProvider, GatewayProvider]
    assert composite.label == "Ingress nginx + Gateway API HTTPRoute"
    assert Capability.QUERY_MATCH in composite.capabilities  # nginx cannot, the HTTPRoute can
    assert Capability.COOKIE_MATCH in composite.capabilities  # the HTTPRoute cannot, nginx can
    assert Capability.REQUEST_HEADER_MODIFIER in composite.capabilities  # the HTTPRoute's filter
    assert composite.fetches() == [
        (ObjectKind.INGRESS, "web"),
        (ObjectKind.INGRESS, "web-canary"),
        (ObjectKind.HTTP_ROUTE, "web-route"),
    ]


def test_composite_is_done_only_when_every_provider_is() -> None:
    composite = provider_for(BOTH, CONFIG, SCRIPTS)
    changes = composite.ensure(observed(BOTH, objects=OBJECTS), RouteIntent(weight=10))
    assert [type(c) for c in changes] == [Create, Patch]
    assert composite.finalise(observed(BOTH, objects={(ObjectKind.INGRESS, "web-canary"): ingress()})) == [
        Delete(ObjectKind.INGRESS, "web-canary")
    ]


def test_custom_network_refs_get_the_lua_provider_first_in_a_composite() -> None:
    ref = routing(
        customNetworkRefs=[{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "v"}],
        ingress={"name": "web"},
    )
    composite = provider_for(ref, CONFIG, SCRIPTS)
    assert isinstance(composite, CompositeProvider)
    assert [type(p) for p in composite.providers] == [CustomProvider, IngressProvider]
    assert composite.label == "customNetworkRefs (VirtualService.networking.istio.io) + Ingress nginx"
    assert composite.fetches()[0] == (CustomKind("networking.istio.io", "VirtualService"), "v")


def test_router_verify_is_a_dry_run() -> None:
    obs = observed(BOTH, stable=service(), objects=OBJECTS)
    obs.router.verify(obs)  # no error
    with pytest.raises(RoutingError, match="Service web not found"):
        obs.router.verify(observed(BOTH, objects=OBJECTS))
    with pytest.raises(RoutingError, match="HTTPRoute web-route not found"):
        obs.router.verify(observed(BOTH, stable=service(), objects={(ObjectKind.INGRESS, "web"): ingress()}))


def test_crd_not_watched_is_explained() -> None:
    obs = observed(BOTH, stable=service(), objects=OBJECTS)
    unwatched = type(obs)(
        router=obs.router,
        stable_service=obs.stable_service,
        objects={(ObjectKind.INGRESS, "web"): ingress()},
        watched=frozenset({ObjectKind.SERVICE, ObjectKind.INGRESS}),
    )
    with pytest.raises(RoutingError, match="its CRD is not installed"):
        obs.router.verify(unwatched)


def _rollout_with(routings: list[dict[str, object]], **canary: object) -> Rollout:
    r = rollout(metadata={"uid": "u-9"})
    raw = r.to_obj()
    raw["spec"]["strategy"]["canary"].update({"trafficRoutings": routings, **canary})
    return Rollout.from_obj(raw)


def test_router_for_a_rollout() -> None:
    assert router_for(rollout(), SCRIPTS) is None
    router = router_for(
        _rollout_with(
            [{"service": "web", "ingress": {"name": "web"}}],
            patchPodTemplateMetadata={"labels": {"app": "x"}},
        ),
        SCRIPTS,
    )
    assert router is not None
    assert router.config.canary_service == "web-canary"
    assert router.config.owner["uid"] == "u-9"
    assert router.config.selector_patch == {"app": "x"}
    disabled = router_for(
        _rollout_with([{"service": "web", "ingress": {"name": "web"}}], disableGenerateCanaryService=True),
        SCRIPTS,
    )
    assert disabled is not None
    assert disabled.config.canary_service == "web"


def test_declared_provider_from_raw() -> None:
    provider = declared_provider({"service": "web", "ingress": {"name": "x", "classType": "mse"}})
    assert provider is not None
    assert provider.label == "Ingress mse"
    assert declared_provider({"service": 3, "ingress": "bad"}) is None
