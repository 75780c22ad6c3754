"""Typed actions a plan asks the executor to carry out, in order.

Each action is idempotent: carrying it out twice leaves the cluster as carrying it out once, so a
crash between two actions is repaired by the next reconcile. This module must not do I/O.
"""

from __future__ import annotations

import dataclasses

from graylane.api.rollout_v1beta1 import RolloutStatus

__all__ = [
    "Action",
    "AddRolloutFinalizer",
    "LabelWorkload",
    "Plan",
    "RemoveRolloutFinalizer",
    "SetRolloutAnnotation",
]


@dataclasses.dataclass(frozen=True)
class AddRolloutFinalizer:
    finalizer: str


@dataclasses.dataclass(frozen=True)
class RemoveRolloutFinalizer:
    finalizer: str


@dataclasses.dataclass(frozen=True)
class SetRolloutAnnotation:
    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class LabelWorkload:
    """Merge-patch one label onto the workload (e.g. the webhook's objectSelector label)."""

    key: str
    value: str


Action = AddRolloutFinalizer | RemoveRolloutFinalizer | SetRolloutAnnotation | LabelWorkload


@dataclasses.dataclass(frozen=True)
class Plan:
    """One reconcile's decisions: ordered actions, the status to write (None: keep), when to look again."""

    actions: tuple[Action, ...] = ()
    status: RolloutStatus | None = None
    requeue_after: float | None = None
