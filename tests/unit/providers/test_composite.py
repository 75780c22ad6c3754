"""Several providers in one trafficRoutings element each do what they can (issue 15 item 7)."""

from __future__ import annotations

import pytest
from tests.unit.providers.builders import http_route, ingress, observed, routing, service
from tests.unit.providers.custom_builders import ISTIO_VS, istio_virtual_service, match, ref

from graylane.planner.changes import Create, ObjectKind, Patch
from graylane.planner.routing import RouteIntent
from graylane.providers.traffic.base import Capability, RoutingError, narrowed

QUERY = match(queryParams=[{"name": "env", "value": "gray"}])
HEADER = match(headers=[{"name": "x-canary", "value": "yes"}])
COOKIE = match(headers=[{"name": "canary-by-cookie", "value": "demo"}])
NGINX_ABLE = frozenset({Capability.WEIGHT, Capability.HEADER_MATCH, Capability.COOKIE_MATCH})


def istio_and_nginx() -> tuple[object, object]:
    ref_ = routing(customNetworkRefs=[ref(ISTIO_VS, "web-vs")], ingress={"name": "web"})
    objects = {(ISTIO_VS, "web-vs"): istio_virtual_service(), (ObjectKind.INGRESS, "web"): ingress()}
    obs = observed(ref_, stable=service(), objects=objects)
    return obs, ref_


def test_istio_routes_the_query_match_and_nginx_sends_it_nothing() -> None:
    obs, _ = istio_and_nginx()
    changes = obs.router.ensure_routes(RouteIntent(matches=(QUERY,)), obs)
    patch, create = changes
    assert isinstance(patch, Patch)
    assert patch.resource == ISTIO_VS
    first_route = patch.patch["spec"]["http"][0]
    assert first_route["match"] == [{"queryParams": {"env": {"exact": "gray"}}}]
    assert isinstance(create, Create)
    annotations = create.obj["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "0", "created at weight 0, as always"
    assert not any("canary-by" in key for key in annotations), annotations


def test_a_feature_no_provider_can_route_is_refused_naming_them_all() -> None:
    ref_ = routing(customNetworkRefs=[ref(ISTIO_VS, "web-vs")], gateway={"httpRouteName": "web-route"})
    objects = {
        (ISTIO_VS, "web-vs"): istio_virtual_service(),
        (ObjectKind.HTTP_ROUTE, "web-route"): http_route(),
    }
    obs = observed(ref_, stable=service(), objects=objects)
    with pytest.raises(RoutingError) as err:
        obs.router.ensure_routes(RouteIntent(weight=10, matches=(COOKIE,)), obs)
    assert str(err.value) == (
        "none of the traffic providers customNetworkRefs (VirtualService.networking.istio.io) + "
        "Gateway API HTTPRoute can route by cookie match"
    )


def test_each_provider_routes_its_own_match() -> None:
    ref_ = routing(ingress={"name": "web"}, gateway={"httpRouteName": "web-route"})
    objects = {(ObjectKind.INGRESS, "web"): ingress(), (ObjectKind.HTTP_ROUTE, "web-route"): http_route()}
    obs = observed(ref_, stable=service(), objects=objects)
    assert obs.router.ensure_routes(RouteIntent(matches=(COOKIE, QUERY)), obs), "each routes its own match"


def test_narrowing_keeps_what_a_provider_can_do_and_drops_emptied_matches() -> None:
    route = RouteIntent(
        weight=20, matches=(QUERY, match(headers=HEADER.headers, queryParams=QUERY.query_params))
    )
    assert narrowed(route, NGINX_ABLE) == RouteIntent(weight=20, matches=(HEADER,))
    assert narrowed(route, frozenset(Capability)) is route
    assert narrowed(RouteIntent(matches=(QUERY,)), NGINX_ABLE) == RouteIntent(), "never an empty match-all"
