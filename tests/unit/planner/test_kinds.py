"""The Rollout side of every workload kind: how each is observed (observe/workload_objects.py), the
workload-type label it gets, and a kind graylane cannot release (planner/unsupported.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.unit.planner.builders import observed, rollout

from graylane.api import keys
from graylane.api.rollout_v1beta1 import Rollout
from graylane.api.workloads import (
    ADVANCED_DAEMONSET,
    ADVANCED_STATEFULSET,
    CLONESET,
    DAEMONSET,
    KINDS,
    STATEFULSET,
    SUPPORTED,
    WorkloadKind,
    lookup,
)
from graylane.observe.workload_objects import daemonset_revision, held, kind_workload, resume_patch
from graylane.planner import lifecycle
from graylane.planner.actions import LabelWorkload, RecordEvent
from graylane.planner.unsupported import UNSUPPORTED_REASON

Obj = dict[str, Any]
IN_PROGRESSING = {keys.IN_PROGRESSING_ANNOTATION: '{"rolloutName":"demo"}'}


def obj(kind: WorkloadKind, *, status: Obj | None = None, annotations: Obj | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "demo", "generation": 3, "annotations": annotations or {}},
        "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "c", "image": "v1"}]}}, **spec},
        "status": {"observedGeneration": 3, **(status or {})},
    }


@pytest.mark.parametrize(
    ("kind", "status", "stable", "canary"),
    [
        (CLONESET, {"currentRevision": "demo-aaa", "updateRevision": "demo-bbb"}, "aaa", "bbb"),
        (STATEFULSET, {"currentRevision": "demo-aaa", "updateRevision": "demo-bbb"}, "demo-aaa", "demo-bbb"),
        (ADVANCED_STATEFULSET, {"currentRevision": "demo-a", "updateRevision": "demo-b"}, "demo-a", "demo-b"),
        (ADVANCED_DAEMONSET, {"updateRevision": "bbb", "desiredNumberScheduled": 3}, "aaa", "bbb"),
        (ADVANCED_DAEMONSET, {"daemonSetHash": "bbb", "desiredNumberScheduled": 3}, "aaa", "bbb"),  # v1alpha1
    ],
)
def test_revisions_per_kind(kind: WorkloadKind, status: Obj, stable: str, canary: str) -> None:
    annotations = {**IN_PROGRESSING, keys.DAEMONSET_STABLE_REVISION_ANNOTATION: "aaa"}
    w = kind_workload(kind, obj(kind, status=status, annotations=annotations))
    assert (w.stable_revision, w.canary_revision, w.pod_template_hash) == (stable, canary, canary)
    assert w.in_rollout_progressing
    assert not w.is_in_rollback


def test_a_native_daemonset_revision_is_its_controllers_hash_of_the_template() -> None:
    ds = obj(
        DAEMONSET,
        status={"desiredNumberScheduled": 3},
        annotations={keys.DAEMONSET_STABLE_REVISION_ANNOTATION: "x"},
    )
    w = kind_workload(DAEMONSET, ds)
    assert w.canary_revision == daemonset_revision(ds) != ""
    assert w.replicas == 3  # a DaemonSet's replicas are the nodes it runs on
    collided = obj(DAEMONSET, status={"collisionCount": 1})
    assert daemonset_revision(collided) != daemonset_revision(ds)


@pytest.mark.parametrize(
    ("kind", "status", "annotations", "rollback"),
    [
        # Back on the current revision while pods are still on the other: a rollback.
        (
            CLONESET,
            {"currentRevision": "d-a", "updateRevision": "d-a", "replicas": 4, "updatedReplicas": 2},
            {},
            True,
        ),
        (
            CLONESET,
            {"currentRevision": "d-a", "updateRevision": "d-a", "replicas": 4, "updatedReplicas": 4},
            {},
            False,
        ),
        (
            STATEFULSET,
            {"currentRevision": "d-a", "updateRevision": "d-a", "replicas": 4, "updatedReplicas": 1},
            {},
            True,
        ),
        (ADVANCED_DAEMONSET, {"updateRevision": "a"}, {keys.DAEMONSET_STABLE_REVISION_ANNOTATION: "a"}, True),
    ],
)
def test_rollback_is_seen_only_in_a_release(
    kind: WorkloadKind, status: Obj, annotations: Obj, rollback: bool
) -> None:
    assert (
        kind_workload(
            kind, obj(kind, status=status, annotations={**annotations, **IN_PROGRESSING})
        ).is_in_rollback
        is rollback
    )
    assert not kind_workload(kind, obj(kind, status=status, annotations=annotations)).is_in_rollback


@pytest.mark.parametrize(
    ("kind", "spec", "annotations", "holds"),
    [
        (CLONESET, {"updateStrategy": {"partition": "100%"}}, {}, True),
        (CLONESET, {"updateStrategy": {"partition": "0%"}}, {}, False),
        (CLONESET, {}, {}, False),
        (STATEFULSET, {"updateStrategy": {"rollingUpdate": {"partition": 32767}}}, {}, True),
        (STATEFULSET, {"updateStrategy": {"rollingUpdate": {"partition": 0}}}, {}, False),
        (
            DAEMONSET,
            {"updateStrategy": {"type": "OnDelete"}},
            {keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: "RollingUpdate"},
            True,
        ),
        (DAEMONSET, {"updateStrategy": {"type": "OnDelete"}}, {}, False),  # the user's own OnDelete
    ],
)
def test_held(kind: WorkloadKind, spec: Obj, annotations: Obj, holds: bool) -> None:
    assert held(kind, obj(kind, annotations=annotations, **spec)) is holds


def test_the_hand_back_patch_per_kind() -> None:
    assert resume_patch(CLONESET, obj(CLONESET)) == {
        "spec": {"updateStrategy": {"partition": None, "paused": False}}
    }
    assert resume_patch(STATEFULSET, obj(STATEFULSET)) == {
        "spec": {"updateStrategy": {"rollingUpdate": {"partition": None}}}
    }
    ds = obj(DAEMONSET, annotations={keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: "OnDelete"})
    assert resume_patch(DAEMONSET, ds) == {
        "metadata": {"annotations": {keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: None}},
        "spec": {"updateStrategy": {"type": "OnDelete"}},
    }


@pytest.mark.parametrize("kind", [k for k in KINDS if k.kind != "Deployment"])
def test_the_workload_gets_its_type_label_for_the_webhook(kind: WorkloadKind) -> None:
    w = kind_workload(kind, obj(kind, status={"currentRevision": "a", "updateRevision": "a"}))
    ref = {"apiVersion": kind.api_version, "kind": kind.kind, "name": "demo"}
    ro = Rollout.from_obj({**rollout().to_obj(), "spec": {**rollout().to_obj()["spec"], "workloadRef": ref}})
    actions = lifecycle.prelude_actions(observed(ro, w))
    assert LabelWorkload(keys.WORKLOAD_TYPE_LABEL, kind.type_label) in actions


@pytest.mark.parametrize(
    ("api_version", "kind", "found"),
    [
        ("apps/v1", "StatefulSet", STATEFULSET),
        ("apps.kruise.io/v1alpha1", "StatefulSet", ADVANCED_STATEFULSET),
        ("apps.kruise.io/v1beta1", "DaemonSet", ADVANCED_DAEMONSET),
        ("apps.kruise.io/v1alpha1", "DaemonSet", ADVANCED_DAEMONSET),
        ("apps/v1", "ReplicaSet", None),
        ("batch/v1", "Job", None),
    ],
)
def test_lookup_by_group_and_kind(api_version: str, kind: str, found: WorkloadKind | None) -> None:
    assert lookup(api_version, kind) is found


def _unsupported_rollout(**status: Any) -> Rollout:
    r = rollout(status=status)
    body = r.to_obj()
    body["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "demo"}
    return Rollout.from_obj(body)


def test_an_unsupported_kind_says_so_once_with_a_warning_and_writes_nothing_else() -> None:
    first = lifecycle.plan(observed(_unsupported_rollout(), None))
    assert first.status is not None
    assert first.status.phase == "Initial"
    message = first.status.message
    assert message.startswith("WorkloadRef kind is not supported: ReplicaSet (apps/v1)")
    assert SUPPORTED in message
    assert first.actions == (RecordEvent("Warning", UNSUPPORTED_REASON, message),)

    again = lifecycle.plan(observed(_unsupported_rollout(phase="Initial", message=message), None))
    assert again.actions == ()  # no finalizer, no hash annotation: the webhook would refuse them


def _in_release(
    kind: WorkloadKind, *, annotations: dict[str, str] | None = None, routed: bool = False
) -> Rollout:
    body = rollout(
        status={
            "phase": "Progressing",
            "canaryStatus": {
                "currentStepIndex": 2,
                "currentStepState": "StepPaused",
                "canaryRevision": "v2",
                "stableRevision": "v1",
                "rolloutHash": "h",
            },
            "conditions": [{"type": "Progressing", "status": "True", "reason": "InRolling"}],
        },
        metadata={"annotations": annotations or {}},
    ).to_obj()
    body["spec"]["workloadRef"] = {"apiVersion": kind.api_version, "kind": kind.kind, "name": "demo"}
    if routed:
        body["spec"]["strategy"]["canary"]["trafficRoutings"] = [
            {"service": "demo", "ingress": {"name": "demo"}}
        ]
    return Rollout.from_obj(body)


ROLLBACK_IN_BATCH = {keys.ROLLBACK_IN_BATCH_ANNOTATION: "true"}


@pytest.mark.parametrize(
    ("kind", "annotations", "routed", "in_batches"),
    [
        (CLONESET, ROLLBACK_IN_BATCH, False, True),
        (STATEFULSET, ROLLBACK_IN_BATCH, False, True),
        (ADVANCED_STATEFULSET, ROLLBACK_IN_BATCH, False, True),
        (CLONESET, {}, False, False),  # Kruise's default: a fast rollback
        (CLONESET, ROLLBACK_IN_BATCH, True, False),  # not with traffic routing
        (DAEMONSET, ROLLBACK_IN_BATCH, False, False),  # CloneSets and StatefulSets only
    ],
)
def test_a_rollback_restarts_the_steps_only_with_the_policy(
    kind: WorkloadKind, annotations: dict[str, str], routed: bool, in_batches: bool
) -> None:
    rolled_back = kind_workload(
        kind,
        obj(
            kind,
            status={"currentRevision": "d-v1", "updateRevision": "d-v1", "replicas": 4, "updatedReplicas": 2},
            annotations={**IN_PROGRESSING, keys.DAEMONSET_STABLE_REVISION_ANNOTATION: "v1"},
        ),
    )
    if kind is DAEMONSET:  # a native DaemonSet's revision is its template hash
        rolled_back = dataclasses.replace(rolled_back, canary_revision="v1", is_in_rollback=True)
    result = lifecycle.plan(observed(_in_release(kind, annotations=annotations, routed=routed), rolled_back))
    assert result.status is not None
    sub = result.status.canary_status
    assert sub is not None
    reason = {c.type: c.reason for c in result.status.conditions}["Progressing"]
    if in_batches:
        assert (sub.current_step_index, sub.current_step_state, reason) == (
            1,
            "BeforeStepUpgrade",
            "InRolling",
        )
    else:
        assert reason == "Cancelling"
