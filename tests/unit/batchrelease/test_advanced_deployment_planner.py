"""The Advanced Deployment controller's decisions: which ReplicaSet to create or scale, the extra status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graylane.api import keys
from graylane.batchrelease.advanced_deployment_planner import (
    CreateReplicaSet,
    ScaleReplicaSet,
    ScalingObserved,
    SetExtraStatus,
    plan,
    under_control,
)
from graylane.planner.polling import safety_poll

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "demo"}},
    "spec": {"containers": [{"name": "main", "image": "v2"}]},
}


def deployment(
    partition: Any = "20%",
    *,
    replicas: int = 5,
    surge: Any = "25%",
    unavailable: Any = "25%",
    updated: int = 0,
    paused_strategy: bool = False,
    **meta: Any,
) -> dict[str, Any]:
    strategy: dict[str, Any] = {
        "rollingStyle": "Partition",
        "partition": partition,
        "paused": paused_strategy,
    }
    strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "metadata": {
            "name": "demo",
            "namespace": "ns",
            "uid": "dep-uid",
            "generation": 4,
            "labels": {keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL: "true"},
            "annotations": {
                keys.DEPLOYMENT_STRATEGY_ANNOTATION: json.dumps(strategy),
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: '{"uid":"br"}',
                "team": "a",
            },
            **meta,
        },
        "spec": {
            "replicas": replicas,
            "paused": True,
            "minReadySeconds": 3,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "demo"}},
            "template": TEMPLATE,
        },
        "status": {"observedGeneration": 4, "replicas": replicas, "updatedReplicas": updated},
    }


def rs(
    name: str, replicas: int, available: int | None = None, *, created: str = "1", revision: int = 1
) -> dict[str, Any]:
    available = replicas if available is None else available
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {keys.DEPLOYMENT_REVISION_ANNOTATION: str(revision)},
        },
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available, "readyReplicas": available},
    }


def observe(dep: dict[str, Any], *sets: dict[str, Any], new: str = "") -> ScalingObserved:
    revisions = {s["metadata"]["name"]: ("rev" if s["metadata"]["name"] == new else "old") for s in sets}
    return ScalingObserved(deployment=dep, replica_sets=tuple(sets), revision="rev", rs_revisions=revisions)


def scales(result: Any) -> dict[str, int]:
    return {a.name: a.replicas for a in result.actions if isinstance(a, ScaleReplicaSet)}


# --- who is ours ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "want"),
    [
        ({}, True),
        ({"labels": {}}, True),  # Kruise drives it on the annotations alone (issue 15, item 8)
        ({"annotations": {}}, False),
        ({"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: '{"uid":"br"}'}}, False),  # no strategy
        ({"paused": False}, False),
        ({"strategy": {"type": "RollingUpdate"}}, False),
    ],
)
def test_under_control(change: dict[str, Any], want: bool) -> None:
    dep = deployment()
    for key in ("labels", "annotations"):
        if key in change:
            dep["metadata"][key] = change[key]
    for key in ("paused", "strategy"):
        if key in change:
            dep["spec"][key] = change[key]
    assert under_control(dep) is want
    if not want:
        assert plan(observe(dep, rs("demo-old", 5))).actions == ()


@pytest.mark.parametrize("value", ["nope", json.dumps({"rollingStyle": "Canary", "partition": 1})])
def test_an_unreadable_or_canary_strategy_is_left_alone(value: str) -> None:
    dep = deployment()
    dep["metadata"]["annotations"][keys.DEPLOYMENT_STRATEGY_ANNOTATION] = value
    assert plan(observe(dep, rs("demo-old", 5))).actions == ()


# --- creating the new ReplicaSet --------------------------------------------------------------------


def test_creates_the_new_replicaset_adoptable_by_the_native_controller() -> None:
    result = plan(observe(deployment("20%"), rs("demo-old", 5, revision=3)))
    create = result.actions[0]
    assert isinstance(create, CreateReplicaSet)
    body = create.body
    assert body["metadata"]["name"] == "demo-rev"
    assert body["metadata"]["labels"] == {"app": "demo", "pod-template-hash": "rev"}
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "demo",
            "uid": "dep-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    annotations = body["metadata"]["annotations"]
    assert annotations["team"] == "a"  # the Deployment's annotations are copied, as KCM does
    assert annotations[keys.DEPLOYMENT_REVISION_ANNOTATION] == "4"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "5"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "7"  # 5 + ceil(25% of 5)
    assert body["spec"]["selector"] == {"matchLabels": {"app": "demo", "pod-template-hash": "rev"}}
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "demo", "pod-template-hash": "rev"}
    assert body["spec"]["template"]["spec"] == TEMPLATE["spec"]
    assert (body["spec"]["replicas"], body["spec"]["minReadySeconds"]) == (1, 3)
    assert TEMPLATE["metadata"]["labels"] == {"app": "demo"}  # the Deployment's template is not mutated


@pytest.mark.parametrize(
    ("partition", "surge", "unavailable", "want"),
    [
        ("20%", "25%", "25%", 1),
        (0, "25%", "25%", 0),
        (0, 0, 1, 1),  # surge 0: start with one pod, or the paused native controller scales the old RS back
        ("90%", "25%", "25%", 2),  # within maxSurge: 5 + 2
        (5, "100%", 0, 5),
    ],
)
def test_new_replicaset_initial_size(partition: Any, surge: Any, unavailable: Any, want: int) -> None:
    dep = deployment(partition, surge=surge, unavailable=unavailable)
    (create, *_) = plan(observe(dep, rs("demo-old", 5))).actions
    assert isinstance(create, CreateReplicaSet)
    assert create.body["spec"]["replicas"] == want


def test_the_only_replicaset_follows_spec_replicas() -> None:
    (create, *_) = plan(observe(deployment("20%"))).actions
    assert isinstance(create, CreateReplicaSet)
    assert create.body["spec"]["replicas"] == 5


# --- scaling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "new", "olds", "want"),
    [
        (
            "20%",
            rs("demo-rev", 1),
            [rs("demo-old", 5)],
            {"demo-old": 4},
        ),  # new is at its limit: old goes down
        ("20%", rs("demo-rev", 1, 0), [rs("demo-old", 5)], {"demo-old": 4}),  # maxUnavailable 1 allows it
        ("20%", rs("demo-rev", 1), [rs("demo-old", 4)], {}),  # done
        ("90%", rs("demo-rev", 1), [rs("demo-old", 4)], {"demo-rev": 3}),  # grows within surge (5 + 2)
        ("90%", rs("demo-rev", 3, 0), [rs("demo-old", 4)], {}),  # 7 pods, no new one available: wait
        ("90%", rs("demo-rev", 3, 1), [rs("demo-old", 4)], {"demo-old": 3}),  # within maxUnavailable
        ("90%", rs("demo-rev", 3), [rs("demo-old", 4)], {"demo-old": 1}),  # all available: to the partition
        ("90%", rs("demo-rev", 4), [rs("demo-old", 3)], {"demo-old": 1}),
        ("90%", rs("demo-rev", 4), [rs("demo-old", 1)], {}),  # one old pod is kept below 100%
        ("100%", rs("demo-rev", 4), [rs("demo-old", 1)], {"demo-rev": 5}),
        ("20%", rs("demo-rev", 3), [rs("demo-old", 1)], {"demo-old": 2}),  # partition lowered: old pods back
        ("20%", rs("demo-rev", 7), [rs("demo-old", 1)], {"demo-rev": 5}),  # never above spec.replicas
    ],
)
def test_rolling(
    partition: Any, new: dict[str, Any], olds: list[dict[str, Any]], want: dict[str, int]
) -> None:
    assert scales(plan(observe(deployment(partition), new, *olds, new="demo-rev"))) == want


def test_unhealthy_old_pods_go_first_then_the_newest_old_revision() -> None:
    new = rs("demo-rev", 1, created="3", revision=3)
    unhealthy = rs("demo-a", 2, 0, created="1", revision=1)
    healthy = rs("demo-b", 3, created="2", revision=2)
    assert scales(plan(observe(deployment("20%"), new, unhealthy, healthy, new="demo-rev"))) == {"demo-a": 1}
    fine = rs("demo-a", 2, created="1", revision=1)
    assert scales(plan(observe(deployment("20%"), new, fine, healthy, new="demo-rev"))) == {"demo-b": 2}


def test_scaling_keeps_the_replica_annotations_current() -> None:
    result = plan(observe(deployment("20%"), rs("demo-rev", 1), rs("demo-old", 5), new="demo-rev"))
    (scale,) = [a for a in result.actions if isinstance(a, ScaleReplicaSet)]
    assert scale.annotations == {
        "deployment.kubernetes.io/desired-replicas": "5",
        "deployment.kubernetes.io/max-replicas": "7",
    }


@pytest.mark.parametrize("change", [{"paused_strategy": True}, {"deletionTimestamp": "2026-11-22T11:00:00Z"}])
def test_no_scaling_when_the_strategy_is_paused_or_the_deployment_deleted(change: dict[str, Any]) -> None:
    result = plan(observe(deployment("20%", **change), rs("demo-old", 5)))
    assert not [a for a in result.actions if isinstance(a, CreateReplicaSet | ScaleReplicaSet)]


# --- extra status and requeue -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "sets", "want"),
    [
        (
            "20%",
            [rs("demo-rev", 1), rs("demo-old", 4)],
            '{"updatedReadyReplicas":1,"expectedUpdatedReplicas":1}',
        ),
        (
            "90%",
            [rs("demo-rev", 3, 2), rs("demo-old", 2)],
            '{"updatedReadyReplicas":2,"expectedUpdatedReplicas":4}',
        ),
        (0, [rs("demo-old", 5)], "{}"),  # Go's omitempty drops zeros
    ],
)
def test_extra_status(partition: Any, sets: list[dict[str, Any]], want: str) -> None:
    result = plan(observe(deployment(partition), *sets, new="demo-rev"))
    assert SetExtraStatus(want) in result.actions


def test_extra_status_is_guarded_by_the_deployment_version_it_was_read_at() -> None:
    """Issue 10 chaos: written from a view older than the BatchRelease's hand-back, an unguarded patch
    put the annotation back on a Deployment already released (a rollback, seed 3)."""
    dep = deployment("20%", resourceVersion="41")
    result = plan(observe(dep, rs("demo-rev", 1), rs("demo-old", 4), new="demo-rev"))
    [extra] = [a for a in result.actions if isinstance(a, SetExtraStatus)]
    assert extra.guard == "41"


def test_extra_status_is_not_rewritten_when_unchanged() -> None:
    dep = deployment("20%", updated=1)
    dep["metadata"]["annotations"][keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION] = (
        '{"updatedReadyReplicas":1,"expectedUpdatedReplicas":1}'
    )
    result = plan(observe(dep, rs("demo-rev", 1), rs("demo-old", 4), new="demo-rev"))
    assert result.actions == ()
    assert result.requeue_after is None  # partition satisfied: only events wake it now


@pytest.mark.parametrize(
    "status",
    [
        {"updatedReplicas": 0},  # not enough new pods yet
        {"observedGeneration": 3, "updatedReplicas": 1},  # status not current
        {"replicas": 6, "updatedReplicas": 1},  # surge pods still there
    ],
)
def test_only_a_safety_poll_until_the_partition_is_satisfied(status: dict[str, int]) -> None:
    """The ReplicaSet and Deployment status events wake the wait; no 2 s polling, only a long safety poll."""
    dep = deployment("20%")
    dep["status"] |= status
    dep["metadata"]["annotations"][keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION] = (
        '{"updatedReadyReplicas":1,"expectedUpdatedReplicas":1}'
    )
    result = plan(observe(dep, rs("demo-rev", 1), rs("demo-old", 4), new="demo-rev"))
    assert result.requeue_after == safety_poll(str(dep["metadata"].get("uid", "")))
    assert result.requeue_after is not None
    assert result.requeue_after >= 24.0


# --- scaling the Deployment mid-release (proportional scaling, issue 15 item 9) -----------------------


def sized(
    name: str,
    replicas: int,
    sized_for: int,
    surge: int,
    available: int | None = None,
    *,
    created: str = "1",
) -> dict[str, Any]:
    """A ReplicaSet as the last scale left it: sized for `sized_for` replicas (+ `surge`)."""
    out = rs(name, replicas, available, created=created, revision=2 if name == "demo-rev" else 1)
    out["metadata"]["annotations"] |= {
        "deployment.kubernetes.io/desired-replicas": str(sized_for),
        "deployment.kubernetes.io/max-replicas": str(sized_for + surge),
    }
    return out


def settle(dep: dict[str, Any], *sets: dict[str, Any]) -> list[dict[str, int]]:
    """Run passes, applying each pass's scales (every pod becomes available at once), until none is left.

    Returns the sizes each pass asked for, so a test can read both the first step and where it ends.
    """
    steps: list[dict[str, int]] = []
    by_name = {s["metadata"]["name"]: s for s in sets}
    for _ in range(12):
        result = plan(observe(dep, *by_name.values(), new="demo-rev"))
        wanted = [a for a in result.actions if isinstance(a, ScaleReplicaSet)]
        if not wanted:
            return steps
        steps.append({a.name: a.replicas for a in wanted})
        for action in wanted:
            target = by_name[action.name]
            target["spec"]["replicas"] = action.replicas
            target["status"] = {"availableReplicas": action.replicas, "readyReplicas": action.replicas}
            target["metadata"]["annotations"] |= dict(action.annotations)
        total = sum(s["spec"]["replicas"] for s in by_name.values())
        dep["status"] |= {"replicas": total, "updatedReplicas": by_name["demo-rev"]["spec"]["replicas"]}
    raise AssertionError(f"no steady state after 12 passes: {steps}")


def final(steps: list[dict[str, int]], start: dict[str, int]) -> dict[str, int]:
    out = dict(start)
    for step in steps:
        out |= step
    return out


@pytest.mark.parametrize(
    ("partition", "before", "after", "start", "first", "end"),
    [
        # A percentage: the share is the step's, before and after.
        ("40%", 5, 10, {"demo-rev": 2, "demo-old": 3}, {"demo-rev": 4, "demo-old": 6}, None),
        ("40%", 10, 5, {"demo-rev": 4, "demo-old": 6}, {"demo-rev": 2, "demo-old": 3}, None),
        # An absolute step: scaled by its share, as Kruise does; above the partition it stays there...
        (2, 5, 10, {"demo-rev": 2, "demo-old": 3}, {"demo-rev": 4, "demo-old": 6}, None),
        # ...below it, the ordinary pass brings the new ReplicaSet back up to the partition's 4 pods.
        (
            4,
            10,
            5,
            {"demo-rev": 4, "demo-old": 6},
            {"demo-rev": 2, "demo-old": 3},
            {"demo-rev": 4, "demo-old": 1},
        ),
        # Scaled to zero: everything goes.
        ("40%", 5, 0, {"demo-rev": 2, "demo-old": 3}, {"demo-rev": 0, "demo-old": 0}, None),
    ],
)
def test_a_scaled_deployment_keeps_the_new_revisions_share(
    partition: Any,
    before: int,
    after: int,
    start: dict[str, int],
    first: dict[str, int],
    end: dict[str, int] | None,
) -> None:
    surge = -(-before // 4)  # 25%, rounded up
    dep = deployment(partition, replicas=after)
    dep["status"] |= {"replicas": before, "updatedReplicas": start["demo-rev"]}
    sets = [
        sized("demo-rev", start["demo-rev"], before, surge, created="2"),
        sized("demo-old", start["demo-old"], before, surge),
    ]
    steps = settle(dep, *sets)
    assert steps[0] == first
    assert final(steps, start) == (end or first)


def test_four_of_ten_at_40_percent_scaled_to_five_is_two_of_five() -> None:
    """The case issue 15 item 9 names: 4 of 10 at 40% scaled to 5 must be 2 of 5, not 4 new + 1 old."""
    dep = deployment("40%", replicas=5)
    dep["status"] |= {"replicas": 10, "updatedReplicas": 4}
    result = plan(
        observe(dep, sized("demo-rev", 4, 10, 3, created="2"), sized("demo-old", 6, 10, 3), new="demo-rev")
    )
    assert scales(result) == {"demo-rev": 2, "demo-old": 3}
    assert all(
        a.annotations
        == {"deployment.kubernetes.io/desired-replicas": "5", "deployment.kubernetes.io/max-replicas": "7"}
        for a in result.actions
        if isinstance(a, ScaleReplicaSet)
    )


def test_scaling_down_takes_unavailable_old_pods_first() -> None:
    """cleanupUnhealthyReplicas before the shares: 3 of the 5 pods to remove are old, unavailable ones."""
    dep = deployment("40%", replicas=5)
    dep["status"] |= {"replicas": 10, "updatedReplicas": 4}
    sets = [sized("demo-rev", 4, 10, 3, created="2"), sized("demo-old", 6, 10, 3, available=3)]
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {"demo-rev": 2, "demo-old": 3}


def test_a_scaling_event_with_only_the_old_replicaset_scales_it_before_anything_is_created() -> None:
    dep = deployment("40%", replicas=10)
    result = plan(observe(dep, sized("demo-old", 5, 5, 2)))
    assert scales(result) == {"demo-old": 10}
    assert not [a for a in result.actions if isinstance(a, CreateReplicaSet)]


def test_a_saturated_new_replicaset_takes_the_old_pods_away() -> None:
    dep = deployment("100%", replicas=10)
    sets = [sized("demo-rev", 10, 10, 3, created="2"), sized("demo-old", 1, 5, 2)]
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {"demo-old": 0}


def test_replicasets_sized_for_another_count_get_their_annotations_even_when_their_size_stays() -> None:
    """A scaling event whose pods already add up: only the annotations change (else the event stays)."""
    dep = deployment("40%", replicas=5)
    sets = [sized("demo-rev", 2, 4, 1, created="2"), sized("demo-old", 3, 4, 1)]
    result = plan(observe(dep, *sets, new="demo-rev"))
    assert scales(result) == {"demo-rev": 2, "demo-old": 3}
    assert settle(dep, *sets)[1:] == []  # and then nothing more to do


def test_without_the_max_replicas_annotation_the_share_is_taken_against_the_pods_there_are() -> None:
    dep = deployment("40%", replicas=10)
    dep["status"] |= {"replicas": 5}
    sets = [sized("demo-rev", 2, 5, 2, created="2"), sized("demo-old", 3, 5, 2)]
    for s in sets:
        del s["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"]
    # 13 / 5 of each: the old ReplicaSet (larger) takes round(7.8) - 3 = 5, which is all there is to add.
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {"demo-old": 8, "demo-rev": 2}


@pytest.mark.parametrize("note", ["ten", " 5", "5.0", "1_0", ""])
def test_an_unreadable_desired_replicas_annotation_is_no_scaling_event(note: str) -> None:
    dep = deployment("20%", replicas=5)
    sets = [sized("demo-rev", 1, 5, 2, created="2"), sized("demo-old", 5, 5, 2)]
    sets[1]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = note
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {"demo-old": 4}  # the ordinary pass


def test_a_paused_strategy_still_scales_proportionally() -> None:
    """Kruise's syncDeployment runs `sync` (scale only) while the strategy is paused."""
    dep = deployment("40%", replicas=10, paused_strategy=True)
    sets = [sized("demo-rev", 2, 5, 2, created="2"), sized("demo-old", 3, 5, 2)]
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {"demo-rev": 4, "demo-old": 6}


def test_a_share_of_exactly_half_a_pod_rounds_away_from_zero_as_go_does() -> None:
    """8 pods sized for 6 (+2 surge) scaled to 3 (+1): the old 7 x 4/8 = 3.5 -> 4 and the new 1 x 4/8 =
    0.5 -> 1 (Go's math.Round); the 2 still to remove go from the largest. Banker's rounding would end
    at 3 old + 0 new, losing the new version."""
    dep = deployment("40%", replicas=3)
    sets = [sized("demo-rev", 1, 6, 2, created="2"), sized("demo-old", 7, 6, 2)]
    assert scales(plan(observe(dep, *sets, new="demo-rev"))) == {
        "demo-old": 2,
        "demo-rev": 1,
    }  # 1: annotations
