"""Pure builders of the patches the rollout verbs send, and the checks that decide whether a verb applies.

Each `build_<verb>_patch` takes what was read from the API server and returns the body to send, `None`
when there is nothing to change (the verb then reports "already ..."), or raises `Refused` with the
message the user sees. The approve messages are kubectl-kruise's, word for word. Patches that must
not land on a state the user did not see carry the resourceVersion they were built from, so a
concurrent change makes the API server answer 409 instead of silently applying them.

This module must not do I/O, read the clock or import click.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from graylane.api import keys
from graylane.api.abort_record import (
    ABORT_RECORD_ANNOTATION,
    POD_TEMPLATE_HASH,
    abort_record_value,
    clean_template,
)
from graylane.api.common import scaled_int_or_percent
from graylane.api.enums import ConditionType, ProgressingReason, RolloutPhase, StepState
from graylane.api.rollout_v1beta1 import CanaryStep, CommonStatus, Rollout

__all__ = [
    "ABORT_RECORD_ANNOTATION",
    "POD_TEMPLATE_HASH",
    "RESTARTED_AT_ANNOTATION",
    "AbortRecord",
    "Obj",
    "Refused",
    "abort_record",
    "build_abort_record_patch",
    "build_approve_patch",
    "build_clear_abort_record_patch",
    "build_fast_undo_patch",
    "build_full_promote_step",
    "build_pause_patch",
    "build_restart_patch",
    "build_resume_patch",
    "build_retry_patch",
    "build_undo_patch",
    "check_abortable",
    "check_retryable",
    "clean_template",
    "previous_replica_set",
    "progressing_reason",
    "release_in_progress",
    "revision_of",
    "same_template",
    "stable_replica_set",
]

Obj = dict[str, Any]
RESTARTED_AT_ANNOTATION: Final = "kubectl.kubernetes.io/restartedAt"
NO_NEED_TO_APPROVE: Final = "no need to approve: not in canary or blue-green progress"
FAST_CANARY: Final = (
    "--fast applies to blue-green releases only: a canary undo already routes traffic back to stable "
    "first and removes the canary pods at once; run undo without --fast"
)


class Refused(Exception):
    """The verb does not apply to the Rollout's current state; the message says why and what to do."""


def _precondition(rollout: Rollout) -> Obj:
    rv = rollout.metadata.get("resourceVersion")
    return {"resourceVersion": rv} if rv else {}


def _sub_status(rollout: Rollout) -> tuple[str, str, CommonStatus] | None:
    """(status key, word used in messages, sub-status) of the active release, canary first as Kruise."""
    if rollout.status.canary_status is not None:
        return "canaryStatus", "canary", rollout.status.canary_status
    if rollout.status.blue_green_status is not None:
        return "blueGreenStatus", "blue-green", rollout.status.blue_green_status
    return None


def progressing_reason(rollout: Rollout) -> str:
    cond = rollout.status.condition(ConditionType.PROGRESSING)
    return cond.reason if cond is not None else ""


def release_in_progress(rollout: Rollout) -> bool:
    sub = rollout.status.sub_status()
    return rollout.status.phase == RolloutPhase.PROGRESSING and sub is not None and bool(sub.stable_revision)


# -- approve / pause / resume -----------------------------------------------------------------------


def build_approve_patch(rollout: Rollout) -> Obj | None:
    """StepPaused -> StepReady on the status subresource; None when already StepReady (approved)."""
    found = _sub_status(rollout)
    if found is None:
        raise Refused(NO_NEED_TO_APPROVE)
    key, word, sub = found
    if sub.current_step_state == StepState.STEP_READY:
        return None
    if sub.current_step_state != StepState.STEP_PAUSED:
        raise Refused(f"does not allow to approve, because current {word} state is not 'StepPaused'")
    if rollout.status.phase != RolloutPhase.PROGRESSING:
        # A cancelled release leaves its sub-status at StepPaused; approving it would change nothing.
        raise Refused(NO_NEED_TO_APPROVE)
    return {"metadata": _precondition(rollout), "status": {key: {"currentStepState": StepState.STEP_READY}}}


def build_full_promote_step(rollout: Rollout) -> Obj | None:
    """The next move of `promote --full`, or None when there is nothing to do until the release moves on.

    Kruise has no full promotion, so it is made of its two user moves: a step jump (writing
    `nextStepIndex` = the last step, which the controller follows from any state) and, once the last
    step pauses, an approval. Raises Refused when no release is in progress or it is already complete.
    """
    found = _sub_status(rollout)
    if found is None or not release_in_progress(rollout):
        raise Refused("no need to promote: not in canary or blue-green progress")
    key, _, sub = found
    last = len(rollout.spec.strategy.steps())
    if sub.current_step_state == StepState.COMPLETED:
        return None
    if sub.current_step_state == StepState.STEP_PAUSED and sub.current_step_index >= last - 1:
        return build_approve_patch(rollout)
    if sub.current_step_index < last - 1 and sub.next_step_index != last:
        return {"metadata": _precondition(rollout), "status": {key: {"nextStepIndex": last}}}
    return None


def build_pause_patch(rollout: Rollout) -> Obj | None:
    if rollout.spec.strategy.paused:
        return None
    return {"spec": {"strategy": {"paused": True}}}


def build_resume_patch(rollout: Rollout) -> Obj | None:
    if not rollout.spec.strategy.paused:
        return None
    return {"spec": {"strategy": {"paused": False}}}


# -- templates and ReplicaSets ----------------------------------------------------------------------


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return clean_template(a) == clean_template(b)


def revision_of(rs: Mapping[str, Any]) -> int:
    value = (rs.get("metadata", {}).get("annotations") or {}).get(keys.DEPLOYMENT_REVISION_ANNOTATION, "")
    return int(value) if str(value).isdigit() else 0


def _hash_of(rs: Mapping[str, Any]) -> str:
    return str((rs.get("metadata", {}).get("labels") or {}).get(POD_TEMPLATE_HASH, ""))


def stable_replica_set(replica_sets: Iterable[Obj], stable_revision: str) -> Obj | None:
    return next((rs for rs in replica_sets if _hash_of(rs) == stable_revision), None)


def previous_replica_set(replica_sets: Iterable[Obj], to_revision: int = 0) -> Obj:
    """kubectl's choice: the ReplicaSet of `to_revision`, or the second newest revision when 0."""
    ordered = sorted((rs for rs in replica_sets if revision_of(rs) > 0), key=revision_of)
    if to_revision:
        found = next((rs for rs in ordered if revision_of(rs) == to_revision), None)
        if found is None:
            raise Refused(f"unable to find specified revision {to_revision} in history")
        return found
    if len(ordered) < 2:
        raise Refused("no rollout history found: there is no previous revision to roll back to")
    return ordered[-2]


# -- undo / abort / retry / restart -----------------------------------------------------------------


def _template_patch(deployment: Mapping[str, Any], template: Mapping[str, Any]) -> list[Obj]:
    """JSON patch replacing the pod template; replacing resourceVersion with the value read is a
    precondition: the API server answers 409 if the Deployment changed meanwhile."""
    rv = deployment["metadata"]["resourceVersion"]
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/template", "value": clean_template(template)},
    ]


def build_undo_patch(deployment: Mapping[str, Any], target: Mapping[str, Any]) -> list[Obj] | None:
    """Set the Deployment's template to `target` (a ReplicaSet's template); None if it already is."""
    if same_template(deployment["spec"]["template"], target):
        return None
    return _template_patch(deployment, target)


def _has_traffic(step: CanaryStep) -> bool:
    if step.traffic is None:
        return False
    return scaled_int_or_percent(step.traffic, 100, round_up=True) != 0


def _fast_target(steps: list[CanaryStep], current: int) -> int:
    """kubectl-kruise's choice: the latest previous step with no traffic and the most replicas."""
    best, target = 0, -1
    for i in range(current - 2, -1, -1):
        if _has_traffic(steps[i]):
            continue
        replicas = scaled_int_or_percent(steps[i].replicas or 0, 100, round_up=True)
        if replicas > best:
            best, target = replicas, i + 1
    if target == -1:
        raise Refused("no previous step with no traffic found")
    return target


def build_fast_undo_patch(rollout: Rollout) -> Obj:
    """Blue-green only: jump back by setting nextStepIndex on the status subresource."""
    sub = rollout.status.blue_green_status
    if rollout.spec.strategy.blue_green is None:
        raise Refused(FAST_CANARY)
    if sub is None or not release_in_progress(rollout):
        raise Refused("no blue-green release in progress: nothing to roll back fast")
    if sub.current_step_index <= 1:
        raise Refused("already at the first step, use undo without --fast to cancel the release")
    target = _fast_target(rollout.spec.strategy.steps(), sub.current_step_index)
    return {"metadata": _precondition(rollout), "status": {"blueGreenStatus": {"nextStepIndex": target}}}


def check_abortable(rollout: Rollout) -> None:
    name = rollout.metadata.get("name", "")
    if not release_in_progress(rollout):
        raise Refused(
            f"nothing to abort: rollout {name} is not releasing (phase {rollout.status.phase or 'unknown'})"
        )
    reason = progressing_reason(rollout)
    if reason == ProgressingReason.CANCELLING:
        raise Refused(f"rollout {name} is already being cancelled")
    if reason in (ProgressingReason.FINALISING, ProgressingReason.COMPLETED):
        raise Refused(
            f"too late to abort: the release of rollout {name} has completed and is finalising; "
            f"use `graylane undo {name}` to roll back to the previous revision"
        )


class AbortRecord:
    """The release template `abort` rolled back from, and the stable template it rolled back to."""

    def __init__(self, release: Obj, stable: Obj) -> None:
        self.release = release
        self.stable = stable


def build_abort_record_patch(release: Mapping[str, Any], stable: Mapping[str, Any]) -> Obj:
    """Where `abort` keeps the release it rolled back, so `retry` can start it again (api/abort_record)."""
    return {"metadata": {"annotations": {ABORT_RECORD_ANNOTATION: abort_record_value(release, stable)}}}


def abort_record(rollout: Rollout) -> AbortRecord | None:
    raw = (rollout.metadata.get("annotations") or {}).get(ABORT_RECORD_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return AbortRecord(dict(data["release"]), dict(data["stable"]))
    except (ValueError, KeyError, TypeError) as err:
        raise Refused(f"the {ABORT_RECORD_ANNOTATION} annotation is not readable: {err}") from err


def check_retryable(rollout: Rollout) -> AbortRecord:
    name = rollout.metadata.get("name", "")
    record = abort_record(rollout)
    if record is None:
        raise Refused(
            f"nothing to retry: no release aborted by `graylane abort` is recorded on rollout {name}; "
            "apply the new version again to release it"
        )
    if rollout.status.phase != RolloutPhase.HEALTHY:
        raise Refused(f"the aborted release is still being cancelled; retry when rollout {name} is Healthy")
    return record


def build_retry_patch(deployment: Mapping[str, Any], record: AbortRecord) -> list[Obj]:
    if not same_template(deployment["spec"]["template"], record.stable):
        name = deployment["metadata"]["name"]
        raise Refused(
            f"deployment/{name} changed since the abort; not overwriting it (apply the release yourself)"
        )
    return _template_patch(deployment, record.release)


def build_clear_abort_record_patch() -> Obj:
    return {"metadata": {"annotations": {ABORT_RECORD_ANNOTATION: None}}}


def build_restart_patch(deployment: Mapping[str, Any], rollout: Rollout, now: dt.datetime) -> Obj:
    """kubectl's restart: stamp the pod template, which (under a Rollout) releases through its steps."""
    name = deployment["metadata"]["name"]
    if deployment.get("spec", {}).get("paused"):
        why = "a release is in progress" if release_in_progress(rollout) else "it is paused"
        raise Refused(f"can't restart paused deployment/{name}: {why}; finish or undo the release first")
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}}
