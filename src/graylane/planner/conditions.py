"""Setting and removing Rollout conditions the way Kruise does (status readers match on these).

Pure: the caller passes `now`.
"""

from __future__ import annotations

from datetime import datetime

from graylane.api.common import RolloutCondition

__all__ = ["get_condition", "remove_condition", "set_condition"]


def get_condition(conditions: list[RolloutCondition], type_: str) -> RolloutCondition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[RolloutCondition], type_: str, status: str, reason: str, message: str, now: datetime
) -> list[RolloutCondition]:
    """A new list with the condition set; unchanged when status, reason and message are already equal.

    lastTransitionTime only moves when the status flips, so dashboards can tell how long a state held.
    """
    current = get_condition(conditions, type_)
    if current is not None and (current.status, current.reason, current.message) == (status, reason, message):
        return conditions
    transition = current.last_transition_time if current is not None and current.status == status else now
    new = RolloutCondition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_update_time=now,
        last_transition_time=transition,
    )
    return [*(c for c in conditions if c.type != type_), new]


def remove_condition(conditions: list[RolloutCondition], type_: str) -> list[RolloutCondition]:
    return [c for c in conditions if c.type != type_]
