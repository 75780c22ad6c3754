"""The pure patch builders of the rollout verbs: what each sends, when it refuses, and with which words."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli import ops
from graylane.cli.patches import (
    ABORT_RECORD_ANNOTATION,
    RESTARTED_AT_ANNOTATION,
    Refused,
    abort_record,
    build_abort_record_patch,
    build_approve_patch,
    build_clear_abort_record_patch,
    build_fast_undo_patch,
    build_pause_patch,
    build_restart_patch,
    build_resume_patch,
    build_retry_patch,
    build_undo_patch,
    check_abortable,
    check_retryable,
    previous_replica_set,
    same_template,
    stable_replica_set,
)

STEPS = [{"replicas": 1, "pause": {}}, {"replicas": 2, "pause": {}}]


def rollout(
    *,
    status: dict[str, Any] | None = None,
    paused: bool = False,
    blue_green: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> Rollout:
    strategy: dict[str, Any] = {"paused": paused}
    if blue_green is not None:
        strategy["blueGreen"] = {"steps": blue_green}
    else:
        strategy["canary"] = {"steps": STEPS}
    return Rollout.from_obj(
        {
            "metadata": {"name": "demo", "resourceVersion": "42", "annotations": annotations or {}},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": strategy,
            },
            "status": status or {},
        }
    )


def progressing(
    state: str, *, reason: str = "InRolling", step: int = 1, key: str = "canaryStatus"
) -> dict[str, Any]:
    return {
        "phase": "Progressing",
        "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        key: {"currentStepIndex": step, "currentStepState": state, "stableRevision": "stable1"},
    }


def template(image: str, *, hash_label: str | None = None) -> dict[str, Any]:
    labels = {"app": "demo", **({"pod-template-hash": hash_label} if hash_label else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": image}]}}


def deployment(image: str, *, paused: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo", "resourceVersion": "7"},
        "spec": {"paused": paused, "template": template(image)},
    }


def replica_set(revision: int, image: str, hash_label: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"demo-{hash_label}",
            "labels": {"pod-template-hash": hash_label},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"template": template(image, hash_label=hash_label)},
    }


# -- approve ----------------------------------------------------------------------------------------


def test_approve_at_a_pause_moves_to_step_ready_guarded_by_resource_version() -> None:
    patch = build_approve_patch(rollout(status=progressing("StepPaused")))
    assert patch == {
        "metadata": {"resourceVersion": "42"},
        "status": {"canaryStatus": {"currentStepState": "StepReady"}},
    }


def test_approve_on_blue_green_patches_the_blue_green_status() -> None:
    ro = rollout(status=progressing("StepPaused", key="blueGreenStatus"), blue_green=STEPS)
    assert build_approve_patch(ro) == {
        "metadata": {"resourceVersion": "42"},
        "status": {"blueGreenStatus": {"currentStepState": "StepReady"}},
    }


def test_approve_twice_is_already_approved() -> None:
    assert build_approve_patch(rollout(status=progressing("StepReady"))) is None


@pytest.mark.parametrize("state", ["BeforeStepUpgrade", "StepUpgrade", "StepTrafficRouting", "Completed"])
def test_approve_outside_a_pause_is_refused_with_kubectl_kruise_words(state: str) -> None:
    with pytest.raises(
        Refused, match=r"^does not allow to approve, because current canary state is not 'StepPaused'$"
    ):
        build_approve_patch(rollout(status=progressing(state)))


def test_approve_blue_green_outside_a_pause_names_blue_green() -> None:
    ro = rollout(status=progressing("StepUpgrade", key="blueGreenStatus"), blue_green=STEPS)
    with pytest.raises(Refused, match="current blue-green state is not 'StepPaused'"):
        build_approve_patch(ro)


def test_approve_without_a_release_has_no_need() -> None:
    with pytest.raises(Refused, match=r"^no need to approve: not in canary or blue-green progress$"):
        build_approve_patch(rollout())


def test_approve_of_a_cancelled_release_left_at_step_paused_has_no_need() -> None:
    cancelled = {**progressing("StepPaused"), "phase": "Healthy"}
    with pytest.raises(Refused, match="no need to approve"):
        build_approve_patch(rollout(status=cancelled))


# -- pause / resume ---------------------------------------------------------------------------------


def test_pause_and_resume_toggle_strategy_paused_and_are_idempotent() -> None:
    assert build_pause_patch(rollout()) == {"spec": {"strategy": {"paused": True}}}
    assert build_pause_patch(rollout(paused=True)) is None
    assert build_resume_patch(rollout(paused=True)) == {"spec": {"strategy": {"paused": False}}}
    assert build_resume_patch(rollout()) is None


# -- undo -------------------------------------------------------------------------------------------


def test_undo_replaces_the_template_without_the_hash_label_and_guards_the_version() -> None:
    patch = build_undo_patch(deployment("demo:v2"), template("demo:v1", hash_label="abc"))
    assert patch == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/spec/template", "value": template("demo:v1")},
    ]


def test_undo_to_the_current_template_is_skipped() -> None:
    assert build_undo_patch(deployment("demo:v1"), template("demo:v1", hash_label="abc")) is None


def test_same_template_ignores_only_the_hash_label() -> None:
    assert same_template(template("a", hash_label="x"), template("a"))
    assert not same_template(template("a"), template("b"))


def test_replica_set_choice_stable_by_hash_previous_by_revision() -> None:
    sets = [replica_set(1, "v1", "h1"), replica_set(3, "v3", "h3"), replica_set(2, "v2", "h2")]
    assert stable_replica_set(sets, "h2") is sets[2]
    assert stable_replica_set(sets, "nope") is None
    assert previous_replica_set(sets) is sets[2]
    assert previous_replica_set(sets, 1) is sets[0]
    with pytest.raises(Refused, match="unable to find specified revision 9 in history"):
        previous_replica_set(sets, 9)
    with pytest.raises(Refused, match="no rollout history found"):
        previous_replica_set(sets[:1])


# -- undo --fast (blue-green) -----------------------------------------------------------------------

BG_STEPS = [
    {"replicas": "20%", "traffic": "0%"},
    {"replicas": "50%", "traffic": "0%"},
    {"replicas": "50%", "traffic": "20%"},
    {"replicas": "100%", "traffic": "100%"},
]


@pytest.mark.parametrize(("current", "target"), [(4, 2), (3, 2), (2, 1)])
def test_fast_undo_jumps_to_the_latest_earlier_step_without_traffic_and_most_replicas(
    current: int, target: int
) -> None:
    ro = rollout(status=progressing("StepPaused", step=current, key="blueGreenStatus"), blue_green=BG_STEPS)
    assert build_fast_undo_patch(ro) == {
        "metadata": {"resourceVersion": "42"},
        "status": {"blueGreenStatus": {"nextStepIndex": target}},
    }


def test_fast_undo_refusals() -> None:
    with pytest.raises(Refused, match="--fast applies to blue-green releases only"):
        build_fast_undo_patch(rollout(status=progressing("StepPaused", step=2)))
    first = rollout(status=progressing("StepPaused", step=1, key="blueGreenStatus"), blue_green=BG_STEPS)
    with pytest.raises(Refused, match="already at the first step"):
        build_fast_undo_patch(first)
    all_traffic = [{"replicas": "20%", "traffic": "20%"}, {"replicas": "100%", "traffic": "100%"}]
    stuck = rollout(status=progressing("StepPaused", step=2, key="blueGreenStatus"), blue_green=all_traffic)
    with pytest.raises(Refused, match="no previous step with no traffic found"):
        build_fast_undo_patch(stuck)


# -- abort / retry ----------------------------------------------------------------------------------


def test_abort_applies_to_a_running_release_only() -> None:
    check_abortable(rollout(status=progressing("StepPaused")))
    with pytest.raises(Refused, match="nothing to abort: rollout demo is not releasing"):
        check_abortable(
            rollout(status={"phase": "Healthy", "canaryStatus": {"currentStepState": "Completed"}})
        )
    with pytest.raises(Refused, match="already being cancelled"):
        check_abortable(rollout(status=progressing("StepPaused", reason="Cancelling")))
    with pytest.raises(Refused, match="too late to abort"):
        check_abortable(rollout(status=progressing("Completed", reason="Finalising")))


def test_abort_record_round_trips_and_retry_reapplies_the_release() -> None:
    record_patch = build_abort_record_patch(
        template("demo:v2", hash_label="n"), template("demo:v1", hash_label="s")
    )
    value = record_patch["metadata"]["annotations"][ABORT_RECORD_ANNOTATION]
    assert json.loads(value) == {"release": template("demo:v2"), "stable": template("demo:v1")}
    ro = rollout(status={"phase": "Healthy"}, annotations={ABORT_RECORD_ANNOTATION: value})
    record = check_retryable(ro)
    assert build_retry_patch(deployment("demo:v1"), record)[1] == {
        "op": "replace",
        "path": "/spec/template",
        "value": template("demo:v2"),
    }
    assert build_clear_abort_record_patch() == {"metadata": {"annotations": {ABORT_RECORD_ANNOTATION: None}}}


def test_retry_refusals() -> None:
    with pytest.raises(Refused, match="nothing to retry"):
        check_retryable(rollout(status={"phase": "Healthy"}))
    value = json.dumps({"release": template("v2"), "stable": template("v1")})
    busy = rollout(
        status=progressing("StepPaused", reason="Cancelling"), annotations={ABORT_RECORD_ANNOTATION: value}
    )
    with pytest.raises(Refused, match="still being cancelled"):
        check_retryable(busy)
    record = check_retryable(
        rollout(status={"phase": "Healthy"}, annotations={ABORT_RECORD_ANNOTATION: value})
    )
    with pytest.raises(Refused, match="changed since the abort"):
        build_retry_patch(deployment("v9"), record)
    broken = rollout(status={"phase": "Healthy"}, annotations={ABORT_RECORD_ANNOTATION: "{"})
    with pytest.raises(Refused, match="not readable"):
        abort_record(broken)


# -- restart ----------------------------------------------------------------------------------------


def test_restart_stamps_the_pod_template_like_kubectl() -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, 5, tzinfo=dt.UTC)
    patch = build_restart_patch(deployment("v1"), rollout(), now)
    assert patch == {
        "spec": {
            "template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: "2026-11-22T12:00:05+00:00"}}}
        }
    }


def test_restart_refuses_a_deployment_held_by_a_release() -> None:
    with pytest.raises(Refused, match="can't restart paused deployment/demo: a release is in progress"):
        build_restart_patch(
            deployment("v1", paused=True), rollout(status=progressing("StepPaused")), dt.datetime.now(dt.UTC)
        )


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg", ["demo", "rollout/demo", "rollouts/demo", "ro/demo", "rollouts.rollouts.kruise.io/demo"]
)
def test_names_accept_kubectl_type_prefixes(arg: str) -> None:
    assert ops.parse_name(arg) == "demo"


@pytest.mark.parametrize("arg", ["deployment/demo", "rollout/"])
def test_names_of_other_types_are_refused(arg: str) -> None:
    with pytest.raises(Refused, match="only rollouts are supported"):
        ops.parse_name(arg)
