"""The Rollout's side of an end-to-end TrafficRouting, driven through lifecycle.plan()."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import NOW, workload

from graylane.api.hashing import rollout_hash
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import RecordEvent, RemoveRolloutFinalizer, SetTrafficRoutingFinalizers
from graylane.planner.lifecycle import plan
from graylane.planner.observed import LinkedTrafficRouting, RolloutObserved
from graylane.planner.trafficrouting_link import linked_name
from graylane.trafficrouting.link import link_index

OWN = "rollouts.kruise.io/trafficrouting"
MINE = "progressing.rollouts.kruise.io/rollout-a"
OTHER = "progressing.rollouts.kruise.io/rollout-b"
STEPS = [{"pause": {}, "replicas": 1}]


def rollout_obj(
    *, field: str = "", annotation: str = "", status: dict[str, Any] | None = None
) -> dict[str, Any]:
    canary: dict[str, Any] = {"enableExtraWorkloadForCanary": True, "steps": STEPS}
    if field:
        canary["trafficRoutingRef"] = field
    meta: dict[str, Any] = {"name": "rollout-a", "namespace": "lanes", "uid": "u1", "generation": 1}
    if annotation:
        meta["annotations"] = {"rollouts.kruise.io/trafficrouting": annotation}
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": meta,
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "spring-cloud-a"},
            "strategy": {"canary": canary},
        },
        "status": status or {},
    }


def _with_settled_meta(obj: dict[str, Any]) -> Rollout:
    r = Rollout.from_obj(obj)
    annotations = {
        **(obj["metadata"].get("annotations") or {}),
        "rollouts.kruise.io/hash": rollout_hash(r.spec.strategy),
    }
    obj["metadata"] = {
        **obj["metadata"],
        "finalizers": ["rollouts.kruise.io/rollout"],
        "annotations": annotations,
    }
    return Rollout.from_obj(obj)


def progressing_status(reason: str, *, finalising: bool = False) -> dict[str, Any]:
    canary = {
        "canaryRevision": "c1",
        "stableRevision": "s1",
        "podTemplateHash": "p1",
        "currentStepIndex": 1,
        "nextStepIndex": -1,
        "currentStepState": "Completed" if finalising else "BeforeStepUpgrade",
        "lastUpdateTime": (NOW - timedelta(seconds=10)).isoformat(),
    }
    cond = {
        "type": "Progressing",
        "status": "True",
        "reason": reason,
        "message": "Rollout is in Progressing",
        "lastUpdateTime": (NOW - timedelta(seconds=60)).isoformat(),
    }
    return {"phase": "Progressing", "canaryStatus": canary, "conditions": [cond]}


def link(**fields: Any) -> LinkedTrafficRouting:
    defaults: dict[str, Any] = {
        "name": "mse-traffic",
        "found": True,
        "phase": "Healthy",
        "message": "TrafficRouting is Healthy",
        "finalizers": (OWN,),
        "resource_version": "42",
    }
    return LinkedTrafficRouting(**{**defaults, **fields})


def initializing(
    traffic_routing: LinkedTrafficRouting | None, *, field: str = "mse-traffic", annotation: str = ""
) -> Any:
    r = _with_settled_meta(
        rollout_obj(field=field, annotation=annotation, status=progressing_status("Initializing"))
    )
    w = workload(name="spring-cloud-a", in_rollout_progressing=True)
    return plan(RolloutObserved(rollout=r, workload=w, now=NOW, traffic_routing=traffic_routing))


def reason(result: Any) -> str:
    return str(result.status.conditions[0].reason)


@pytest.mark.parametrize(
    ("field", "annotation", "name"),
    [
        ("mse-traffic", "", "mse-traffic"),  # v1beta1 field alone: Kruise's QUIRK ignores it, graylane not
        ("", "mse-traffic", "mse-traffic"),  # v1alpha1 spelling
        ("from-field", "from-annotation", "from-field"),
        ("", "", ""),
    ],
)
def test_the_linked_name_is_the_field_else_the_annotation(field: str, annotation: str, name: str) -> None:
    obj = rollout_obj(field=field, annotation=annotation)
    assert linked_name(Rollout.from_obj(obj)) == name
    assert link_index(obj) == ([f"lanes/{name}"] if name else [])


def test_initializing_adds_our_finalizer_next_to_the_others() -> None:
    result = initializing(link(finalizers=(OWN, OTHER)))
    assert SetTrafficRoutingFinalizers("mse-traffic", (OWN, OTHER, MINE), "42") in result.actions
    assert reason(result) == "Initializing"
    assert result.requeue_after == 3.0


@pytest.mark.parametrize(("field", "annotation"), [("mse-traffic", ""), ("", "mse-traffic")])
def test_initializing_moves_on_once_the_finalizer_is_there(field: str, annotation: str) -> None:
    result = initializing(
        link(finalizers=(OWN, MINE), phase="Progressing"), field=field, annotation=annotation
    )
    assert reason(result) == "InRolling"
    assert not any(isinstance(a, SetTrafficRoutingFinalizers) for a in result.actions)


@pytest.mark.parametrize(
    ("linked", "message", "warns"),
    [
        (None, "traffic routing is not ready: TrafficRouting mse-traffic not found", True),
        (
            LinkedTrafficRouting(name="mse-traffic"),
            "traffic routing is not ready: TrafficRouting mse-traffic not found",
            True,
        ),
        (
            link(phase="Finalizing"),
            "traffic routing is not ready: "
            "TrafficRouting mse-traffic is Finalizing, waiting for it to finish",
            False,
        ),
        (
            link(phase="Healthy", deleting=True),
            "traffic routing is not ready: "
            "TrafficRouting mse-traffic is Terminating, waiting for it to finish",
            False,
        ),
        (
            link(phase="Initial", message="traffic routing is not ready: Ingress spring-cloud-a not found"),
            "traffic routing is not ready: TrafficRouting mse-traffic is Initial: "
            "traffic routing is not ready: Ingress spring-cloud-a not found",
            True,
        ),
        (
            link(phase="", message=""),
            "traffic routing is not ready: TrafficRouting mse-traffic has not been initialized yet",
            False,
        ),
    ],
)
def test_initializing_waits_with_the_reason(
    linked: LinkedTrafficRouting | None, message: str, warns: bool
) -> None:
    result = initializing(linked)
    assert reason(result) == "Initializing"
    assert result.status.message == message
    assert not any(isinstance(a, SetTrafficRoutingFinalizers) for a in result.actions)
    warnings = [a for a in result.actions if isinstance(a, RecordEvent) and a.type == "Warning"]
    assert [w.message for w in warnings] == ([message] if warns else [])
    assert result.requeue_after == 3.0


def test_a_rollout_without_a_traffic_routing_is_not_held() -> None:
    assert reason(initializing(None, field="")) == "InRolling"


def test_finalising_removes_only_our_finalizer_first() -> None:
    status = progressing_status("Finalising", finalising=True)
    r = _with_settled_meta(rollout_obj(field="mse-traffic", status=status))
    w = workload(
        name="spring-cloud-a",
        in_rollout_progressing=True,
        annotations={"rollouts.kruise.io/in-progressing": "{}"},
    )
    linked = link(phase="Progressing", finalizers=(OWN, MINE, OTHER))
    result = plan(RolloutObserved(rollout=r, workload=w, now=NOW, traffic_routing=linked))
    ours = [a for a in result.actions if isinstance(a, SetTrafficRoutingFinalizers)]
    assert ours == [SetTrafficRoutingFinalizers("mse-traffic", (OWN, OTHER), "42")]

    unlinked = link(phase="Progressing", finalizers=(OWN, OTHER))
    again = plan(RolloutObserved(rollout=r, workload=w, now=NOW, traffic_routing=unlinked))
    assert not any(isinstance(a, SetTrafficRoutingFinalizers) for a in again.actions)


def _deleted(status: dict[str, Any]) -> Rollout:
    obj = rollout_obj(field="mse-traffic", status=status)
    _with_settled_meta(obj)  # settles obj's metadata in place (our finalizer, the hash)
    obj["metadata"]["deletionTimestamp"] = NOW.isoformat()
    return Rollout.from_obj(obj)


def test_a_deleted_rollout_whose_workload_is_gone_still_lets_the_traffic_routing_go() -> None:
    """A namespace being deleted removes the Deployment and the Rollout together: the Rollout's finalizer
    comes off only after our progressing finalizer is off the TrafficRouting (else it stays forever)."""
    r = _deleted(progressing_status("InRolling"))
    linked = link(phase="Progressing", finalizers=(OWN, MINE))
    first = plan(RolloutObserved(rollout=r, workload=None, now=NOW, traffic_routing=linked))
    assert SetTrafficRoutingFinalizers("mse-traffic", (OWN,), "42") in first.actions
    assert not any(isinstance(a, RemoveRolloutFinalizer) for a in first.actions)

    assert first.status is not None
    stored = _deleted(first.status.to_obj())
    unlinked = link(phase="Progressing", finalizers=(OWN,), resource_version="43")
    steps = [plan(RolloutObserved(rollout=stored, workload=None, now=NOW, traffic_routing=unlinked))]
    while steps[-1].status is not None and len(steps) < 4:  # each stored status is planned again
        stored = _deleted(steps[-1].status.to_obj())
        steps.append(plan(RolloutObserved(rollout=stored, workload=None, now=NOW, traffic_routing=unlinked)))
    actions = [a for s in steps for a in s.actions]
    assert RemoveRolloutFinalizer("rollouts.kruise.io/rollout") in actions
    assert not any(isinstance(a, SetTrafficRoutingFinalizers) for a in actions)
