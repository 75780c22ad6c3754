"""The data behind `graylane status` and `describe`, computed from what was read.

`build_view(snapshot, now)` turns a Rollout, its workload, pods, Events and AnalysisRuns into a
`StatusView`: the step
table (pods per step from the controller's arithmetic, via `graylane.planview`), canary/stable pods
ready and total, the traffic split and matches the current step asks for, what the release waits for
and for how long (approval, a timed pause counted down from lastUpdateTime + duration, pods, a grace
period, an analysis), each metric of the release's analysis (cli/analysis_view.py), conditions and recent
Events. `-o json|yaml` prints this model as is.

Pure: no I/O, no click, no rich; `now` is an argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from graylane.api import keys
from graylane.api.enums import ProgressingReason, RolloutPhase, StepState
from graylane.api.rollout_v1beta1 import CommonStatus, Rollout
from graylane.api.workloads import pod_on_revision
from graylane.cli import patches
from graylane.cli.analysis_view import MetricRow, analysis_rows
from graylane.cli.outcome import judge
from graylane.cli.tables import age, images_of, parse_time
from graylane.planview import (
    describe_matches,
    pause_kind,
    step_pods,
    style_of,
)
from graylane.telemetry.routed import Routed, canary_weight, render

__all__ = [
    "Counts",
    "PodRow",
    "Snapshot",
    "StatusView",
    "StepRow",
    "Waiting",
    "build_view",
    "summary_line",
]

Obj = dict[str, Any]
INITIALIZING_GRACE_SECONDS: Final = 3
_HOLDING_REASONS: Final = ("AnalysisRunInconclusive", "AnalysisRunError")
EVENTS_SHOWN: Final = 8
R = ProgressingReason
S = StepState


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What was read for one view: the Rollout (as v1beta1), its workload, that workload's pods, Events,
    and the traffic its provider objects route now (`graylane.telemetry.routed`)."""

    rollout: Rollout
    workload: Obj | None
    pods: list[Obj]
    events: list[Obj]
    routed: tuple[Routed, ...] = ()
    runs: tuple[Obj, ...] = ()  # the Rollout's AnalysisRuns


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Counts(_Frozen):
    ready: int
    total: int


class StepRow(_Frozen):
    index: int
    replicas: str
    stable_pods: int
    canary_pods: int
    traffic: str | None
    matches: list[str]
    pause: str
    state: str  # done | current | pending
    current: bool


class Waiting(_Frozen):
    # none, paused, initializing, pods, traffic, approval, timed-pause, next-step, finalising, cancelling
    kind: str
    text: str  # stable wording (no countdown): safe to compare between polls
    seconds_left: int | None = None
    waited_seconds: int | None = None


class Traffic(_Frozen):
    weight: str | None  # what the current step asks for
    matches: list[str]
    routings: list[str]
    note: str
    applied_weight: int | None = None  # what the provider objects route now (read back)
    applied: list[str] = []  # one line per provider object


class ConditionRow(_Frozen):
    type: str
    status: str
    reason: str
    message: str
    age: str


class EventRow(_Frozen):
    type: str
    reason: str
    message: str
    age: str
    count: int


class PodRow(_Frozen):
    name: str
    version: str  # stable | canary
    ready: str
    batch_id: str
    revision: str
    age: str
    restarts: int
    status: str


class StatusView(_Frozen):
    name: str
    namespace: str
    outcome: str  # cli.outcome.Outcome: Healthy, Cancelled, Degraded, Blocked, Paused, Progressing
    outcome_why: str
    phase: str
    reason: str
    message: str
    paused: bool
    style: str
    workload: str
    replicas: int
    images: list[str]
    step: int
    steps_total: int
    state: str
    stable_revision: str
    canary_revision: str
    steps: list[StepRow]
    canary: Counts
    stable: Counts
    canary_wanted: int
    traffic: Traffic
    waiting: Waiting
    conditions: list[ConditionRow]
    events: list[EventRow]
    pods: list[PodRow]
    analysis: list[MetricRow] = []


# -- small helpers -------------------------------------------------------------------------------


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _live(pods: Sequence[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _replicas(workload: Mapping[str, Any] | None) -> int:
    if workload is None:
        return 0
    if workload.get("kind") == "DaemonSet":  # its pods are its nodes'
        return int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
    value = (workload.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


# -- pods ----------------------------------------------------------------------------------------


def _stable_hash(rollout: Rollout) -> str | None:
    """The stable revision while a release is in progress; None means every pod counts as stable."""
    sub = rollout.status.sub_status()
    return sub.stable_revision if sub is not None and patches.release_in_progress(rollout) else None


def _version(pod: Mapping[str, Any], stable_hash: str | None) -> str:
    if stable_hash is None:
        return "stable"
    labels = pod["metadata"].get("labels") or {}
    # pod-template-hash (Deployment, CloneSet) or controller-revision-hash (StatefulSets, DaemonSets).
    return "stable" if pod_on_revision(labels, stable_hash) else "canary"


def _counts(pods: Sequence[Obj], version: str, stable_hash: str | None) -> Counts:
    mine = [p for p in _live(pods) if _version(p, stable_hash) == version]
    return Counts(ready=sum(_pod_ready(p) for p in mine), total=len(mine))


def _pod_row(pod: Obj, stable_hash: str | None, now: dt.datetime) -> PodRow:
    meta, status = pod["metadata"], pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    labels = meta.get("labels") or {}
    ready = sum(bool(c.get("ready")) for c in containers)
    return PodRow(
        name=meta["name"],
        version=_version(pod, stable_hash),
        ready=f"{ready}/{len((pod.get('spec') or {}).get('containers') or [])}",
        batch_id=labels.get(keys.ROLLOUT_BATCH_ID_LABEL, ""),
        revision=labels.get(patches.POD_TEMPLATE_HASH) or labels.get(keys.CONTROLLER_REVISION_HASH_LABEL, ""),
        age=age(meta.get("creationTimestamp"), now),
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
        status="Terminating" if meta.get("deletionTimestamp") else str(status.get("phase", "")),
    )


# -- steps and traffic ---------------------------------------------------------------------------


def _step_state(index: int, current: int, ending: str) -> str:
    """done / current / pending; once the release ended, `ending` (done or cancelled) from `current` on."""
    if index < current or ending == "done":
        return "done"
    if ending:
        return ending
    return "current" if index == current else "pending"


def _step_rows(rollout: Rollout, replicas: int, current: int, ending: str) -> list[StepRow]:
    steps = rollout.spec.strategy.steps()
    rows = []
    for i, step in enumerate(steps, start=1):
        stable, canary = step_pods(rollout, step, replicas)
        state = _step_state(i, current, ending)
        rows.append(
            StepRow(
                index=i,
                replicas=str(step.replicas if step.replicas is not None else "-"),
                stable_pods=stable,
                canary_pods=canary,
                traffic=step.traffic,
                matches=describe_matches(step.matches),
                pause=pause_kind(steps, i, blue_green=style_of(rollout) == "blue-green"),
                state=state,
                current=state == "current",
            )
        )
    return rows


def _traffic(rollout: Rollout, current: int, ending: str, routed: Sequence[Routed]) -> Traffic:
    steps = rollout.spec.strategy.steps()
    step = steps[current - 1] if 1 <= current <= len(steps) and not ending else None
    routings = [ref.service for ref in rollout.spec.strategy.traffic_routings()]
    note = "read back from the routing objects" if routings else "no trafficRoutings: pods only"
    return Traffic(
        weight=step.traffic if step else None,
        matches=describe_matches(step.matches) if step else [],
        routings=routings,
        note=note,
        applied_weight=canary_weight(routed),
        applied=[render(line) for line in routed],
    )


# -- waiting -------------------------------------------------------------------------------------


def _since(when: dt.datetime | None, now: dt.datetime) -> int | None:
    return int((now - when).total_seconds()) if when else None


def _countdown(start: dt.datetime | None, seconds: int, now: dt.datetime) -> int | None:
    if start is None:
        return None
    return max(int((start + dt.timedelta(seconds=seconds) - now).total_seconds()), 0)


def _paused_wait(rollout: Rollout, sub: CommonStatus, now: dt.datetime) -> Waiting:
    name, steps, index = (
        rollout.metadata.get("name", ""),
        rollout.spec.strategy.steps(),
        sub.current_step_index,
    )
    duration = steps[index - 1].pause.duration if 1 <= index <= len(steps) else None
    start = parse_time(sub.last_update_time)
    held = rollout.status.condition("Analysis")
    if held is not None and held.status == "False" and held.reason in _HOLDING_REASONS:
        verdict = held.reason.removeprefix("AnalysisRun")
        text = f"analysis {verdict}: waiting for approval: run `graylane approve {name}`"
        return Waiting(kind="approval", text=text, waited_seconds=_since(start, now))
    if duration is None:
        text = f"waiting for approval: run `graylane approve {name}`"
        return Waiting(kind="approval", text=text, waited_seconds=_since(start, now))
    text = f"timed pause of {duration}s, then step {index + 1 if index < len(steps) else 'completion'}"
    return Waiting(kind="timed-pause", text=text, seconds_left=_countdown(start, duration, now))


def _step_wait(rollout: Rollout, sub: CommonStatus, canary: Counts, wanted: int, now: dt.datetime) -> Waiting:
    state, start = sub.current_step_state, parse_time(sub.last_update_time)
    if state == S.STEP_PAUSED:
        return _paused_wait(rollout, sub, now)
    if state in (S.BEFORE_STEP_UPGRADE, S.STEP_UPGRADE):
        text = f"waiting for pods: canary {canary.ready}/{wanted} ready"
        return Waiting(kind="pods", text=text, waited_seconds=_since(start, now))
    if state == S.STEP_METRICS_ANALYSIS:
        held = rollout.status.condition("Analysis")
        if held is not None and held.reason == "ExposureMismatch":
            text = "holding: the gateway's split differs from the step's (see the Analysis condition)"
            return Waiting(kind="analysis", text=text, waited_seconds=_since(start, now))
        return Waiting(
            kind="analysis", text="waiting for the step's analysis", waited_seconds=_since(start, now)
        )
    if state == S.STEP_TRAFFIC_ROUTING:
        refs = rollout.spec.strategy.traffic_routings()
        grace = refs[0].grace_period_seconds if refs else 0
        return Waiting(
            kind="traffic",
            text=f"traffic routing grace period ({grace}s)",
            seconds_left=_countdown(start, grace, now),
        )
    if state == S.COMPLETED:
        return Waiting(kind="finalising", text="last step done: finalising the release")
    return Waiting(kind="next-step", text=f"moving on from step {sub.current_step_index} ({state})")


def _waiting(snap: Snapshot, canary: Counts, wanted: int, now: dt.datetime) -> Waiting:
    rollout = snap.rollout
    sub, reason = rollout.status.sub_status(), patches.progressing_reason(rollout)
    if rollout.status.phase != RolloutPhase.PROGRESSING or sub is None:
        return Waiting(
            kind="none", text=f"no release in progress ({rollout.status.message or rollout.status.phase})"
        )
    name = rollout.metadata.get("name", "")
    if reason == R.PAUSED or rollout.spec.strategy.paused:
        return Waiting(kind="paused", text=f"paused by the user: run `graylane resume {name}`")
    if reason == R.INITIALIZING:
        cond = rollout.status.condition("Progressing")
        start = parse_time(cond.last_update_time) if cond else None
        left = _countdown(start, INITIALIZING_GRACE_SECONDS, now)
        return Waiting(kind="initializing", text="initialising the release (grace period)", seconds_left=left)
    if reason in (R.CANCELLING, R.FINALISING):
        word = "cancelling the release" if reason == R.CANCELLING else "finalising the release"
        return Waiting(kind=reason.lower(), text=f"{word}: {sub.finalising_step or 'starting'}")
    return _step_wait(rollout, sub, canary, wanted, now)


# -- the view --------------------------------------------------------------------------------------


def _conditions(rollout: Rollout, now: dt.datetime) -> list[ConditionRow]:
    return [
        ConditionRow(
            type=c.type,
            status=c.status,
            reason=c.reason,
            message=c.message,
            age=age(c.last_transition_time or c.last_update_time, now),
        )
        for c in rollout.status.conditions
    ]


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def _events(events: Sequence[Obj], now: dt.datetime) -> list[EventRow]:
    recent = sorted(events, key=_event_time)[-EVENTS_SHOWN:]
    return [
        EventRow(
            type=str(e.get("type", "")),
            reason=str(e.get("reason", "")),
            message=str(e.get("message", "")),
            age=age(_event_time(e), now),
            count=int(e.get("count") or 1),
        )
        for e in recent
    ]


def _position(rollout: Rollout) -> tuple[int, str, str]:
    """(step, state, ending): ending is "" during a release, else "done" or "cancelled"."""
    sub = rollout.status.sub_status()
    if sub is None:
        return 0, "", ""
    if sub.current_step_state == S.COMPLETED:
        return sub.current_step_index, sub.current_step_state, "done"
    if rollout.status.phase != RolloutPhase.PROGRESSING:
        return sub.current_step_index, sub.current_step_state, "cancelled"
    return sub.current_step_index, sub.current_step_state, ""


def build_view(snap: Snapshot, now: dt.datetime) -> StatusView:
    rollout, replicas = snap.rollout, _replicas(snap.workload)
    current, state, ending = _position(rollout)
    rows = _step_rows(rollout, replicas, current, ending)
    stable_hash = _stable_hash(rollout)
    canary = _counts(snap.pods, "canary", stable_hash)
    wanted = rows[current - 1].canary_pods if 1 <= current <= len(rows) and not ending else 0
    sub = rollout.status.sub_status()
    ref = rollout.spec.workload_ref
    verdict = judge(rollout, snap.workload, snap.events)
    return StatusView(
        name=rollout.metadata.get("name", ""),
        namespace=rollout.metadata.get("namespace", ""),
        outcome=verdict.outcome,
        outcome_why=verdict.why,
        phase=rollout.status.phase,
        reason=patches.progressing_reason(rollout),
        message=rollout.status.message,
        paused=rollout.spec.strategy.paused,
        style=style_of(rollout),
        workload=f"{ref.kind.lower()}/{ref.name}",
        replicas=replicas,
        images=images_of(snap.workload),
        step=current,
        steps_total=len(rows),
        state=state,
        stable_revision=sub.stable_revision if sub else "",
        canary_revision=sub.pod_template_hash if sub else "",
        steps=rows,
        canary=canary,
        stable=_counts(snap.pods, "stable", stable_hash),
        canary_wanted=wanted,
        traffic=_traffic(rollout, current, ending, snap.routed),
        waiting=_waiting(snap, canary, wanted, now),
        conditions=_conditions(rollout, now),
        events=_events(snap.events, now),
        pods=[_pod_row(p, stable_hash, now) for p in sorted(snap.pods, key=lambda p: p["metadata"]["name"])],
        analysis=analysis_rows(snap.runs),
    )


def summary_line(view: StatusView) -> str:
    """One line that changes only when the release does (no countdowns): the piped form of --watch."""
    applied = view.traffic.applied_weight
    traffic = f" · traffic to canary {applied}%" if view.traffic.routings and applied is not None else ""
    return (
        f"{view.name} {view.outcome} step {view.step}/{view.steps_total} {view.state or '-'}"
        f"{' (paused)' if view.paused else ''} · canary {view.canary.ready}/{view.canary.total} ready"
        f" · stable {view.stable.ready}/{view.stable.total} ready{traffic} · {view.waiting.text}"
    )
