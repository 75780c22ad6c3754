"""The benchmark's pure parts: percentiles, slopes, per-step request accounting, audit and metric parsing."""

from __future__ import annotations

import collections
import json

import pytest

from graylane.bench import audit, stats
from graylane.bench.tracker import Tracker, Transition
from graylane.bench.workload import App, Style, layout


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 90, 3.7),  # unsorted input, interpolated rank 2.7
        (list(map(float, range(1, 101))), 99, 99.01),
    ],
)
def test_percentile_interpolates_like_numpy(values: list[float], q: float, expected: float) -> None:
    assert stats.percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 101), ([1.0], -1)])
def test_percentile_rejects_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile(values, q)


def test_latency_summary_of_nothing_is_none_not_zero() -> None:
    assert stats.LatencySummary.of([]) is None
    summary = stats.LatencySummary.of([0.1, 0.2, 0.3])
    assert summary is not None
    assert summary.count == 3
    assert summary.p50 == pytest.approx(0.2)
    assert summary.max == 0.3


@pytest.mark.parametrize(
    ("samples", "per_minute"),
    [
        ([(0.0, 100.0), (60.0, 100.0), (120.0, 100.0)], 0.0),
        ([(0.0, 100.0), (30.0, 101.0), (60.0, 102.0)], 2.0),
        ([(0.0, 50.0), (600.0, 40.0)], -1.0),
    ],
)
def test_slope_per_minute(samples: list[tuple[float, float]], per_minute: float) -> None:
    assert stats.slope_per_minute(samples) == pytest.approx(per_minute)


def test_slope_needs_two_distinct_times() -> None:
    with pytest.raises(ValueError, match="two samples"):
        stats.slope_per_minute([(0.0, 1.0)])
    with pytest.raises(ValueError, match="same time"):
        stats.slope_per_minute([(1.0, 1.0), (1.0, 2.0)])


@pytest.mark.parametrize(
    ("verb", "write"),
    [("get", False), ("list", False), ("watch", False), ("create", True), ("update", True), ("patch", True)],
)
def test_is_write(verb: str, write: bool) -> None:
    assert stats.is_write(verb) is write


def test_delta_drops_unchanged_rows() -> None:
    before = {("get", "rollouts"): 5, ("patch", "deployments"): 2}
    after = {("get", "rollouts"): 5, ("patch", "deployments"): 7, ("create", "events"): 1}
    assert stats.delta(after, before) == {("patch", "deployments"): 5, ("create", "events"): 1}


def test_per_step_accounting_spreads_over_rollouts_and_steps_without_leases() -> None:
    counts = collections.Counter(
        {
            ("update", "rollouts/status"): 40,
            ("patch", "deployments"): 20,
            ("list", "rollouts"): 10,
            ("watch", "rollouts"): 2,
            ("update", "leases"): 30,  # leader election: not per Rollout
        }
    )
    summary = stats.summarise_requests(counts, rollouts=10, steps=2)
    assert (summary.total, summary.reads, summary.watches, summary.writes) == (102, 10, 2, 90)
    assert summary.writes_per_rollout_step == pytest.approx(3.0)  # (40 + 20) / (10 * 2)
    assert summary.requests_per_rollout_step == pytest.approx(3.6)
    assert list(summary.by_key_per_rollout_step) == [
        "update rollouts/status",
        "patch deployments",
        "list rollouts",
        "watch rollouts",
    ]
    assert summary.by_key_per_rollout_step["update rollouts/status"] == pytest.approx(2.0)


def test_per_step_accounting_needs_rollouts_and_steps() -> None:
    with pytest.raises(ValueError, match="at least one"):
        stats.per_rollout_step({}, rollouts=0, steps=1)


def test_parse_counter_sums_by_the_chosen_labels() -> None:
    text = "\n".join(
        [
            "# HELP graylane_api_requests_total requests",
            "# TYPE graylane_api_requests_total counter",
            'graylane_api_requests_total{verb="patch",resource="deployments"} 3.0',
            'graylane_api_requests_total{verb="update",resource="rollouts/status"} 7.0',
            'graylane_api_requests_total{resource="deployments",verb="patch"} 2.0',
            'graylane_api_requests_created{verb="patch",resource="deployments"} 1.7e+09',
            'apiserver_request_total{code="200",verb="LIST",resource="pods"} 4',
        ]
    )
    counts = stats.parse_counter(text, "graylane_api_requests_total", ("verb", "resource"))
    assert counts == {("patch", "deployments"): 5, ("update", "rollouts/status"): 7}
    assert stats.parse_counter(text, "apiserver_request_total", ("verb",)) == {("LIST",): 4}


def _audit_line(
    stage: str, verb: str, resource: str, ua: str, when: str, audit_id: str, code: int = 200
) -> str:
    return json.dumps(
        {
            "auditID": audit_id,
            "stage": stage,
            "verb": verb,
            "userAgent": ua,
            "objectRef": {"resource": resource.split("/")[0], "subresource": resource.partition("/")[2]},
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": when,
        }
    )


def test_audit_counts_each_request_once_per_window_and_client() -> None:
    lines = [
        _audit_line("ResponseStarted", "watch", "rollouts", "graylane/0.1", "2026-01-01T00:00:01Z", "w1"),
        _audit_line("ResponseComplete", "watch", "rollouts", "graylane/0.1", "2026-01-01T00:00:01Z", "w1"),
        _audit_line(
            "ResponseComplete", "update", "rollouts/status", "graylane/0.1", "2026-01-01T00:00:02Z", "a"
        ),
        _audit_line(
            "ResponseComplete",
            "update",
            "rollouts/status",
            "graylane/0.1",
            "2026-01-01T00:00:12Z",
            "b",
            409,
        ),
        _audit_line(
            "ResponseComplete", "patch", "deployments", "graylane-bench", "2026-01-01T00:00:03Z", "c"
        ),
        "{half a line",
    ]
    start = audit._timestamp("2026-01-01T00:00:00Z")
    windows = [audit.Window("one", start, start + 10), audit.Window("two", start + 10, start + 20)]
    counts = audit.count_by_window(audit.parse(lines), "graylane/", windows)
    assert counts["one"].requests == {("watch", "rollouts"): 1, ("update", "rollouts/status"): 1}
    assert counts["two"].requests == {("update", "rollouts/status"): 1}
    assert counts["two"].conflicts == {("update", "rollouts/status"): 1}


def _rollout(
    app: App, step: int, state: str, phase: str = "Progressing", succeeded: bool = False
) -> dict[str, object]:
    conditions = [{"type": "Succeeded", "status": "True"}] if succeeded else []
    return {
        "metadata": {"namespace": app.namespace, "name": app.name, "generation": 1},
        "status": {
            "observedGeneration": 1,
            "phase": phase,
            "conditions": conditions,
            "canaryStatus": {"currentStepIndex": step, "currentStepState": state},
        },
    }


def _canary_deployment(app: App, available: int) -> dict[str, object]:
    return {
        "metadata": {
            "namespace": app.namespace,
            "name": f"{app.name}-x1",
            "labels": {"rollouts.kruise.io/canary-deployment": app.name},
        },
        "spec": {"template": {"spec": {"containers": [{"image": "v2"}]}}},
        "status": {"availableReplicas": available},
    }


def test_tracker_measures_each_transition_from_its_trigger() -> None:
    app = layout(1, 1)[0]
    tracker = Tracker([app], style=Style.CANARY, replicas=3, new_image="v2")
    tracker.release_written(app.key, 10.0)
    tracker.on_rollout(_rollout(app, 1, "StepUpgrade"), 10.2)
    tracker.on_deployment(_canary_deployment(app, 1), 11.0)
    tracker.on_rollout(_rollout(app, 1, "StepPaused"), 11.3)
    tracker.on_rollout(_rollout(app, 1, "StepReady"), 20.0)  # the approval, seen on the watch
    tracker.approval_written(app.key, 20.1)  # its response came later: the earlier time counts
    tracker.on_rollout(_rollout(app, 2, "StepUpgrade"), 20.4)
    tracker.on_deployment(_canary_deployment(app, 3), 22.0)
    tracker.on_rollout(_rollout(app, 2, "Completed"), 22.5)
    latencies = tracker.latencies()
    assert latencies[Transition.RELEASE] == [pytest.approx(0.2)]
    assert latencies[Transition.STEP1_PAUSED] == [pytest.approx(0.3)]
    assert latencies[Transition.APPROVE] == [pytest.approx(0.4)]
    assert latencies[Transition.STEP2_COMPLETED] == [pytest.approx(0.5)]
    assert latencies[Transition.HEALTHY] == []  # the stable Deployment was never seen fully updated
    assert tracker.count("paused") == 1
    assert tracker.last("healthy") is None


def test_layout_spreads_apps_over_namespaces_with_sortable_names() -> None:
    apps = layout(25, 10)
    assert len({a.namespace for a in apps}) == 3
    assert apps[0] == App("bench-0", "app-00")
    assert apps[-1] == App("bench-2", "app-04")
