"""Partition style for every kind but Deployment (kinds_style), and the native DaemonSet's pod deletions
(daemonset_pods): the partitions and patches each kind gets, batch readiness, the hand-back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.workloads import (
    ADVANCED_DAEMONSET,
    ADVANCED_STATEFULSET,
    CLONESET,
    DAEMONSET,
    STATEFULSET,
    WorkloadKind,
)
from graylane.batchrelease.controller import choose_control
from graylane.batchrelease.daemonset_pods import DaemonSetPods, DeletePod, max_unavailable
from graylane.batchrelease.daemonset_pods import plan as plan_deletions
from graylane.batchrelease.kinds_style import HOLD_ALL, KindControl
from graylane.batchrelease.partition_style import control_info
from graylane.batchrelease.planner import BatchReleaseObserved, Patch
from graylane.planner.partitions import cloneset_partition, desired_stable

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def release(kind: WorkloadKind, partition: int | None = 0, **plan: Any) -> BatchRelease:
    return BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "br-uid", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": kind.api_version, "kind": kind.kind, "name": "demo"},
                "releasePlan": {
                    "batches": [{"canaryReplicas": 1}, {"canaryReplicas": "50%"}, {"canaryReplicas": "100%"}],
                    "batchPartition": partition,
                    **plan,
                },
            },
        }
    )


def workload(kind: WorkloadKind, *, replicas: int = 4, controlled: bool = True, **spec: Any) -> Obj:
    annotations = {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release(kind))} if controlled else {}
    status: Obj = {"observedGeneration": 2}
    if kind in (DAEMONSET, ADVANCED_DAEMONSET):
        status |= {"desiredNumberScheduled": replicas, "updatedNumberScheduled": 0}
    else:
        status |= {"replicas": replicas, "updatedReplicas": 0}
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "demo", "resourceVersion": "7", "generation": 2, "annotations": annotations},
        "spec": {"replicas": replicas, **spec},
        "status": status,
    }


def pod(
    name: str, revision: str, *, ready: bool = True, created: str = "2026-12-04T10:00:00Z", **meta: Any
) -> Obj:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "labels": {keys.CONTROLLER_REVISION_HASH_LABEL: revision},
            **meta,
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def observed(
    kind: WorkloadKind,
    obj: Obj | None,
    *,
    pods: tuple[Obj, ...] = (),
    br: BatchRelease | None = None,
    held: bool = True,
) -> BatchReleaseObserved:
    return BatchReleaseObserved(
        release=br or release(kind),
        workload=obj,
        now=NOW,
        update_revision="new",
        stable_revision="old",
        pods=pods,
        release_held=held,
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (CLONESET, CLONESET),
        (STATEFULSET, STATEFULSET),
        (ADVANCED_STATEFULSET, ADVANCED_STATEFULSET),
        (DAEMONSET, DAEMONSET),
        (ADVANCED_DAEMONSET, ADVANCED_DAEMONSET),
    ],
)
def test_every_kind_gets_its_partition_control_even_when_canary_style_is_asked(
    kind: WorkloadKind, expected: WorkloadKind
) -> None:
    for style in ("", "Partition", "Canary"):
        control = choose_control(release(kind, rollingStyle=style))
        assert isinstance(control, KindControl)
        assert control.kind is expected


def test_blue_green_and_unknown_kinds_are_not_driven_here() -> None:
    # Blue-green: a CloneSet has its own control (bluegreen_cloneset); other kinds have none.
    assert type(choose_control(release(CLONESET, rollingStyle="BlueGreen"))).__name__ == "BlueGreenCloneSet"
    assert choose_control(release(STATEFULSET, rollingStyle="BlueGreen")) is None
    unknown = release(CLONESET).model_copy(deep=True)
    assert unknown.spec.workload_ref is not None
    unknown.spec.workload_ref.kind = "ReplicaSet"
    unknown.spec.workload_ref.api_version = "apps/v1"
    assert choose_control(unknown) is None


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [
        (CLONESET, {"paused": False, "partition": "100%"}),
        (STATEFULSET, {"rollingUpdate": {"partition": HOLD_ALL}}),
        (ADVANCED_STATEFULSET, {"rollingUpdate": {"partition": HOLD_ALL, "paused": False}}),
        (ADVANCED_DAEMONSET, {"rollingUpdate": {"partition": 3, "paused": False}}),  # desiredNumberScheduled
        (DAEMONSET, {"type": "OnDelete"}),
    ],
)
def test_initialize_claims_the_workload_and_holds_every_pod(kind: WorkloadKind, strategy: Obj) -> None:
    obj = workload(kind, replicas=3, controlled=False)
    step = KindControl(kind).initialize(observed(kind, obj))
    assert not step.done
    [patch] = step.actions
    assert isinstance(patch, Patch)
    assert patch.guard == "7"
    assert patch.body["spec"]["updateStrategy"] == strategy
    assert keys.BATCH_RELEASE_CONTROL_ANNOTATION in patch.body["metadata"]["annotations"]
    assert KindControl(kind).initialize(observed(kind, workload(kind, replicas=3))).done


@pytest.mark.parametrize(
    ("replicas", "batch", "no_need", "stable"),
    [
        (4, 1, 0, 3),
        (4, "50%", 0, 2),
        (5, "50%", 0, 2),  # percentages round up: 3 new pods
        (4, "100%", 0, 0),
        (5, "90%", 0, 0),  # not capped (only a partition-style Deployment is)
        (5, 1, 4, 0),  # rollback in batches: 4 pods need no update, the batch is over the other one
        (10, "50%", 4, 3),
    ],
)
def test_desired_stable(replicas: int, batch: int | str, no_need: int, stable: int) -> None:
    assert desired_stable(replicas, batch, no_need) == stable


@pytest.mark.parametrize(
    ("stable", "replicas", "batch", "partition"),
    [
        (3, 4, 1, 3),  # an int batch: the number
        (2, 4, "50%", "50%"),
        (2, 5, "50%", "40%"),  # floor(2 x 100 / 5)%
        (0, 5, "100%", "0%"),
        (4, 4, "1%", "100%"),
        (1, 200, "99%", "1%"),  # 0% would keep no old pod for a batch below 100%
        (1, 200, "100%", "0%"),
    ],
)
def test_cloneset_partition_is_a_percentage_when_the_batch_is(
    stable: int, replicas: int, batch: int | str, partition: int | str
) -> None:
    assert cloneset_partition(stable, replicas, batch) == partition


@pytest.mark.parametrize(
    ("kind", "spec", "batch", "strategy"),
    [
        (CLONESET, {"updateStrategy": {"partition": "100%"}}, 1, {"partition": 3}),
        (CLONESET, {"updateStrategy": {"partition": 3}}, 1, None),  # already there
        (CLONESET, {"updateStrategy": {"partition": 3}}, 2, {"partition": "50%"}),
        (
            STATEFULSET,
            {"updateStrategy": {"rollingUpdate": {"partition": HOLD_ALL}}},
            1,
            {"rollingUpdate": {"partition": 3}},
        ),
        (STATEFULSET, {"updateStrategy": {"rollingUpdate": {"partition": 1}}}, 1, None),  # never raised
        (
            ADVANCED_DAEMONSET,
            {"updateStrategy": {"rollingUpdate": {"partition": 4}}},
            2,
            {"rollingUpdate": {"partition": 2}},
        ),
    ],
)
def test_upgrade_lowers_the_partition_to_the_batch(
    kind: WorkloadKind, spec: Obj, batch: int, strategy: Obj | None
) -> None:
    obj = workload(kind, **spec)
    step = KindControl(kind).upgrade(observed(kind, obj, br=release(kind, batch - 1)), batch - 1)
    assert step.done
    patches = [a for a in step.actions if isinstance(a, Patch) and a.kind == kind.kind]
    if strategy is None:
        assert patches == []
    else:
        [patch] = patches
        assert patch.body == {"spec": {"updateStrategy": strategy}}
        assert patch.guard == "7"


def test_a_native_daemonset_batch_is_written_in_its_annotations() -> None:
    obj = workload(DAEMONSET, replicas=3, updateStrategy={"type": "OnDelete"})
    step = KindControl(DAEMONSET).upgrade(observed(DAEMONSET, obj, br=release(DAEMONSET, 1)), 1)
    [patch] = step.actions
    assert isinstance(patch, Patch)
    assert patch.body == {
        "metadata": {
            "annotations": {
                keys.DAEMONSET_PARTITION_ANNOTATION: "1",
                keys.DAEMONSET_BATCH_REVISION_ANNOTATION: "new",
            }
        }
    }
    obj["metadata"]["annotations"].update(patch.body["metadata"]["annotations"])
    assert KindControl(DAEMONSET).upgrade(observed(DAEMONSET, obj, br=release(DAEMONSET, 1)), 1).actions == ()


@pytest.mark.parametrize(
    ("kind", "status", "pods", "ready"),
    [
        # A CloneSet reports updatedReadyReplicas.
        (CLONESET, {"updatedReplicas": 2, "updatedReadyReplicas": 2}, (), True),
        (CLONESET, {"updatedReplicas": 2, "updatedReadyReplicas": 1}, (), False),
        # A native StatefulSet does not: its ready pods on the update revision are counted.
        (STATEFULSET, {"updatedReplicas": 2}, (pod("a", "new"), pod("b", "new")), True),
        (STATEFULSET, {"updatedReplicas": 2}, (pod("a", "new"), pod("b", "new", ready=False)), False),
        (STATEFULSET, {"updatedReplicas": 1}, (pod("a", "new"),), False),
        # DaemonSets: updatedNumberScheduled and the pods.
        (DAEMONSET, {"updatedNumberScheduled": 2}, (pod("a", "new"), pod("b", "new"), pod("c", "old")), True),
    ],
)
def test_a_batch_is_ready_with_enough_updated_ready_pods(
    kind: WorkloadKind, status: Obj, pods: tuple[Obj, ...], ready: bool
) -> None:
    obj = workload(kind)
    obj["status"] |= status
    if kind is DAEMONSET:
        obj["status"]["desiredNumberScheduled"] = 3
    assert KindControl(kind).check(observed(kind, obj, pods=pods, br=release(kind, 1)), 1).done is ready


@pytest.mark.parametrize(
    ("kind", "spec", "annotations", "body"),
    [
        (
            CLONESET,
            {"updateStrategy": {"partition": "0%", "paused": False}},
            {},
            {"spec": {"updateStrategy": {"partition": None, "paused": False}}},
        ),
        (STATEFULSET, {"updateStrategy": {"rollingUpdate": {"partition": 0}}}, {}, None),  # the API's default
        (
            ADVANCED_DAEMONSET,
            {"updateStrategy": {"rollingUpdate": {"partition": 0}}},
            {keys.DAEMONSET_STABLE_REVISION_ANNOTATION: "old"},
            {
                "metadata": {"annotations": {keys.DAEMONSET_STABLE_REVISION_ANNOTATION: None}},
                "spec": {"updateStrategy": {"rollingUpdate": {"partition": None, "paused": False}}},
            },
        ),
        (
            DAEMONSET,
            {"updateStrategy": {"type": "OnDelete"}},
            {
                keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: "RollingUpdate",
                keys.DAEMONSET_PARTITION_ANNOTATION: "0",
            },
            {
                "metadata": {
                    "annotations": {
                        keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: None,
                        keys.DAEMONSET_PARTITION_ANNOTATION: None,
                    }
                },
                "spec": {"updateStrategy": {"type": "RollingUpdate"}},
            },
        ),
    ],
)
def test_finalize_hands_the_workload_back(
    kind: WorkloadKind, spec: Obj, annotations: Obj, body: Obj | None
) -> None:
    obj = workload(kind, controlled=False, **spec)
    obj["metadata"]["annotations"] = annotations
    step = KindControl(kind).finalize(observed(kind, obj, br=release(kind, None)))
    if body is None:
        assert step.done
        assert step.actions == ()
    else:
        [patch] = step.actions
        assert not step.done
        assert isinstance(patch, Patch)
        assert patch.body == body
        assert patch.guard == ""


def test_finalize_of_a_held_workload_only_drops_control_info() -> None:
    """A continuous release: the Rollout still holds the workload; the next BatchRelease takes it over."""
    obj = workload(STATEFULSET, updateStrategy={"rollingUpdate": {"partition": HOLD_ALL}})
    step = KindControl(STATEFULSET).finalize(
        observed(STATEFULSET, obj, br=release(STATEFULSET, 1), held=True)
    )
    [patch] = step.actions
    assert isinstance(patch, Patch)
    assert patch.body == {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}}}


# -- the native DaemonSet's pod deletions ----------------------------------------------------------------


def daemonset(partition: int | None, *, max_unavailable_: Any = None, desired: int = 3) -> Obj:
    annotations = {keys.DAEMONSET_BATCH_REVISION_ANNOTATION: "new"}
    if partition is not None:
        annotations[keys.DAEMONSET_PARTITION_ANNOTATION] = str(partition)
    rolling = {"maxUnavailable": max_unavailable_} if max_unavailable_ is not None else {}
    return {
        "metadata": {"name": "ds", "annotations": annotations},
        "spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": rolling}},
        "status": {"desiredNumberScheduled": desired},
    }


def test_old_pods_are_deleted_oldest_first_until_the_partition_is_met() -> None:
    pods = (
        pod("a", "old", created="2026-12-04T10:00:03Z"),
        pod("b", "old", created="2026-12-04T10:00:01Z"),
        pod("c", "old", created="2026-12-04T10:00:02Z"),
    )
    result = plan_deletions(DaemonSetPods(daemonset(2, max_unavailable_=2), pods))
    assert result.deletes == (DeletePod("b", "uid-b"),)
    result = plan_deletions(DaemonSetPods(daemonset(0, max_unavailable_=2), pods))
    assert result.deletes == (DeletePod("b", "uid-b"), DeletePod("c", "uid-c"))  # two at most


@pytest.mark.parametrize(
    ("pods", "why"),
    [
        ((pod("a", "new"), pod("b", "new"), pod("c", "old")), "the batch is done"),
        ((pod("a", "new", ready=False), pod("b", "old"), pod("c", "old")), "a pod is unavailable already"),
        (
            (pod("a", "old", deletionTimestamp="2026-12-04T10:00:00Z"), pod("b", "old"), pod("c", "old")),
            "a pod is going",
        ),
    ],
)
def test_no_pod_is_deleted_when(pods: tuple[Obj, ...], why: str) -> None:
    assert plan_deletions(DaemonSetPods(daemonset(1), pods)).deletes == (), why


def test_a_daemonset_without_a_batch_is_left_alone() -> None:
    assert plan_deletions(DaemonSetPods(daemonset(None), (pod("a", "old"),))).deletes == ()


@pytest.mark.parametrize(
    ("value", "desired", "allowed"), [(None, 10, 1), (3, 10, 3), ("25%", 10, 2), ("1%", 10, 1)]
)
def test_max_unavailable_scales_down_and_is_at_least_one(value: Any, desired: int, allowed: int) -> None:
    assert max_unavailable(daemonset(0, max_unavailable_=value, desired=desired)) == allowed


# -- rollback in batches ------------------------------------------------------------------------------


def _rollback_release(kind: WorkloadKind, **status: Any) -> BatchRelease:
    body = release(kind, rolloutID="rollback-new").to_obj()
    body["metadata"]["annotations"] = {keys.ROLLBACK_IN_BATCH_ANNOTATION: "true"}
    body["status"] = status
    return BatchRelease.from_obj(body)


def test_rollback_in_batches_marks_the_pods_already_on_the_target_revision() -> None:
    pods = (pod("a", "new"), pod("b", "new"), pod("c", "old"))
    br = _rollback_release(CLONESET)
    step = KindControl(CLONESET).initialize(observed(CLONESET, workload(CLONESET), pods=pods, br=br))
    assert not step.done
    assert step.no_need_update == 2
    assert [a.name for a in step.actions if isinstance(a, Patch)] == ["a", "b"]
    marked = tuple(
        {
            **p,
            "metadata": {
                **p["metadata"],
                "labels": {**p["metadata"]["labels"], keys.NO_NEED_UPDATE_POD_LABEL: "rollback-new"},
            },
        }
        if p["metadata"]["name"] in ("a", "b")
        else p
        for p in pods
    )
    done = KindControl(CLONESET).initialize(observed(CLONESET, workload(CLONESET), pods=marked, br=br))
    assert done.done
    assert done.no_need_update == 2


@pytest.mark.parametrize(
    ("kind", "spec", "partition"),
    [
        # 4 pods, 2 already back: batch 1 of the other 2; an ordered StatefulSet keeps the 2 lowest
        # ordinals (the ones that need no update) below the partition too.
        (CLONESET, {"updateStrategy": {"partition": "100%"}}, {"partition": 1}),
        (
            STATEFULSET,
            {"updateStrategy": {"rollingUpdate": {"partition": HOLD_ALL}}},
            {"rollingUpdate": {"partition": 3}},
        ),
        (
            ADVANCED_STATEFULSET,
            {"updateStrategy": {"rollingUpdate": {"partition": HOLD_ALL, "unorderedUpdate": {}}}},
            {"rollingUpdate": {"partition": 1}},
        ),
    ],
)
def test_rollback_in_batches_takes_each_batch_over_the_pods_that_need_it(
    kind: WorkloadKind, spec: Obj, partition: Obj
) -> None:
    br = _rollback_release(kind, canaryStatus={"noNeedUpdateReplicas": 2})
    step = KindControl(kind).upgrade(observed(kind, workload(kind, **spec), br=br), 0)
    [patch] = [a for a in step.actions if isinstance(a, Patch) and a.kind == kind.kind]
    assert patch.body == {"spec": {"updateStrategy": partition}}
    ready = workload(kind, **spec)
    ready["status"] |= {"updatedReplicas": 3, "updatedReadyReplicas": 3}
    assert KindControl(kind).check(observed(kind, ready, br=br), 0).done
