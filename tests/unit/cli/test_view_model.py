"""The status view model: step table, pods per version, traffic, and what the release waits for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli.tables import history_rows, human_age, list_rows
from graylane.cli.view_model import Snapshot, build_view, summary_line

NOW = dt.datetime(2026, 11, 22, 12, 0, 30, tzinfo=dt.UTC)
STAMP = "2026-11-22T12:00:00Z"  # 30 s before NOW
SEED = [{"replicas": 1, "traffic": "10%", "pause": {}}, {"replicas": 2, "traffic": "30%", "pause": {}}]


def rollout(
    *,
    phase: str = "Progressing",
    reason: str = "InRolling",
    step: int = 1,
    state: str = "StepPaused",
    steps: list[dict[str, Any]] | None = None,
    extra_workload: bool = True,
    paused: bool = False,
    routings: list[dict[str, Any]] | None = None,
) -> Rollout:
    canary: dict[str, Any] = {"steps": steps or SEED, "enableExtraWorkloadForCanary": extra_workload}
    if routings:
        canary["trafficRoutings"] = routings
    return Rollout.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {"paused": paused, "canary": canary},
            },
            "status": {
                "phase": phase,
                "message": "msg",
                "conditions": [
                    {"type": "Progressing", "status": "True", "reason": reason, "lastUpdateTime": STAMP}
                ],
                "canaryStatus": {
                    "currentStepIndex": step,
                    "currentStepState": state,
                    "stableRevision": "s1",
                    "podTemplateHash": "c1",
                    "lastUpdateTime": STAMP,
                },
            },
        }
    )


def pod(name: str, revision: str, *, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"app": "demo", "pod-template-hash": revision, "rollouts.kruise.io/rollout-batch-id": "1"},
        "creationTimestamp": STAMP,
    }
    if terminating:
        meta["deletionTimestamp"] = STAMP
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"ready": ready, "restartCount": 0}],
        },
    }


DEPLOYMENT = {
    "metadata": {"name": "demo"},
    "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "main", "image": "demo:v2"}]}}},
}


def snapshot(
    ro: Rollout, pods: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None
) -> Snapshot:
    stable = [pod(f"s{i}", "s1") for i in range(5)]
    return Snapshot(ro, DEPLOYMENT, stable + (pods or []), events or [])


def test_paused_at_step_one_waits_for_approval_with_pod_counts() -> None:
    view = build_view(snapshot(rollout(), [pod("c0", "c1")]), NOW)
    assert (view.step, view.steps_total, view.state) == (1, 2, "StepPaused")
    assert (view.canary.ready, view.canary.total, view.canary_wanted) == (1, 1, 1)
    assert (view.stable.ready, view.stable.total) == (5, 5)
    assert view.waiting.kind == "approval"
    assert view.waiting.text == "waiting for approval: run `graylane approve demo`"
    assert view.waiting.waited_seconds == 30
    assert [(r.index, r.stable_pods, r.canary_pods, r.state) for r in view.steps] == [
        (1, 5, 1, "current"),
        (2, 5, 2, "pending"),
    ]
    assert view.traffic.weight == "10%"
    assert view.traffic.note == "no trafficRoutings: pods only"


def test_a_timed_pause_counts_down_from_last_update_time() -> None:
    steps: list[dict[str, Any]] = [{"replicas": 1, "pause": {"duration": 45}}, {"replicas": "100%"}]
    view = build_view(snapshot(rollout(steps=steps)), NOW)
    assert view.waiting.kind == "timed-pause"
    assert view.waiting.seconds_left == 15
    assert view.waiting.text == "timed pause of 45s, then step 2"
    assert view.steps[1].pause == "none (last step at 100%)"


def test_pods_becoming_ready_and_terminating_pods_are_not_counted() -> None:
    pods = [pod("c0", "c1", ready=False), pod("c1", "c1", terminating=True)]
    view = build_view(snapshot(rollout(step=2, state="StepUpgrade"), pods), NOW)
    assert (view.canary.ready, view.canary.total, view.canary_wanted) == (0, 1, 2)
    assert view.waiting.kind == "pods"
    assert view.waiting.text == "waiting for pods: canary 0/2 ready"
    assert [r.state for r in view.steps] == ["done", "current"]


def test_partition_style_steps_replace_old_pods() -> None:
    steps = [{"replicas": "20%", "pause": {}}, {"replicas": "90%", "pause": {}}]
    view = build_view(snapshot(rollout(steps=steps, extra_workload=False)), NOW)
    assert view.style == "partition"
    assert [(r.stable_pods, r.canary_pods) for r in view.steps] == [(4, 1), (1, 4)]


@pytest.mark.parametrize(
    ("reason", "paused", "kind", "text"),
    [
        ("Paused", True, "paused", "paused by the user: run `graylane resume demo`"),
        ("Initializing", False, "initializing", "initialising the release (grace period)"),
        ("Cancelling", False, "cancelling", "cancelling the release: starting"),
        ("Finalising", False, "finalising", "finalising the release: starting"),
    ],
)
def test_what_the_release_waits_for_by_reason(reason: str, paused: bool, kind: str, text: str) -> None:
    view = build_view(snapshot(rollout(reason=reason, paused=paused)), NOW)
    assert (view.waiting.kind, view.waiting.text) == (kind, text)


def test_initializing_grace_counts_down_three_seconds() -> None:
    view = build_view(snapshot(rollout(reason="Initializing")), NOW - dt.timedelta(seconds=29))
    assert view.waiting.seconds_left == 2


def test_a_completed_release_shows_every_step_done_and_all_pods_stable() -> None:
    ro = rollout(phase="Healthy", reason="Completed", step=2, state="Completed")
    view = build_view(snapshot(ro, [pod("x", "c1")]), NOW)
    assert [r.state for r in view.steps] == ["done", "done"]
    assert (view.canary.total, view.stable.total) == (0, 6)
    assert view.waiting.kind == "none"
    assert view.traffic.weight is None


def test_a_cancelled_release_marks_the_remaining_steps_cancelled() -> None:
    ro = rollout(phase="Healthy", reason="Completed", step=1, state="StepPaused")
    assert [r.state for r in build_view(snapshot(ro), NOW).steps] == ["cancelled", "cancelled"]


def test_ingress_and_custom_routings_are_routed() -> None:
    ro = rollout(routings=[{"service": "demo", "ingress": {"name": "demo"}}])
    view = build_view(snapshot(ro), NOW)
    assert view.traffic.routings == ["demo"]
    assert view.traffic.note == "read back from the routing objects"
    custom = rollout(
        routings=[
            {
                "service": "demo",
                "customNetworkRefs": [
                    {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "name": "vs"}
                ],
            }
        ]
    )
    assert build_view(snapshot(custom), NOW).traffic.note == "read back from the routing objects"


def test_events_keep_the_most_recent_and_pods_carry_batch_ids() -> None:
    events = [
        {
            "type": "Normal",
            "reason": "Progressing",
            "message": f"m{i}",
            "lastTimestamp": f"2026-11-22T11:59:{i:02d}Z",
        }
        for i in range(12)
    ]
    view = build_view(snapshot(rollout(), [pod("c0", "c1")], events), NOW)
    assert [e.message for e in view.events] == [f"m{i}" for i in range(4, 12)]
    canary = next(p for p in view.pods if p.name == "c0")
    assert (canary.version, canary.batch_id, canary.ready, canary.age) == ("canary", "1", "1/1", "30s")


def test_summary_line_has_no_countdown_so_it_changes_only_with_the_release() -> None:
    ro = rollout()
    first = summary_line(build_view(snapshot(ro, [pod("c0", "c1")]), NOW))
    later = summary_line(build_view(snapshot(ro, [pod("c0", "c1")]), NOW + dt.timedelta(seconds=9)))
    assert first == later
    assert first == (
        "demo Progressing step 1/2 StepPaused · canary 1/1 ready · stable 5/5 ready"
        " · waiting for approval: run `graylane approve demo`"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 60, "5h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (20 * 86400, "20d"),
    ],
)
def test_human_age_is_kubectls(seconds: int, text: str) -> None:
    assert human_age(seconds) == text


def test_list_rows_follow_the_printer_columns() -> None:
    raw = rollout().model_dump(by_alias=True, mode="json")
    raw["metadata"]["creationTimestamp"] = STAMP
    raw["status"]["currentStepIndex"] = 1
    raw["status"]["currentStepState"] = "StepPaused"
    assert list_rows([raw], NOW, all_namespaces=False) == [
        ["demo", "Progressing", "1/2", "StepPaused", "msg", "30s"]
    ]
    assert list_rows([raw], NOW, all_namespaces=True)[0][:2] == ["ns", "demo"]


def test_history_rows_mark_stable_current_and_canary_revisions() -> None:
    def rs(revision: int, image: str, hash_: str) -> dict[str, Any]:
        template = {
            "metadata": {"labels": {"app": "demo", "pod-template-hash": hash_}},
            "spec": {"containers": [{"image": image}]},
        }
        return {
            "metadata": {
                "labels": {"pod-template-hash": hash_},
                "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                "creationTimestamp": STAMP,
            },
            "spec": {"replicas": 5, "template": template},
            "status": {"readyReplicas": 5},
        }

    workload = {
        "spec": {
            "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"image": "v2"}]}}
        }
    }
    rows = history_rows(workload, [rs(2, "v2", "x2"), rs(1, "v1", "s1")], [rs(1, "v3", "c1")], rollout(), NOW)
    assert [(r.revision, r.hash, r.images, r.pods, r.note) for r in rows] == [
        ("1", "s1", ["v1"], "5/5", "stable"),
        ("2", "x2", ["v2"], "5/5", "current template"),
        ("canary", "c1", ["v3"], "5/5", "canary Deployment"),
    ]


def test_a_blue_green_release_shows_both_versions_and_where_traffic_goes() -> None:
    steps = [
        {"replicas": "50%", "traffic": "0%", "pause": {}},
        {"replicas": "100%", "traffic": "100%", "pause": {}},
    ]
    obj = rollout(step=2, steps=steps).to_obj()
    obj["spec"]["strategy"] = {"blueGreen": {"steps": steps}}
    obj["status"]["blueGreenStatus"] = obj["status"].pop("canaryStatus")
    ro = Rollout.from_obj(obj)
    view = build_view(snapshot(ro, [pod(f"n{i}", "c1") for i in range(5)]), NOW)
    assert view.style == "blue-green"
    assert (view.step, view.state) == (2, "StepPaused")
    assert (view.stable.ready, view.canary.ready, view.canary_wanted) == (5, 5, 5)
    assert [(r.stable_pods, r.canary_pods, r.traffic, r.pause) for r in view.steps] == [
        (5, 3, "0%", "approval"),
        (5, 5, "100%", "approval"),
    ]
    assert view.traffic.weight == "100%"
    assert view.waiting.kind == "approval"
