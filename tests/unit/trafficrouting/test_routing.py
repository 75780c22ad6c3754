"""A TrafficRouting's router (OnlyTrafficRouting semantics) and the controller's object index."""

from __future__ import annotations

from typing import Any

from tests.unit.inline_scripts import SCRIPTS

from graylane.api.trafficrouting import TrafficRouting
from graylane.planner.changes import CustomKind, ObjectKind
from graylane.trafficrouting.controller import object_index
from graylane.trafficrouting.routing import router_for


def tr_obj(object_ref: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "TrafficRouting",
        "metadata": {"name": "lane", "namespace": "ns", "uid": "u-9"},
        "spec": {"objectRef": object_ref, "strategy": {"weight": 10}},
    }


def test_without_object_ref_there_is_no_router() -> None:
    assert router_for(TrafficRouting.from_obj(tr_obj([])), SCRIPTS) is None
    assert object_index(tr_obj([])) == []


def test_the_canary_service_is_the_stable_service_and_the_owner_is_the_traffic_routing() -> None:
    ref = {"service": "web", "gracePeriodSeconds": 5, "ingress": {"classType": "mse", "name": "web-ing"}}
    router = router_for(TrafficRouting.from_obj(tr_obj([ref, {"service": "ignored"}])), SCRIPTS)
    assert router is not None
    config = router.config
    assert (config.namespace, config.stable_service, config.canary_service) == ("ns", "web", "web")
    assert config.generate_canary_service is False
    assert (config.owner["kind"], config.owner["name"], config.owner["uid"]) == (
        "TrafficRouting",
        "lane",
        "u-9",
    )
    assert router.network.label == "Ingress mse"
    assert router.fetches() == [(ObjectKind.INGRESS, "web-ing"), (ObjectKind.INGRESS, "web-ing-canary")]


def test_the_object_index_names_the_first_reference_objects() -> None:
    ref = {"service": "web", "ingress": {"name": "web-ing"}, "gateway": {"httpRouteName": "route"}}
    assert object_index(tr_obj([ref, {"service": "other"}])) == [
        "ns/Service/web",
        "ns/Ingress/web-ing",
        "ns/Ingress/web-ing-canary",
        "ns/HTTPRoute/route",
    ]


def test_custom_network_refs_are_indexed_and_fetched_by_group_and_kind() -> None:
    refs = [
        {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "name": "vs"},
        {"apiVersion": "gateway.solo.io/v1", "kind": "VirtualService", "name": "gloo"},
    ]
    obj = tr_obj([{"service": "web", "customNetworkRefs": refs}])
    assert object_index(obj) == [
        "ns/Service/web",
        "ns/VirtualService.networking.istio.io/vs",
        "ns/VirtualService.gateway.solo.io/gloo",
    ]
    router = router_for(TrafficRouting.from_obj(obj), SCRIPTS)
    assert router is not None
    assert router.fetches() == [
        (CustomKind("networking.istio.io", "VirtualService"), "vs"),
        (CustomKind("gateway.solo.io", "VirtualService"), "gloo"),
    ]
