"""`graylane status` exit codes and icons: which states end a wait, and which are errors."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli.outcome import Outcome, judge, latest_event_is_warning
from graylane.cli.view import OUTCOME_STYLES

STEPS = [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]


def rollout(
    phase: str,
    *,
    reason: str = "InRolling",
    succeeded: str | None = None,
    message: str = "",
    paused: bool = False,
    generation: int = 1,
    observed: int = 1,
) -> Rollout:
    conditions: list[dict[str, Any]] = [{"type": "Progressing", "status": "True", "reason": reason}]
    if succeeded is not None:
        conditions.append({"type": "Succeeded", "status": succeeded})
    return Rollout.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns", "generation": generation},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {"paused": paused, "canary": {"steps": STEPS}},
            },
            "status": {
                "observedGeneration": observed,
                "phase": phase,
                "message": message,
                "conditions": conditions,
                "canaryStatus": {"currentStepIndex": 1, "currentStepState": "StepPaused"},
            },
        }
    )


def deployment(
    *, paused: bool = False, updated: int = 5, available: int = 5, total: int = 5
) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo", "generation": 4},
        "spec": {"replicas": 5, "paused": paused},
        "status": {
            "observedGeneration": 4,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("ro", "workload", "expected"),
    [
        (rollout("Healthy", succeeded="True"), deployment(), Outcome.HEALTHY),
        (rollout("Healthy"), deployment(), Outcome.HEALTHY),  # first deploy: no Succeeded condition
        (rollout("Healthy", succeeded="False"), deployment(), Outcome.CANCELLED),
        # A new revision was just applied: the webhook paused the Deployment before the Rollout noticed.
        (rollout("Healthy", succeeded="False"), deployment(paused=True), Outcome.PROGRESSING),
        (rollout("Healthy", succeeded="True"), deployment(updated=3, total=7), Outcome.PROGRESSING),
        (rollout("Healthy", succeeded="True", generation=2), deployment(), Outcome.PROGRESSING),
        (rollout("Healthy"), None, Outcome.BLOCKED),
        (rollout("Progressing"), deployment(paused=True), Outcome.PROGRESSING),
        (rollout("Progressing", paused=True), deployment(paused=True), Outcome.PAUSED),
        (rollout("Progressing", reason="Paused"), deployment(paused=True), Outcome.PAUSED),
        (
            rollout("Progressing", message="traffic routing is blocked: no Ingress demo"),
            deployment(paused=True),
            Outcome.BLOCKED,
        ),
        (rollout("Disabled", message="Rollout is disabled"), deployment(), Outcome.DEGRADED),
        (rollout("Terminating"), deployment(), Outcome.DEGRADED),
    ],
)
def test_outcomes(ro: Rollout, workload: dict[str, Any] | None, expected: Outcome) -> None:
    assert judge(ro, workload, []).outcome is expected


def test_only_end_states_stop_a_wait_and_only_failures_exit_1() -> None:
    assert {o for o in Outcome if o.final} == {Outcome.HEALTHY, Outcome.CANCELLED, Outcome.DEGRADED}
    assert {o for o in Outcome if o.exit_code} == {Outcome.CANCELLED, Outcome.DEGRADED}


def test_a_warning_as_the_latest_event_blocks_a_running_release() -> None:
    events = [
        {"type": "Normal", "reason": "A", "message": "fine", "lastTimestamp": "2026-01-01T00:00:01Z"},
        {
            "type": "Warning",
            "reason": "B",
            "message": "script failed",
            "lastTimestamp": "2026-01-01T00:00:02Z",
        },
    ]
    assert latest_event_is_warning(events) == "script failed"
    assert latest_event_is_warning(list(reversed(events))) == "script failed"
    assert latest_event_is_warning(events[:1]) is None
    verdict = judge(rollout("Progressing"), deployment(paused=True), events)
    assert (verdict.outcome, verdict.why) == (Outcome.BLOCKED, "script failed")


def test_a_green_tick_is_shown_for_healthy_only() -> None:
    ticks = {name for name, (icon, colour) in OUTCOME_STYLES.items() if icon == "✔" or colour == "green"}
    assert ticks == {"Healthy"}
    assert set(OUTCOME_STYLES) == {str(o) for o in Outcome}
