"""Where a release stands, for `graylane status` to exit on and to draw its icon from.

`judge(snapshot)` says one of:

- `Healthy` (exit 0): no release in progress, the last one succeeded (or there was none), and the workload
  has rolled every pod to its latest template (as `kubectl rollout status` checks);
- `Cancelled` (exit 1): the last release was rolled back (condition Succeeded=False) and nothing newer
  has started;
- `Degraded` (exit 1): the Rollout no longer controls releases (Disabled, Disabling, Terminating);
- `Blocked`: the release cannot go on for now and retries (traffic routing refused, workload missing,
  the latest Event is a Warning); not an end state: it may recover, so `status --timeout` keeps waiting;
- `Paused` and `Progressing`: on the way (`Paused` also when an inconclusive analysis holds the step for
  a person: its Warning Event is then no reason to call the release blocked).

As `kubectl argo rollouts status`: watching stops at Healthy, Cancelled or Degraded; a timeout exits 1.
Pure: no I/O, no click, no rich.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graylane.api.enums import ConditionType, ProgressingReason, RolloutPhase
from graylane.api.rollout_v1beta1 import Rollout

__all__ = ["BLOCKED_PREFIXES", "Outcome", "Verdict", "judge", "latest_event_is_warning"]

Obj = dict[str, Any]
# Reasons of graylane's Analysis condition that hold a step for a person (planner/analysis.py).
_ANALYSIS_HOLDS: Final = ("AnalysisRunInconclusive", "AnalysisRunError")
# Messages the controller writes to status.message while it retries a step it cannot do.
BLOCKED_PREFIXES: Final = ("traffic routing is blocked", "traffic routing is not ready", "Workload Not Found")


class Outcome(enum.StrEnum):
    HEALTHY = "Healthy"
    CANCELLED = "Cancelled"
    DEGRADED = "Degraded"
    BLOCKED = "Blocked"
    PAUSED = "Paused"
    PROGRESSING = "Progressing"

    @property
    def final(self) -> bool:
        """Watching stops here."""
        return self in (Outcome.HEALTHY, Outcome.CANCELLED, Outcome.DEGRADED)

    @property
    def exit_code(self) -> int:
        return 1 if self in (Outcome.CANCELLED, Outcome.DEGRADED) else 0


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    why: str


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def latest_event_is_warning(events: Sequence[Mapping[str, Any]]) -> str | None:
    """The message of the Rollout's most recent Event when that Event is a Warning, else None."""
    if not events:
        return None
    latest = max(events, key=_event_time)
    return (
        str(latest.get("message") or latest.get("reason") or "") if latest.get("type") == "Warning" else None
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def _workload_rolling(workload: Mapping[str, Any]) -> str | None:
    """Why the workload is not yet fully on its latest template (None when it is), as kubectl checks."""
    meta, spec, st = workload.get("metadata") or {}, workload.get("spec") or {}, workload.get("status") or {}
    generation = _int(meta.get("generation"))
    # A new revision is paused by the workload webhook at once, before the Rollout picks it up.
    if spec.get("paused"):
        return "the workload is paused (a release is about to start or is held)"
    if _int(st.get("observedGeneration")) < generation:
        return "the workload controller has not seen the latest change yet"
    if workload.get("kind") == "DaemonSet":  # a DaemonSet counts the nodes its pods run on
        wanted, total = _int(st.get("desiredNumberScheduled")), _int(st.get("currentNumberScheduled"))
        updated, available = _int(st.get("updatedNumberScheduled")), _int(st.get("numberAvailable"))
    else:
        wanted = 1 if spec.get("replicas") is None else _int(spec.get("replicas"))
        updated, available = _int(st.get("updatedReplicas")), _int(st.get("availableReplicas"))
        total = _int(st.get("replicas"))
    if updated < wanted or total > updated or available < updated:
        return f"pods rolling: {updated}/{wanted} updated, {available} available, {total} in total"
    return None


def _settled(rollout: Rollout, workload: Mapping[str, Any] | None) -> Verdict:
    """A Rollout with no release in progress: healthy, cancelled, or a new release not yet picked up."""
    if rollout.status.observed_generation < _int(rollout.metadata.get("generation")):
        return Verdict(Outcome.PROGRESSING, "the controller has not seen the Rollout's latest change yet")
    if workload is None:
        return Verdict(Outcome.BLOCKED, "the workload was not found")
    rolling = _workload_rolling(workload)
    if rolling is not None:
        return Verdict(Outcome.PROGRESSING, rolling)
    succeeded = rollout.status.condition(ConditionType.SUCCEEDED)
    if succeeded is not None and succeeded.status == "False":
        return Verdict(Outcome.CANCELLED, rollout.status.message or "the release was cancelled (rolled back)")
    return Verdict(Outcome.HEALTHY, rollout.status.message or "healthy")


def _blocked(rollout: Rollout, events: Sequence[Mapping[str, Any]]) -> str | None:
    message = rollout.status.message or ""
    if message.startswith(BLOCKED_PREFIXES):
        return message
    return latest_event_is_warning(events)


def judge(
    rollout: Rollout, workload: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]]
) -> Verdict:
    phase = rollout.status.phase
    if phase in (RolloutPhase.DISABLED, RolloutPhase.DISABLING, RolloutPhase.TERMINATING):
        return Verdict(
            Outcome.DEGRADED, f"the Rollout is {phase}: {rollout.status.message or 'not releasing'}"
        )
    blocked = _blocked(rollout, events)
    if phase == RolloutPhase.HEALTHY:
        return _settled(rollout, workload)
    held = rollout.status.condition("Analysis")
    if held is not None and held.status == "False" and held.reason in _ANALYSIS_HOLDS:
        return Verdict(Outcome.PAUSED, f"{held.message}: approve to continue")
    if blocked is not None:
        return Verdict(Outcome.BLOCKED, blocked)
    cond = rollout.status.condition(ConditionType.PROGRESSING)
    if rollout.spec.strategy.paused or (cond is not None and cond.reason == ProgressingReason.PAUSED):
        return Verdict(Outcome.PAUSED, "paused by the user")
    return Verdict(Outcome.PROGRESSING, rollout.status.message or phase or "not reconciled yet")
