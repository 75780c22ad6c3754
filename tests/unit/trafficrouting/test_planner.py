"""The TrafficRouting planner: phases, messages, finalizers and routes, with the real MSE provider."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.inline_scripts import SCRIPTS

from graylane.api.rollout_v1alpha1 import TrafficRoutingStrategy
from graylane.api.trafficrouting import TrafficRouting
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import Create, Delete, ObjectKind, Patch
from graylane.planner.observed import TrafficObserved
from graylane.trafficrouting import planner
from graylane.trafficrouting.planner import (
    AddFinalizer,
    RemoveFinalizer,
    TrafficRoutingObserved,
    TrafficRoutingPlan,
    has_route,
    progressing_finalizers,
    route_intent,
)
from graylane.trafficrouting.routing import router_for

NS = "lanes"
OWN = "rollouts.kruise.io/trafficrouting"
ROLLOUT_A = "progressing.rollouts.kruise.io/rollout-a"
ROLLOUT_B = "progressing.rollouts.kruise.io/rollout-b"
ING = ObjectKind.INGRESS
MSE = "mse.ingress.kubernetes.io/"
NGINX = "nginx.ingress.kubernetes.io/"
SEED_STRATEGY = {
    "matches": [{"headers": [{"type": "Exact", "name": "User-Agent", "value": "foo"}]}],
    "requestHeaderModifier": {"set": [{"name": "x-mse-tag", "value": "gray"}]},
}


def traffic_routing(
    *,
    phase: str = "",
    message: str = "",
    finalizers: tuple[str, ...] = (OWN,),
    strategy: dict[str, Any] | None = None,
    deleting: bool = False,
    generation: int = 2,
) -> TrafficRouting:
    meta: dict[str, Any] = {
        "name": "mse-traffic",
        "namespace": NS,
        "uid": "tr-uid",
        "generation": generation,
        "resourceVersion": "11",
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T12:00:00Z"
    return TrafficRouting.from_obj(
        {
            "apiVersion": "rollouts.kruise.io/v1alpha1",
            "kind": "TrafficRouting",
            "metadata": meta,
            "spec": {
                "objectRef": [
                    {"service": "spring-cloud-a", "ingress": {"classType": "mse", "name": "spring-cloud-a"}}
                ],
                "strategy": SEED_STRATEGY if strategy is None else strategy,
            },
            "status": {"phase": phase, "message": message, "observedGeneration": 1} if phase else {},
        }
    )


def service() -> dict[str, Any]:
    return {"metadata": {"name": "spring-cloud-a", "namespace": NS}, "spec": {"selector": {"app": "a"}}}


def stable_ingress() -> dict[str, Any]:
    backend = {"service": {"name": "spring-cloud-a", "port": {"number": 80}}}
    return {
        "metadata": {"name": "spring-cloud-a", "namespace": NS, "annotations": {"team": "a"}},
        "spec": {
            "ingressClassName": "mse",
            "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def observe(
    tr: TrafficRouting, *, ingress: bool = True, canary: dict[str, Any] | None = None
) -> TrafficRoutingObserved:
    router = router_for(tr, SCRIPTS)
    assert router is not None
    objects = {}
    if ingress:
        objects[(ING, "spring-cloud-a")] = stable_ingress()
    if canary is not None:
        objects[(ING, "spring-cloud-a-canary")] = canary
    return TrafficRoutingObserved(
        tr, TrafficObserved(router=router, stable_service=service(), objects=objects)
    )


def changes(result: TrafficRoutingPlan) -> list[Any]:
    return [a.change for a in result.actions if isinstance(a, ApplyChange)]


def events(result: TrafficRoutingPlan) -> list[RecordEvent]:
    return [a for a in result.actions if isinstance(a, RecordEvent)]


def created_canary() -> dict[str, Any]:
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_A)
    )
    [create] = changes(planner.plan(observe(tr)))
    assert isinstance(create, Create)
    return copy.deepcopy(dict(create.obj))


def routed_canary() -> dict[str, Any]:
    """The canary Ingress of the seed after the route's annotation patch was applied."""
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_A)
    )
    canary = created_canary()
    [patch] = changes(planner.plan(observe(tr, canary=canary)))
    assert isinstance(patch, Patch)
    for key, value in patch.patch["metadata"]["annotations"].items():
        if value is None:
            canary["metadata"]["annotations"].pop(key)
        else:
            canary["metadata"]["annotations"][key] = value
    return canary


# -- Initial ------------------------------------------------------------------------------------------


def test_a_new_traffic_routing_gets_its_finalizer_and_becomes_healthy() -> None:
    result = planner.plan(observe(traffic_routing(finalizers=())))
    assert result.actions == (AddFinalizer(OWN),)
    assert result.status is not None
    assert (result.status.phase, result.status.message) == ("Healthy", "TrafficRouting is Healthy")
    assert result.status.observed_generation == 2
    assert result.requeue_after is None


def test_a_missing_ingress_keeps_it_initial_with_the_reason_and_one_warning() -> None:
    first = planner.plan(observe(traffic_routing(), ingress=False))
    assert first.status is not None
    message = "traffic routing is not ready: Ingress spring-cloud-a not found"
    assert (first.status.phase, first.status.message) == ("Initial", message)
    assert first.status.observed_generation == 0, "not done: observedGeneration is not advanced"
    assert [(e.type, e.reason, e.message) for e in events(first)] == [
        ("Warning", "TrafficRoutingNotReady", message)
    ]
    assert first.requeue_after == 3.0
    assert changes(first) == [], "nothing is routed"

    again = planner.plan(observe(traffic_routing(phase="Initial", message=message), ingress=False))
    assert events(again) == [], "the same reason is not reported twice"
    assert again.status is None
    assert again.requeue_after == 3.0


def test_a_missing_stable_service_blocks_initial_too() -> None:
    tr = traffic_routing(phase="Initial", message="TrafficRouting is Initializing")
    router = router_for(tr, SCRIPTS)
    assert router is not None
    observed = TrafficRoutingObserved(tr, TrafficObserved(router=router, stable_service=None))
    result = planner.plan(observed)
    assert result.status is not None
    assert result.status.message == "traffic routing is not ready: Service spring-cloud-a not found"


def test_without_object_ref_it_is_healthy_at_once() -> None:
    tr = traffic_routing()
    result = planner.plan(TrafficRoutingObserved(tr, None))
    assert result.status is not None
    assert result.status.phase == "Healthy"


# -- Healthy / Progressing ------------------------------------------------------------------------------


def test_healthy_without_a_consuming_rollout_stays_healthy() -> None:
    tr = traffic_routing(phase="Healthy", message="TrafficRouting is Healthy", generation=1)
    result = planner.plan(observe(tr))
    assert result == TrafficRoutingPlan()


@pytest.mark.parametrize("finalizers", [(OWN, ROLLOUT_A), (OWN, ROLLOUT_A, ROLLOUT_B), (ROLLOUT_B,)])
def test_a_progressing_finalizer_makes_it_progressing_without_routing_yet(
    finalizers: tuple[str, ...],
) -> None:
    tr = traffic_routing(phase="Healthy", message="TrafficRouting is Healthy", finalizers=finalizers)
    result = planner.plan(observe(tr))
    assert result.status is not None
    assert (result.status.phase, result.status.message) == ("Progressing", "TrafficRouting is Progressing")
    assert changes(result) == []


def test_progressing_creates_the_canary_ingress_owned_by_the_traffic_routing() -> None:
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_A)
    )
    result = planner.plan(observe(tr))
    [create] = changes(result)
    assert isinstance(create, Create)
    obj = create.obj
    assert obj["metadata"]["name"] == "spring-cloud-a-canary"
    [owner] = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "TrafficRouting",
        "mse-traffic",
        "tr-uid",
        True,
    )
    backend = obj["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "spring-cloud-a", "OnlyTrafficRouting: the canary Ingress sends to the stable Service"
    assert result.status is None, "not done: status left alone"
    assert result.requeue_after == 3.0


def test_progressing_routes_the_seed_match_and_header_modification() -> None:
    annotations = routed_canary()["metadata"]["annotations"]
    assert annotations == {
        "team": "a",
        NGINX + "canary": "true",
        NGINX + "canary-by-header": "User-Agent",
        NGINX + "canary-by-header-value": "foo",
        MSE + "request-header-control-update": "x-mse-tag gray",
    }


def test_progressing_is_done_when_a_pass_finds_nothing_to_change() -> None:
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_A)
    )
    result = planner.plan(observe(tr, canary=routed_canary()))
    assert changes(result) == []
    assert result.requeue_after is None
    assert result.status is not None
    assert result.status.observed_generation == 2


def test_a_strategy_without_weight_or_matches_routes_nothing() -> None:
    tr = traffic_routing(
        phase="Progressing",
        message="TrafficRouting is Progressing",
        finalizers=(OWN, ROLLOUT_A),
        strategy={"requestHeaderModifier": {"set": [{"name": "x-mse-tag", "value": "gray"}]}},
    )
    result = planner.plan(observe(tr))
    assert changes(result) == []
    assert result.requeue_after is None


def test_an_ingress_lost_while_progressing_is_reported_then_cleared() -> None:
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_A)
    )
    blocked = planner.plan(observe(tr, ingress=False))
    message = "traffic routing is blocked: Ingress spring-cloud-a not found"
    assert blocked.status is not None
    assert (blocked.status.phase, blocked.status.message) == ("Progressing", message)
    assert [e.reason for e in events(blocked)] == ["TrafficRoutingFailed"]
    assert changes(blocked) == []

    tr = traffic_routing(phase="Progressing", message=message, finalizers=(OWN, ROLLOUT_A))
    healed = planner.plan(observe(tr, canary=routed_canary()))
    assert healed.status is not None
    assert healed.status.message == "TrafficRouting is Progressing"


def test_the_last_rollout_leaving_makes_it_finalizing() -> None:
    tr = traffic_routing(phase="Progressing", message="TrafficRouting is Progressing")
    result = planner.plan(observe(tr, canary=routed_canary()))
    assert result.status is not None
    assert (result.status.phase, result.status.message) == ("Finalizing", "TrafficRouting is Finalizing")
    assert changes(result) == [], "routes are restored from the next pass on"


def test_it_stays_progressing_while_another_rollout_still_releases() -> None:
    tr = traffic_routing(
        phase="Progressing", message="TrafficRouting is Progressing", finalizers=(OWN, ROLLOUT_B)
    )
    result = planner.plan(observe(tr, canary=routed_canary()))
    assert result.status is not None
    assert result.status.phase == "Progressing"


# -- Finalizing / Terminating ---------------------------------------------------------------------------


def test_finalizing_deletes_the_canary_ingress_then_is_healthy() -> None:
    tr = traffic_routing(phase="Finalizing", message="TrafficRouting is Finalizing")
    restoring = planner.plan(observe(tr, canary=routed_canary()))
    assert changes(restoring) == [Delete(ING, "spring-cloud-a-canary")]
    assert restoring.status is None
    assert restoring.requeue_after == 3.0

    restored = planner.plan(observe(tr))
    assert changes(restored) == []
    assert restored.status is not None
    assert (restored.status.phase, restored.status.message) == ("Healthy", "TrafficRouting is Healthy")


def test_deletion_restores_then_drops_the_finalizer() -> None:
    tr = traffic_routing(phase="Progressing", message="TrafficRouting is Progressing", deleting=True)
    terminating = planner.plan(observe(tr, canary=routed_canary()))
    assert changes(terminating) == [Delete(ING, "spring-cloud-a-canary")]
    assert RemoveFinalizer(OWN) not in terminating.actions
    assert terminating.status is not None
    assert terminating.status.phase == "Terminating"

    tr = traffic_routing(phase="Terminating", message="TrafficRouting is Progressing", deleting=True)
    done = planner.plan(observe(tr))
    assert done.actions == (RemoveFinalizer(OWN),)


def test_a_deleted_traffic_routing_never_gets_its_finalizer_back() -> None:
    tr = traffic_routing(phase="Terminating", finalizers=(ROLLOUT_A,), deleting=True)
    result = planner.plan(observe(tr))
    assert result.actions == ()


# -- helpers ----------------------------------------------------------------------------------------------


def test_progressing_finalizers_match_the_prefix_only() -> None:
    tr = traffic_routing(finalizers=(OWN, ROLLOUT_A, "example.com/other"))
    assert progressing_finalizers(tr) == [ROLLOUT_A]


@pytest.mark.parametrize(
    ("strategy", "weight", "matches", "routes"),
    [
        ({"weight": 20}, 20, 0, True),
        (SEED_STRATEGY, None, 1, True),
        ({}, None, 0, False),
    ],
)
def test_route_intent_of_a_v1alpha1_strategy(
    strategy: dict[str, Any], weight: int | None, matches: int, routes: bool
) -> None:
    parsed = TrafficRoutingStrategy.from_obj(strategy)
    intent = route_intent(parsed)
    assert (intent.weight, len(intent.matches), has_route(parsed)) == (weight, matches, routes)
    if matches:
        assert intent.matches[0].headers[0].name == "User-Agent"
        assert intent.request_header_modifier is not None
