"""Conversion v1alpha1 <-> v1beta1 of Rollout and BatchRelease, checked against Kruise's rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease, BatchReleaseV1alpha1
from graylane.api.conversion import ConversionError, convert
from graylane.api.rollout_v1alpha1 import Rollout as RolloutV1alpha1
from graylane.api.rollout_v1beta1 import Rollout

V1A, V1B = keys.V1ALPHA1, keys.V1BETA1
WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echoserver"}
STYLE, TR = keys.ROLLING_STYLE_ANNOTATION, keys.TRAFFIC_ROUTING_ANNOTATION


def alpha(*steps: dict[str, Any], annotations: dict[str, str] | None = None, **canary: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "demo", "namespace": "default"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": V1A,
        "kind": "Rollout",
        "metadata": metadata,
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "strategy": {"canary": {"steps": list(steps), **canary}},
        },
    }


def beta(*steps: dict[str, Any], **canary: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1B,
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"workloadRef": dict(WORKLOAD), "strategy": {"canary": {"steps": list(steps), **canary}}},
    }


def canary_of(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["spec"]["strategy"]["canary"]
    return result


# -- v1alpha1 -> v1beta1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"weight": 10, "replicas": 1}, {"traffic": "10%", "replicas": 1, "pause": {}}),
        ({"weight": 20}, {"traffic": "20%", "replicas": "20%", "pause": {}}),
        ({"weight": 0}, {"traffic": "0%", "replicas": "0%", "pause": {}}),
        ({"replicas": "50%", "pause": {"duration": 60}}, {"replicas": "50%", "pause": {"duration": 60}}),
        (
            {"weight": 30, "matches": [{"headers": [{"type": "Exact", "name": "u", "value": "1"}]}]},
            {
                "traffic": "30%",
                "matches": [{"headers": [{"type": "Exact", "name": "u", "value": "1"}]}],
                "replicas": "30%",
                "pause": {},
            },
        ),
        (
            {"requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}, "replicas": 2},
            {"requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}, "replicas": 2, "pause": {}},
        ),
    ],
)
def test_steps_up(step: dict[str, Any], expected: dict[str, Any]) -> None:
    assert canary_of(convert(alpha(step), V1B))["steps"] == [expected]


@pytest.mark.parametrize(
    ("annotations", "extra_workload"),
    [
        (None, True),
        ({}, True),
        ({STYLE: ""}, True),
        ({STYLE: "canary"}, True),
        ({STYLE: "Canary"}, True),
        ({STYLE: "partition"}, False),
        ({STYLE: "Partition"}, False),
        ({STYLE: "PARTITION"}, False),
    ],
)
def test_rolling_style_annotation_up(annotations: dict[str, str] | None, extra_workload: bool) -> None:
    canary = canary_of(convert(alpha({"weight": 5}, annotations=annotations), V1B))

    assert canary.get("enableExtraWorkloadForCanary", False) is extra_workload


def test_spec_up() -> None:
    src = alpha(
        {"weight": 5},
        annotations={TR: "tr-a", STYLE: "partition", "other": "kept"},
        trafficRoutings=[
            {
                "service": "svc",
                "gracePeriodSeconds": 5,
                "ingress": {"classType": "nginx", "name": "ing"},
                "gateway": {"httpRouteName": "route"},
                "customNetworkRefs": [
                    {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService", "name": "vs"}
                ],
            }
        ],
        failureThreshold="10%",
        patchPodTemplateMetadata={"labels": {"a": "b"}, "annotations": {}},
        disableGenerateCanaryService=True,
    )
    src["spec"].update(disabled=True, rolloutID="old-id")
    src["spec"]["strategy"]["paused"] = True
    src["metadata"]["unknownMetaField"] = {"kept": True}

    out = convert(src, V1B)

    assert out["apiVersion"] == V1B
    assert out["metadata"] == src["metadata"]
    assert out["spec"]["workloadRef"] == WORKLOAD
    assert out["spec"]["disabled"] is True
    assert "rolloutID" not in out["spec"]
    assert out["spec"]["strategy"]["paused"] is True
    canary = canary_of(out)
    assert canary["trafficRoutings"] == src["spec"]["strategy"]["canary"]["trafficRoutings"]
    assert canary["failureThreshold"] == "10%"
    assert canary["patchPodTemplateMetadata"] == {"labels": {"a": "b"}}
    assert canary["trafficRoutingRef"] == "tr-a"
    assert canary["disableGenerateCanaryService"] is True
    assert "enableExtraWorkloadForCanary" not in canary


@pytest.mark.parametrize(
    ("ref", "ingress"),
    [
        ({"type": "nginx", "ingress": {"name": "demo"}}, {"classType": "nginx", "name": "demo"}),
        (
            {"type": "nginx", "ingress": {"classType": "mse", "name": "demo"}},
            {"classType": "mse", "name": "demo"},
        ),
        ({"ingress": {"name": "demo"}}, {"name": "demo"}),
    ],
)
def test_v0_1_type_up_becomes_the_ingress_class_type(ref: dict[str, Any], ingress: dict[str, Any]) -> None:
    """Seed 004's `type: nginx` (Kruise v0.1's field): accepted by the schema, not stored as such."""
    src = alpha({"weight": 10}, trafficRoutings=[{"service": "demo", **ref}])
    RolloutV1alpha1.model_validate(src)  # the v1alpha1 model (and so the CRD schema) has the field

    out = canary_of(convert(src, V1B))["trafficRoutings"][0]

    assert out["ingress"] == ingress
    assert "type" not in out


def test_status_up_mirrors_the_canary_step() -> None:
    src = alpha({"weight": 5})
    src["status"] = {
        "observedGeneration": 3,
        "phase": "Progressing",
        "message": "Rollout is in step(1/1)",
        "canaryStatus": {
            "currentStepIndex": 1,
            "currentStepState": "StepPaused",
            "canaryRevision": "abc",
            "canaryService": "old",
        },
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "InRolling",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
    }

    status = convert(src, V1B)["status"]

    assert status == {
        "observedGeneration": 3,
        "canaryStatus": {
            "podTemplateHash": "",
            "currentStepIndex": 1,
            "nextStepIndex": 0,
            "finalisingStep": "",
            "currentStepState": "StepPaused",
            "canaryRevision": "abc",
            "canaryReplicas": 0,
            "canaryReadyReplicas": 0,
        },
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
                "reason": "InRolling",
                "message": "",
            }
        ],
        "phase": "Progressing",
        "message": "Rollout is in step(1/1)",
        "currentStepIndex": 1,
        "currentStepState": "StepPaused",
    }


def test_status_up_without_canary_status_has_zero_mirror() -> None:
    assert convert(alpha({"weight": 5}), V1B)["status"] == {"currentStepIndex": 0, "currentStepState": ""}


def test_kruise_conversion_test_cases_up() -> None:
    # Cases of Kruise's api/v1alpha1/conversion_test.go that this implementation shares.
    basic = convert(alpha({"weight": 10, "pause": {"duration": 30}}), V1B)
    annotated = convert(
        alpha({"weight": 30}, annotations={STYLE: "Partition", TR: "test-traffic-routing"}), V1B
    )

    assert canary_of(basic) == {
        "steps": [{"traffic": "10%", "replicas": "10%", "pause": {"duration": 30}}],
        "enableExtraWorkloadForCanary": True,
    }
    assert canary_of(annotated) == {
        "steps": [{"traffic": "30%", "replicas": "30%", "pause": {}}],
        "trafficRoutingRef": "test-traffic-routing",
    }


# -- v1beta1 -> v1alpha1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"traffic": "5%", "replicas": 1}, {"weight": 5, "replicas": 1, "pause": {}}),
        ({"traffic": "not-a-percent"}, {"weight": 0, "pause": {}}),
        ({"traffic": "5.5%"}, {"weight": 0, "pause": {}}),
        ({"replicas": "100%", "pause": {"duration": 0}}, {"replicas": "100%", "pause": {"duration": 0}}),
        (
            {
                "matches": [
                    {"headers": [{"name": "h", "value": "v"}], "queryParams": [{"name": "q", "value": "1"}]},
                    {"path": {"type": "PathPrefix", "value": "/pc"}},
                ]
            },
            {"matches": [{"headers": [{"name": "h", "value": "v"}]}, {}], "pause": {}},
        ),
    ],
)
def test_steps_down(step: dict[str, Any], expected: dict[str, Any]) -> None:
    assert canary_of(convert(beta(step), V1A))["steps"] == [expected]


@pytest.mark.parametrize(("extra", "style"), [(True, "canary"), (False, "partition"), (None, "partition")])
def test_rolling_style_annotation_down(extra: bool | None, style: str) -> None:
    src = (
        beta({"replicas": 1}) if extra is None else beta({"replicas": 1}, enableExtraWorkloadForCanary=extra)
    )

    out = convert(src, V1A)

    assert out["metadata"]["annotations"] == {STYLE: style}
    assert "enableExtraWorkloadForCanary" not in canary_of(out)


def test_spec_down() -> None:
    src = beta(
        {"replicas": 1},
        trafficRoutingRef="tr-b",
        trafficRoutings=[{"service": "svc", "gracePeriodSeconds": 3, "additionalParams": {"k": "v"}}],
        disableGenerateCanaryService=True,
    )
    src["metadata"]["annotations"] = {TR: "stale", "other": "kept"}
    src["spec"]["disabled"] = True

    out = convert(src, V1A)

    assert out["metadata"]["annotations"] == {TR: "tr-b", STYLE: "partition", "other": "kept"}
    assert out["spec"]["objectRef"] == {"workloadRef": WORKLOAD}
    assert out["spec"]["disabled"] is True
    assert canary_of(out) == {
        "steps": [{"replicas": 1, "pause": {}}],
        "trafficRoutings": [{"service": "svc", "gracePeriodSeconds": 3}],
        "disableGenerateCanaryService": True,
    }


def test_status_down_drops_the_mirror_and_blue_green_status() -> None:
    src = beta({"replicas": 1})
    src["status"] = {
        "phase": "Healthy",
        "canaryStatus": {"currentStepIndex": 1, "currentStepState": "Completed", "nextStepIndex": -1},
        "blueGreenStatus": {"currentStepIndex": 1},
        "currentStepIndex": 1,
        "currentStepState": "Completed",
    }

    status = convert(src, V1A)["status"]

    assert set(status) == {"canaryStatus", "phase"}
    assert status["canaryStatus"]["nextStepIndex"] == -1


@pytest.mark.parametrize(
    "strategy",
    [
        {"blueGreen": {"steps": [{"replicas": 1}]}},
        {"blueGreen": {}, "canary": {"steps": [{"replicas": 1}]}},
        {},
    ],
)
def test_blue_green_down_keeps_only_metadata(strategy: dict[str, Any]) -> None:
    src = beta()
    src["spec"]["strategy"] = strategy
    src["metadata"]["annotations"] = {"a": "b"}
    src["status"] = {"phase": "Progressing", "blueGreenStatus": {"currentStepIndex": 1}}

    out = convert(src, V1A)

    assert out == {
        "apiVersion": V1A,
        "kind": "Rollout",
        "metadata": src["metadata"],
        "spec": {"objectRef": {}, "strategy": {}, "disabled": False},
        "status": {},
    }


# -- round trips and invariants ---------------------------------------------------------------------------


def go_shaped_beta() -> dict[str, Any]:
    """A v1beta1 canary Rollout as the API server returns it (defaults applied, Go-shaped status)."""
    src = beta(
        {
            "traffic": "20%",
            "matches": [{"headers": [{"type": "Exact", "name": "u", "value": "1"}]}],
            "replicas": 1,
            "pause": {},
        },
        {"traffic": "50%", "replicas": "50%", "pause": {"duration": 60}},
        trafficRoutings=[{"service": "svc", "gracePeriodSeconds": 3, "ingress": {"name": "ing"}}],
        enableExtraWorkloadForCanary=True,
        trafficRoutingRef="tr",
    )
    src["metadata"]["annotations"] = {STYLE: "canary", TR: "tr"}
    src["spec"]["disabled"] = False
    src["status"] = Rollout.from_obj(
        {
            **src,
            "status": {
                "phase": "Progressing",
                "canaryStatus": {"currentStepIndex": 2, "currentStepState": "StepPaused"},
            },
        }
    ).to_obj()["status"]
    src["status"].update(currentStepIndex=2, currentStepState="StepPaused")
    return src


def test_v1beta1_round_trip_is_lossless_for_a_go_shaped_canary() -> None:
    src = go_shaped_beta()

    assert convert(convert(src, V1A), V1B) == src


def test_v1alpha1_round_trip_normalises_only_the_rolling_style() -> None:
    src = alpha({"weight": 10, "replicas": 1, "pause": {}}, annotations={STYLE: "Partition"})
    src["spec"]["disabled"] = False

    back = convert(convert(src, V1B), V1A)

    assert back["metadata"]["annotations"] == {STYLE: "partition"}
    assert back["spec"] == src["spec"]


def test_converted_objects_parse_with_the_target_models() -> None:
    up = convert(alpha({"weight": 10}, annotations={TR: "x"}), V1B)

    assert Rollout.from_obj(up).spec.strategy.canary is not None
    assert RolloutV1alpha1.from_obj(convert(go_shaped_beta(), V1A)).spec.object_ref.workload_ref is not None


@pytest.mark.parametrize("obj", [alpha({"weight": 5}, annotations={STYLE: "partition"}), go_shaped_beta()])
@pytest.mark.parametrize("target", [V1A, V1B])
def test_input_is_never_modified_and_same_version_is_a_copy(obj: dict[str, Any], target: str) -> None:
    before = copy.deepcopy(obj)

    out = convert(obj, target)

    assert obj == before
    if obj["apiVersion"] == target:
        assert out == obj
        assert out is not obj
        out["metadata"]["name"] = "changed"
        assert obj["metadata"]["name"] == "demo"


@pytest.mark.parametrize(
    ("obj", "target", "message"),
    [
        ({"apiVersion": V1A, "kind": "TrafficRouting"}, V1B, "TrafficRouting"),
        ({"apiVersion": V1A, "kind": "Deployment"}, V1B, "Deployment"),
        ({"apiVersion": "rollouts.kruise.io/v9", "kind": "Rollout"}, V1A, "v9"),
        ({"apiVersion": V1A, "kind": "Rollout"}, "rollouts.kruise.io/v2", "v2"),
        ({"kind": "Rollout"}, V1B, "None"),
        ({"apiVersion": "apps/v1", "kind": "BatchRelease"}, V1B, "apps/v1"),
    ],
)
def test_unsupported_kinds_and_versions_raise(obj: dict[str, Any], target: str, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        convert(obj, target)
    assert issubclass(ConversionError, ValueError)


# -- BatchRelease -----------------------------------------------------------------------------------------


def br_alpha(annotations: dict[str, str] | None = None, **plan: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "demo"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": V1A,
        "kind": "BatchRelease",
        "metadata": metadata,
        "spec": {"targetReference": {"workloadRef": dict(WORKLOAD)}, "releasePlan": plan},
    }


@pytest.mark.parametrize(
    ("annotation", "style"),
    [
        ("partition", "Partition"),
        ("Canary", "Canary"),
        ("BLUEGREEN", "BlueGreen"),
        ("other", None),
        (None, None),
    ],
)
def test_batch_release_rolling_style_up_comes_from_the_annotation(
    annotation: str | None, style: str | None
) -> None:
    annotations = None if annotation is None else {STYLE: annotation}
    # The v1alpha1 field is ignored on the way up, as Kruise does.
    src = br_alpha(annotations, batches=[{"canaryReplicas": 1}], rollingStyle="Canary")

    plan = convert(src, V1B)["spec"]["releasePlan"]

    assert plan.get("rollingStyle") == style


def test_batch_release_up() -> None:
    src = br_alpha(
        {STYLE: "partition"},
        batches=[{"canaryReplicas": "20%"}, {"canaryReplicas": 5}],
        batchPartition=0,
        rolloutID="r1",
        failureThreshold=1,
        finalizingPolicy="WaitResume",
        patchPodTemplateMetadata={"labels": {"a": "b"}},
        enableExtraWorkloadForCanary=True,
    )
    src["status"] = {
        "phase": "Progressing",
        "canaryStatus": {
            "currentBatch": 1,
            "batchState": "Ready",
            "updatedReplicas": 5,
            "updatedReadyReplicas": 3,
        },
        "conditions": [{"type": "RolloutStarted", "status": "True"}],
        "stableRevision": "s",
        "updateRevision": "u",
        "observedGeneration": 1,
        "collisionCount": 0,
    }

    out = convert(src, V1B)

    assert out["spec"] == {
        "workloadRef": WORKLOAD,
        "releasePlan": {
            "batches": [{"canaryReplicas": "20%"}, {"canaryReplicas": 5}],
            "batchPartition": 0,
            "rolloutID": "r1",
            "failureThreshold": 1,
            "finalizingPolicy": "WaitResume",
            "patchPodTemplateMetadata": {"labels": {"a": "b"}},
            "rollingStyle": "Partition",
            "enableExtraWorkloadForCanary": True,
        },
    }
    assert out["status"] == {
        "conditions": [{"type": "RolloutStarted", "status": "True", "reason": "", "message": ""}],
        "canaryStatus": {
            "batchState": "Ready",
            "currentBatch": 1,
            "updatedReplicas": 5,
            "updatedReadyReplicas": 3,
        },
        "stableRevision": "s",
        "updateRevision": "u",
        "observedGeneration": 1,
        "collisionCount": 0,
        "phase": "Progressing",
    }


def test_batch_release_down() -> None:
    src = {
        "apiVersion": V1B,
        "kind": "BatchRelease",
        "metadata": {"name": "demo", "annotations": {"x": "y"}},
        "spec": {
            "workloadRef": dict(WORKLOAD),
            "releasePlan": {"batches": [{"canaryReplicas": 1}], "rollingStyle": "BlueGreen"},
        },
        "status": {"phase": "Completed", "message": "only in v1beta1", "canaryStatus": {"currentBatch": 0}},
    }

    out = convert(src, V1A)

    assert out["metadata"]["annotations"] == {"x": "y", STYLE: "bluegreen"}
    assert out["spec"] == {
        "targetReference": {"workloadRef": WORKLOAD},
        "releasePlan": {
            "batches": [{"canaryReplicas": 1}],
            "rollingStyle": "BlueGreen",
            "enableExtraWorkloadForCanary": False,
        },
    }
    assert out["status"] == {"canaryStatus": {"currentBatch": 0}, "phase": "Completed"}
    assert BatchReleaseV1alpha1.from_obj(out).spec.release_plan.rolling_style == "BlueGreen"


def test_batch_release_round_trip() -> None:
    src = BatchRelease.from_obj(
        {
            "metadata": {"name": "demo"},
            "spec": {
                "workloadRef": WORKLOAD,
                "releasePlan": {"batches": [{"canaryReplicas": 1}], "rollingStyle": "Canary"},
            },
            "status": {"canaryStatus": {"currentBatch": 0, "batchState": "Upgrading"}},
        }
    ).to_obj()
    src["metadata"]["annotations"] = {STYLE: "canary"}

    assert convert(convert(src, V1A), V1B) == src
