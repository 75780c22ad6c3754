"""Golden tests of the Service builders (reference §3.1)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from tests.unit.providers.builders import CONFIG, NS, OWNER, REVISIONS, observed, routing, service

from graylane.planner.changes import Create, Delete, ObjectKind, Patch
from graylane.planner.routing import ServiceTask
from graylane.providers.traffic import services
from graylane.providers.traffic.base import RoutingError

REF = routing(ingress={"name": "web"})


def test_canary_service_is_a_copy_of_the_stable_one_owned_by_the_rollout() -> None:
    stable = service(
        type="NodePort", externalIPs=["1.2.3.4"], loadBalancerIP="5.6.7.8", healthCheckNodePort=30999
    )
    stable["spec"]["ports"][0]["nodePort"] = 30080
    assert services.desired_canary_service(stable, CONFIG, REVISIONS) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web-canary",
            "namespace": NS,
            "ownerReferences": [OWNER],
            "labels": {"app": "web"},
            "annotations": {"team": "a"},
        },
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web", "pod-template-hash": "c222"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }
    assert stable["spec"]["ports"][0]["nodePort"] == 30080, "the cached stable Service is not touched"


def test_pod_template_labels_overwrite_existing_selector_keys_only() -> None:
    config = dataclasses.replace(CONFIG, selector_patch={"app": "web-gray", "extra": "x"})
    svc = services.desired_canary_service(service(), config, REVISIONS)
    assert svc["spec"]["selector"] == {"app": "web-gray", "pod-template-hash": "c222"}


def test_ensure_creates_the_canary_and_narrows_the_stable_service() -> None:
    changes = services.ensure_services(observed(REF, stable=service()), CONFIG, REVISIONS)
    assert [type(c) for c in changes] == [Create, Patch]
    assert changes[1] == Patch(
        ObjectKind.SERVICE, "web", {"spec": {"selector": {"pod-template-hash": "s111"}}}, "strategic"
    )


def test_ensure_repoints_an_existing_canary_service() -> None:
    canary = service("web-canary", selector={"app": "web", "pod-template-hash": "old"})
    stable = service(selector={"app": "web", "pod-template-hash": "s111"})
    changes = services.ensure_services(observed(REF, stable=stable, canary=canary), CONFIG, REVISIONS)
    assert changes == [
        Patch(
            ObjectKind.SERVICE,
            "web-canary",
            {"spec": {"selector": {"pod-template-hash": "c222"}}},
            "strategic",
        )
    ]


def test_ensure_is_done_when_both_selectors_are_right() -> None:
    canary = service("web-canary", selector={"app": "web", "pod-template-hash": "c222"})
    stable = service(selector={"app": "web", "pod-template-hash": "s111"})
    assert services.ensure_services(observed(REF, stable=stable, canary=canary), CONFIG, REVISIONS) == []


def test_a_missing_stable_service_is_an_error_for_routing() -> None:
    with pytest.raises(RoutingError, match="Service web not found"):
        services.ensure_services(observed(REF), CONFIG, REVISIONS)


def test_restore_removes_only_the_revision_key() -> None:
    stable = service(selector={"app": "web", "pod-template-hash": "s111"})
    assert services.restore_stable_service(observed(REF, stable=stable), CONFIG, REVISIONS) == [
        Patch(ObjectKind.SERVICE, "web", {"spec": {"selector": {"pod-template-hash": None}}}, "strategic")
    ]
    assert services.restore_stable_service(observed(REF, stable=service()), CONFIG, REVISIONS) == []
    assert services.restore_stable_service(observed(REF), CONFIG, REVISIONS) == []


def test_remove_canary_deletes_it_once() -> None:
    canary = service("web-canary")
    assert services.remove_canary_service(observed(REF, canary=canary), CONFIG, REVISIONS) == [
        Delete(ObjectKind.SERVICE, "web-canary")
    ]
    going = copy.deepcopy(canary)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert services.remove_canary_service(observed(REF, canary=going), CONFIG, REVISIONS) == []


@pytest.mark.parametrize("task", list(ServiceTask))
def test_disable_generate_canary_service_touches_no_service(task: ServiceTask) -> None:
    config = dataclasses.replace(CONFIG, canary_service="web", generate_canary_service=False)
    stable = service(selector={"app": "web", "pod-template-hash": "zzz"})
    obs = observed(REF, stable=stable, canary=stable, config=config)
    assert services.service_changes(task, obs, config, REVISIONS) == []


def test_canary_service_name() -> None:
    assert services.canary_service_name("web") == "web-canary"
    assert services.canary_service_name("web", generate=False) == "web"
