"""Whether a new status is worth a write: the rule that keeps status PUTs to real transitions.

A status write costs an API request, a watch event to every watcher and, for a Rollout, a conversion
webhook call; at a thousand concurrent releases they were most of the controller's traffic. So a status
is written only when something other than timestamps changed, and the fields that merely mirror
another object's progress are folded into the next real transition instead of being written alone:

- Rollout: during a release, `canaryStatus.observedWorkloadGeneration` (the workload's generation,
  bumped by every pause/resume of the Deployment; outside a release a generation change is a user's
  edit, e.g. a scale, and tools compare it at once, so it is written then), and while the step waits
  for its BatchRelease (`StepUpgrade`) the mirror of the BatchRelease's progress (`message`
  "BatchRelease is at state …", `canaryReplicas`, `canaryReadyReplicas`) and the new ReplicaSet's
  `podTemplateHash`. They are written with the step's
  next transition, so a paused step shows the numbers it paused with, as in Kruise.
- BatchRelease: `canaryStatus.updatedReplicas` / `updatedReadyReplicas` while the batch is not Ready;
  they are written with the Ready transition (and kept current while Ready).

A timestamp that changes together with an action is not folded: `lastUpdateTime` then starts a grace
period (traffic routing) that the next pass measures, so it must be stored.

What it must not do: I/O, or decide anything beyond "write or not".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graylane.api.batchrelease import BatchReleaseStatus
from graylane.api.enums import BatchState, RolloutPhase, StepState
from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.planner.actions import RecordEvent, RolloutAction

__all__ = [
    "batch_release_status_changed",
    "batch_release_status_obj_changed",
    "rollout_status_changed",
    "rollout_status_obj_changed",
]

_TIMESTAMPS = frozenset({"lastUpdateTime", "lastTransitionTime"})
_ROLLOUT_MIRROR_RELEASING = frozenset({"observedWorkloadGeneration"})
_RELEASING = frozenset({RolloutPhase.PROGRESSING, RolloutPhase.TERMINATING, RolloutPhase.DISABLING})
# podTemplateHash: the canary ReplicaSet's hash appears while the batch comes up; the step's end
# records it again, and nothing reads it before then (the canary Service selects by it afterwards).
_ROLLOUT_MIRROR_WAITING = frozenset(
    {
        "message",
        "canaryReplicas",
        "canaryReadyReplicas",
        "updatedReplicas",
        "updatedReadyReplicas",
        "podTemplateHash",
    }
)
_BATCH_MIRROR = frozenset({"updatedReplicas", "updatedReadyReplicas"})


def rollout_status_changed(
    old: RolloutStatus, new: RolloutStatus, actions: Iterable[RolloutAction] = ()
) -> bool:
    """True when `new` differs from the stored `old` in a way that must be written now."""
    return rollout_status_obj_changed(old.to_obj(), new.to_obj(), actions)


def rollout_status_obj_changed(
    before: dict[str, Any], after: dict[str, Any], actions: Iterable[RolloutAction] = ()
) -> bool:
    """`rollout_status_changed` on the statuses as written (`to_obj()`), for a caller that serialises the
    new status anyway: a status is serialised once per pass, not once per question asked of it."""
    if before == after:
        return False
    # Go GetSubStatus: the canary status if set, else the blue-green one.
    sub = after.get("canaryStatus")
    if sub is None:
        sub = after.get("blueGreenStatus") or {}
    waiting = sub.get("currentStepState") == StepState.STEP_UPGRADE
    releasing = after.get("phase") in _RELEASING
    folded = (_ROLLOUT_MIRROR_RELEASING if releasing else frozenset()) | (
        _ROLLOUT_MIRROR_WAITING if waiting else frozenset()
    )
    if _clean(before, folded) != _clean(after, folded):
        return True
    # Only timestamps (or folded fields) moved: the timestamps are worth storing only when they time
    # something this pass started (a grace period after a route or Service change).
    acting = any(not isinstance(a, RecordEvent) for a in actions)
    return acting and _clean(before, folded, stamps=False) != _clean(after, folded, stamps=False)


def batch_release_status_changed(old: BatchReleaseStatus, new: BatchReleaseStatus) -> bool:
    """True when `new` differs from the stored `old` in a way that must be written now."""
    return batch_release_status_obj_changed(old.to_obj(), new.to_obj())


def batch_release_status_obj_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """`batch_release_status_changed` on the statuses as written (`to_obj()`)."""
    if before == after:
        return False
    state = (after.get("canaryStatus") or {}).get("batchState")
    folded = _TIMESTAMPS | (_BATCH_MIRROR if state != BatchState.READY else frozenset())
    return bool(_without(before, folded) != _without(after, folded))


def _clean(status: dict[str, Any], mirror: frozenset[str], *, stamps: bool = True) -> Any:
    """The status without `mirror` in its sub-statuses and, with `stamps`, without any timestamp."""
    clean = _without(status, _TIMESTAMPS) if stamps else dict(status)
    for sub in ("canaryStatus", "blueGreenStatus"):
        if isinstance(clean.get(sub), dict):
            clean[sub] = {k: v for k, v in clean[sub].items() if k not in mirror}
    return clean


def _without(value: Any, drop: frozenset[str]) -> Any:
    """A copy of a JSON-like value with the keys in `drop` removed at every depth."""
    if isinstance(value, dict):
        return {k: _without(v, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_without(v, drop) for v in value]
    return value
