"""What a person did to a Rollout, read from two consecutive versions of it, and who did it.

Kruise's user moves are plain writes (kubectl-kruise, `kubectl patch`, graylane's CLI, a GitOps tool):
approving is `currentStepState: StepPaused -> StepReady` on the status subresource, pausing and resuming
flip `spec.strategy.paused`, a step jump writes `nextStepIndex`, graylane's abort leaves its annotation,
and an undo rolls the workload back, which the controller answers by cancelling the release. Each gets a
Normal Event on the Rollout naming the action and, where the API tells, who: the field manager that owns
the changed field in `metadata.managedFields` (kubectl sends `kubectl-patch`, graylane's CLI sends
`graylane-cli:<user>` with the user the API server authenticated it as).

The controller's own moves are not user actions: a timed pause ending is a StepPaused -> StepReady written
by the controller's field manager, and is skipped. Pure: no I/O; `detect(old, new, controller_manager)`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

__all__ = ["ABORT_ANNOTATION", "UserAction", "Verb", "detect", "owner_of"]

Obj = Mapping[str, Any]
ABORT_ANNOTATION: Final = "graylane.io/aborted-release"
SUB_STATUSES: Final = ("canaryStatus", "blueGreenStatus")


class Verb(enum.StrEnum):
    APPROVED = "Approved"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    PROMOTED = "Promoted"  # a step jump (nextStepIndex), e.g. `graylane promote --full`
    ABORTED = "Aborted"
    UNDONE = "Undone"


@dataclasses.dataclass(frozen=True)
class UserAction:
    verb: Verb
    who: str  # the field manager, or "" when the API does not tell
    detail: str

    @property
    def reason(self) -> str:
        return f"Rollout{self.verb}"

    @property
    def message(self) -> str:
        by = f" by {self.who}" if self.who else ""
        return f"{self.detail}{by}"


def _get(obj: Obj | None, *path: str) -> Any:
    here: Any = obj or {}
    for key in path:
        here = here.get(key) if isinstance(here, Mapping) else None
    return here


def _owns(fields: Any, path: Sequence[str]) -> bool:
    here = fields
    for key in path:
        if not isinstance(here, Mapping) or f"f:{key}" not in here:
            return False
        here = here[f"f:{key}"]
    return True


def owner_of(obj: Obj, path: Sequence[str], subresource: str = "") -> str:
    """The manager whose managedFields entry owns `path` (e.g. spec, strategy, paused); "" if none."""
    owners = [
        entry
        for entry in _get(obj, "metadata", "managedFields") or []
        if (entry.get("subresource") or "") == subresource and _owns(entry.get("fieldsV1"), path)
    ]
    latest = max(owners, key=lambda e: str(e.get("time") or ""), default=None)
    return str(latest.get("manager") or "") if latest else ""


def _sub(obj: Obj | None) -> tuple[str, Obj]:
    for key in SUB_STATUSES:
        sub = _get(obj, "status", key)
        if isinstance(sub, Mapping):
            return key, sub
    return "", {}


def _approval(old: Obj, new: Obj) -> Iterator[UserAction]:
    (_, before), (key, after) = _sub(old), _sub(new)
    if before.get("currentStepState") == "StepPaused" and after.get("currentStepState") == "StepReady":
        who = owner_of(new, ("status", key, "currentStepState"), "status")
        yield UserAction(Verb.APPROVED, who, f"step {after.get('currentStepIndex')} approved")
    nxt, natural = after.get("nextStepIndex"), before.get("nextStepIndex")
    if key and nxt != natural and isinstance(nxt, int) and nxt > 0:
        who = owner_of(new, ("status", key, "nextStepIndex"), "status")
        yield UserAction(
            Verb.PROMOTED, who, f"jump to step {nxt} asked (from step {after.get('currentStepIndex')})"
        )


def _pause(old: Obj, new: Obj) -> Iterator[UserAction]:
    before, after = (
        bool(_get(old, "spec", "strategy", "paused")),
        bool(_get(new, "spec", "strategy", "paused")),
    )
    if before != after:
        who = owner_of(new, ("spec", "strategy", "paused"))
        yield UserAction(
            Verb.PAUSED if after else Verb.RESUMED, who, "release paused" if after else "release resumed"
        )


def _abort(old: Obj, new: Obj) -> Iterator[UserAction]:
    if _get(new, "metadata", "annotations", ABORT_ANNOTATION) and not _get(
        old, "metadata", "annotations", ABORT_ANNOTATION
    ):
        who = owner_of(new, ("metadata", "annotations", ABORT_ANNOTATION))
        yield UserAction(Verb.ABORTED, who, "release aborted (rolled back to the stable revision)")


def _reason(obj: Obj) -> str:
    for cond in _get(obj, "status", "conditions") or []:
        if cond.get("type") == "Progressing":
            return str(cond.get("reason") or "")
    return ""


def _undo(old: Obj, new: Obj, workload: Obj | None) -> Iterator[UserAction]:
    if _reason(new) == "Cancelling" and _reason(old) != "Cancelling":
        who = owner_of(workload, ("spec", "template")) if workload is not None else ""
        yield UserAction(Verb.UNDONE, who, "workload rolled back: the release is being cancelled")


def detect(
    old: Obj | None, new: Obj | None, controller_manager: str, workload: Obj | None = None
) -> list[UserAction]:
    """The user actions between `old` and `new` (both versions of one Rollout); [] on create/delete."""
    if old is None or new is None:
        return []
    found = [*_approval(old, new), *_pause(old, new), *_abort(old, new), *_undo(old, new, workload)]
    # The controller's own writes (a timed pause ending, a plan change's jump) are not user actions.
    return [a for a in found if a.who != controller_manager or a.verb is Verb.UNDONE]
