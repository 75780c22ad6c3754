"""The workload webhook for CloneSets, StatefulSets (native and Advanced) and DaemonSets (native and
Advanced): what it holds, and what it leaves alone (webhook/workload_kinds.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.workloads import (
    ADVANCED_DAEMONSET,
    ADVANCED_STATEFULSET,
    CLONESET,
    DAEMONSET,
    STATEFULSET,
    WorkloadKind,
)
from graylane.observe.workload_objects import daemonset_revision
from graylane.webhook import admission as adm
from graylane.webhook.validation import validate_rollout
from graylane.webhook.validation_common import UNSUPPORTED_WORKLOAD
from graylane.webhook.workload_kinds import KindsMutator, mutate_kind

Obj = dict[str, Any]
PROGRESSING = '{"rolloutName":"web"}'


def workload(kind: WorkloadKind, image: str = "demo:v1", **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "w-uid",
            "labels": {keys.WORKLOAD_TYPE_LABEL: kind.type_label},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **spec,
        },
        "status": {"replicas": 4, "updatedReplicas": 4, "updateRevision": "web-old"},
    }
    if kind not in (DAEMONSET, ADVANCED_DAEMONSET):
        body["spec"].setdefault("replicas", 4)
    return body


def released(old: Obj, image: str = "demo:v2") -> Obj:
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return new


def rollout_for(kind: WorkloadKind, **strategy: Any) -> Obj:
    canary = strategy.pop("canary", {"steps": [{"replicas": 1}]})
    return {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "workloadRef": {"apiVersion": kind.api_version, "kind": kind.kind, "name": "web"},
            "strategy": {"canary": canary, **strategy} if canary is not None else strategy,
        },
        "status": {"phase": "Healthy"},
    }


ALL = [CLONESET, STATEFULSET, ADVANCED_STATEFULSET, DAEMONSET, ADVANCED_DAEMONSET]


@pytest.mark.parametrize(
    ("kind", "held"),
    [
        (CLONESET, {"partition": "100%"}),
        (STATEFULSET, {"rollingUpdate": {"partition": 32767}}),
        (ADVANCED_STATEFULSET, {"rollingUpdate": {"partition": 32767}}),
        (ADVANCED_DAEMONSET, {"rollingUpdate": {"partition": 32767}}),
        (DAEMONSET, {"type": "OnDelete"}),
    ],
)
def test_a_new_pod_template_enters_the_release_held(kind: WorkloadKind, held: Obj) -> None:
    old = workload(kind)
    out = mutate_kind(kind, released(old), old, [rollout_for(kind)])
    assert out is not None
    assert out["metadata"]["annotations"][keys.IN_PROGRESSING_ANNOTATION] == PROGRESSING
    assert out["spec"]["updateStrategy"] == held


def test_a_native_daemonset_keeps_its_strategy_and_stable_revision_for_the_hand_back() -> None:
    old = workload(
        DAEMONSET, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    )
    out = mutate_kind(DAEMONSET, released(old), old, [rollout_for(DAEMONSET)])
    assert out is not None
    annotations = out["metadata"]["annotations"]
    assert annotations[keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION] == "RollingUpdate"
    assert annotations[keys.DAEMONSET_STABLE_REVISION_ANNOTATION] == daemonset_revision(old)
    assert out["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 2}  # kept for later

    # A continuous release (v1 -> v2 -> v3): the original strategy and stable revision stay v1's.
    v3 = released(out, "demo:v3")
    again = mutate_kind(DAEMONSET, v3, out, [rollout_for(DAEMONSET)])
    assert again is not None
    assert (
        again["metadata"]["annotations"][keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION]
        == "RollingUpdate"
    )
    assert again["metadata"]["annotations"][keys.DAEMONSET_STABLE_REVISION_ANNOTATION] == daemonset_revision(
        old
    )


def test_an_advanced_daemonset_records_the_revision_its_pods_are_on() -> None:
    old = workload(ADVANCED_DAEMONSET)
    old["status"] = {"updateRevision": "abc123"}
    out = mutate_kind(ADVANCED_DAEMONSET, released(old), old, [rollout_for(ADVANCED_DAEMONSET)])
    assert out is not None
    assert out["metadata"]["annotations"][keys.DAEMONSET_STABLE_REVISION_ANNOTATION] == "abc123"


def scaled(old: Obj) -> Obj:
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 6
    return new


def _unlabelled(old: Obj) -> Obj:
    new = released(old)
    new["metadata"]["labels"] = {}
    return new


def _rollout_id_unchanged(old: Obj) -> Obj:
    old["metadata"]["annotations"] = {keys.ROLLOUT_ID_LABEL: "r1"}
    return released(old)


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize(
    ("change", "rollouts", "why"),
    [
        (scaled, [rollout_for], "not a new template"),
        (released, [], "no Rollout"),
        (_unlabelled, [rollout_for], "not labelled for the webhook"),
        (_rollout_id_unchanged, [rollout_for], "a rollout-id that did not change"),
        (
            released,
            [lambda k: {**rollout_for(k), "status": {"phase": "Disabled"}}],
            "its Rollout is disabled",
        ),
        (
            released,
            [
                lambda k: {
                    **rollout_for(k),
                    "metadata": {"name": "web", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                }
            ],
            "its Rollout is being deleted",
        ),
        (
            released,
            [lambda k: rollout_for(k, canary=None, blueGreen={"steps": [{"replicas": 1}]})],
            "blue-green",
        ),
    ],
)
def test_left_alone(kind: WorkloadKind, change: Any, rollouts: list[Any], why: str) -> None:
    if kind is CLONESET and why == "blue-green":
        return  # a blue-green CloneSet is held: test_a_blue_green_cloneset_is_held_as_kruise_holds_it
    old = workload(kind)
    assert mutate_kind(kind, change(old), old, [make(kind) for make in rollouts]) is None, why


def test_a_blue_green_cloneset_is_held_as_kruise_holds_it() -> None:
    """Kruise's handleCloneSet treats every non-empty strategy alike: partition "100%", in-progressing;
    with traffic routing (blue-green's own) only from a single revision."""
    old = workload(CLONESET)
    blue_green = rollout_for(CLONESET, canary=None, blueGreen={"steps": [{"replicas": "100%"}]})
    held = mutate_kind(CLONESET, released(old), old, [blue_green])
    assert held is not None
    assert held["spec"]["updateStrategy"]["partition"] == "100%"
    routed = rollout_for(
        CLONESET,
        canary=None,
        blueGreen={"steps": [{"replicas": "100%"}], "trafficRoutings": [{"service": "web"}]},
    )
    old["status"]["updatedReplicas"] = 2
    assert mutate_kind(CLONESET, released(old), old, [routed]) is None


def test_a_cloneset_with_traffic_enters_only_on_a_single_revision() -> None:
    routed = rollout_for(
        CLONESET, canary={"steps": [{"replicas": 1}], "trafficRoutings": [{"service": "web"}]}
    )
    old = workload(CLONESET)
    old["status"]["updatedReplicas"] = 2  # still rolling between two revisions
    assert mutate_kind(CLONESET, released(old), old, [routed]) is None
    old["status"]["updatedReplicas"] = 4
    assert mutate_kind(CLONESET, released(old), old, [routed]) is not None


@pytest.mark.parametrize("kind", [STATEFULSET, ADVANCED_STATEFULSET])
def test_a_statefulset_enters_only_with_replicas_and_rolling_updates(kind: WorkloadKind) -> None:
    empty = workload(kind, replicas=0)
    assert mutate_kind(kind, released(empty), empty, [rollout_for(kind)]) is None
    on_delete = workload(kind, updateStrategy={"type": "OnDelete"})
    assert mutate_kind(kind, released(on_delete), on_delete, [rollout_for(kind)]) is None


def test_a_workload_ref_names_the_kind_by_group_whatever_the_version() -> None:
    old = workload(ADVANCED_STATEFULSET)
    v1alpha1 = rollout_for(ADVANCED_STATEFULSET)
    v1alpha1["spec"]["workloadRef"]["apiVersion"] = "apps.kruise.io/v1alpha1"
    assert mutate_kind(ADVANCED_STATEFULSET, released(old), old, [v1alpha1]) is not None
    native = rollout_for(STATEFULSET)  # apps/v1 StatefulSet "web": another workload
    assert mutate_kind(ADVANCED_STATEFULSET, released(old), old, [native]) is None


@pytest.mark.parametrize(
    ("api_version", "kind", "admitted"),
    [
        ("apps/v1", "Deployment", True),
        ("apps/v1", "StatefulSet", True),
        ("apps/v1", "DaemonSet", True),
        ("apps.kruise.io/v1alpha1", "CloneSet", True),
        ("apps.kruise.io/v1alpha1", "StatefulSet", True),
        ("apps.kruise.io/v1beta1", "StatefulSet", True),
        ("apps.kruise.io/v1alpha1", "DaemonSet", True),
        ("apps/v1", "ReplicaSet", False),  # Kruise admits it and then cannot release it
        ("batch/v1", "Job", False),
    ],
)
def test_the_validating_webhook_admits_the_kinds_graylane_releases(
    api_version: str, kind: str, admitted: bool
) -> None:
    body = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "workloadRef": {"apiVersion": api_version, "kind": kind, "name": "web"},
            "strategy": {"canary": {"steps": [{"replicas": 1}]}},
        },
    }
    errors = validate_rollout(body, None, [])
    if admitted:
        assert errors == []
    else:
        assert [(e.path, e.message) for e in errors] == [("Spec.ObjectRef.WorkloadRef", UNSUPPORTED_WORKLOAD)]
        assert (
            "Advanced StatefulSet (apps.kruise.io/v1beta1, apps.kruise.io/v1alpha1)" in UNSUPPORTED_WORKLOAD
        )


class Rollouts:
    """The Rollouts as the webhook's cache shows them, and as the API server has them (None: gone)."""

    def __init__(self, cached: list[Obj], api: Obj | None) -> None:
        self.cached, self.api = cached, api
        self.read: list[tuple[str, str]] = []

    async def list_rollouts(self, namespace: str) -> list[Obj]:
        return copy.deepcopy(self.cached)

    async def get_rollout(self, namespace: str, name: str) -> Obj | None:
        self.read.append((namespace, name))
        return copy.deepcopy(self.api)


def kinds_request(kind: WorkloadKind, new: Obj, old: Obj) -> adm.AdmissionRequest:
    group, _, version = kind.api_version.rpartition("/")
    return adm.AdmissionRequest(
        review_version="admission.k8s.io/v1",
        uid="req-1",
        operation="UPDATE",
        group=group,
        version=version,
        kind=kind.kind,
        resource=kind.kind.lower() + "s",
        sub_resource="",
        namespace="ns",
        name="web",
        object=new,
        old_object=old,
    )


def _gone(ro: Obj) -> Obj | None:
    return None


def _deleted(ro: Obj) -> Obj | None:
    return {**ro, "metadata": {**ro["metadata"], "deletionTimestamp": "2026-12-05T01:00:00Z"}}


def _disabled(ro: Obj) -> Obj | None:
    return {**ro, "status": {"phase": "Disabled"}}


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("api", [_gone, _deleted, _disabled])
async def test_a_new_hold_is_not_taken_for_a_rollout_the_api_shows_gone(kind: WorkloadKind, api: Any) -> None:
    """The cache still shows the Rollout alive a moment after `kubectl delete rollout` or `disabled: true`:
    the hold would outlive the pass that hands the workload back, so the API's answer decides."""
    old, ro = workload(kind), rollout_for(kind)
    rollouts = Rollouts([ro], api(ro))
    mutator = KindsMutator(rollouts, {(kind.group, kind.kind): kind}, rollouts)
    assert await mutator.mutate(kinds_request(kind, released(old), old)) is None
    assert rollouts.read == [("ns", "web")]


@pytest.mark.parametrize("kind", ALL)
async def test_a_new_hold_for_a_live_rollout_is_taken(kind: WorkloadKind) -> None:
    old, ro = workload(kind), rollout_for(kind)
    rollouts = Rollouts([ro], ro)
    mutator = KindsMutator(rollouts, {(kind.group, kind.kind): kind}, rollouts)
    out = await mutator.mutate(kinds_request(kind, released(old), old))
    assert out is not None
    assert out["metadata"]["annotations"][keys.IN_PROGRESSING_ANNOTATION] == PROGRESSING
    assert rollouts.read == [("ns", "web")]


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("cached", [_deleted, _disabled])
async def test_a_release_the_cache_shows_for_a_disabled_or_deleted_rollout_is_held_on_the_api_one(
    kind: WorkloadKind, cached: Any
) -> None:
    """The cache still shows a re-enabled Rollout Disabled, or the old copy of one created again being
    deleted: the API's copy decides, or the release would roll natively past the Rollout."""
    old, ro = workload(kind), rollout_for(kind)
    stale = cached(ro)
    assert stale is not None
    rollouts = Rollouts([stale], ro)
    mutator = KindsMutator(rollouts, {(kind.group, kind.kind): kind}, rollouts)
    out = await mutator.mutate(kinds_request(kind, released(old), old))
    assert out is not None
    assert out["metadata"]["annotations"][keys.IN_PROGRESSING_ANNOTATION] == PROGRESSING
    assert rollouts.read == [("ns", "web")]


@pytest.mark.parametrize("kind", ALL)
async def test_a_release_for_a_rollout_the_api_also_shows_disabled_is_admitted(kind: WorkloadKind) -> None:
    old, ro = workload(kind), rollout_for(kind)
    rollouts = Rollouts([_disabled(ro) or ro], _disabled(ro))
    mutator = KindsMutator(rollouts, {(kind.group, kind.kind): kind}, rollouts)
    assert await mutator.mutate(kinds_request(kind, released(old), old)) is None
    assert rollouts.read == [("ns", "web")]


async def test_a_hold_in_place_is_kept_without_reading_the_rollout() -> None:
    old, ro = workload(STATEFULSET), rollout_for(STATEFULSET)
    old["metadata"]["annotations"] = {keys.IN_PROGRESSING_ANNOTATION: PROGRESSING}
    rollouts = Rollouts([ro], None)
    mutator = KindsMutator(rollouts, {(STATEFULSET.group, STATEFULSET.kind): STATEFULSET}, rollouts)
    out = await mutator.mutate(kinds_request(STATEFULSET, released(old, "demo:v3"), old))
    assert out is not None
    assert rollouts.read == []
