"""Typed actions a plan asks the executor to carry out, in order.

Each action is idempotent: carrying it out twice leaves the cluster as carrying it out once, so a
crash between two actions is repaired by the next reconcile. This module must not do I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.planner.changes import Change

__all__ = [
    "AddRolloutFinalizer",
    "ApplyChange",
    "CreateAnalysisRun",
    "DeleteBatchRelease",
    "EnsureBatchRelease",
    "LabelWorkload",
    "PatchBatchRelease",
    "RecordEvent",
    "RemoveRolloutFinalizer",
    "RemoveWorkloadAnnotation",
    "RemoveWorkloadLabel",
    "RollBackWorkload",
    "RolloutAction",
    "RolloutPlan",
    "SetRolloutAnnotation",
    "SetTrafficRoutingFinalizers",
    "TerminateAnalysisRun",
    "UnpauseWorkload",
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


@dataclasses.dataclass(frozen=True)
class RemoveWorkloadAnnotation:
    key: str


@dataclasses.dataclass(frozen=True)
class RemoveWorkloadLabel:
    key: str


@dataclasses.dataclass(frozen=True)
class UnpauseWorkload:
    """Hand the workload back to its native controller (`spec.paused: false`): a release held it paused
    and no BatchRelease is left to do so. Sent with the other workload metadata in one guarded patch."""


@dataclasses.dataclass(frozen=True)
class EnsureBatchRelease:
    """Create the BatchRelease (named as the Rollout, owned by it) or replace its spec with this one."""

    spec: dict[str, Any]
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Whether the cache holds it: the executor tries that write first and falls back to the other.
    exists: bool = True


@dataclasses.dataclass(frozen=True)
class PatchBatchRelease:
    """A JSON merge patch on the BatchRelease (finalising, rollout-id sync)."""

    patch: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class DeleteBatchRelease:
    pass


@dataclasses.dataclass(frozen=True)
class ApplyChange:
    """One write to a traffic object (Service, Ingress, HTTPRoute) decided by a traffic provider."""

    change: Change


@dataclasses.dataclass(frozen=True)
class SetTrafficRoutingFinalizers:
    """Replace the finalizers of a TrafficRouting (same namespace), guarded by the version they were read at.

    Several Rollouts add and remove their own finalizer concurrently: the guard turns a lost update
    into a conflict, and the Rollout is re-planned from the fresh list.
    """

    name: str
    finalizers: tuple[str, ...]
    resource_version: str


@dataclasses.dataclass(frozen=True)
class CreateAnalysisRun:
    """Create this AnalysisRun (a fixed name: a repeated create finds it taken), owned by the Rollout."""

    run: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class TerminateAnalysisRun:
    """Stop a run that no longer decides anything (`spec.terminate: true`, a fixed value)."""

    name: str


@dataclasses.dataclass(frozen=True)
class RollBackWorkload:
    """Set the workload's pod template back to the stable one (guarded by the version observed): the
    release is then cancelled along Kruise's own path, as `graylane abort` does by hand."""

    template: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class RecordEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


RolloutAction = (
    AddRolloutFinalizer
    | RemoveRolloutFinalizer
    | SetRolloutAnnotation
    | LabelWorkload
    | RemoveWorkloadAnnotation
    | RemoveWorkloadLabel
    | UnpauseWorkload
    | EnsureBatchRelease
    | PatchBatchRelease
    | DeleteBatchRelease
    | ApplyChange
    | SetTrafficRoutingFinalizers
    | CreateAnalysisRun
    | TerminateAnalysisRun
    | RollBackWorkload
    | RecordEvent
)


@dataclasses.dataclass(frozen=True)
class RolloutPlan:
    """One reconcile's decisions: ordered actions, the status to write (None: keep), when to look again."""

    actions: tuple[RolloutAction, ...] = ()
    status: RolloutStatus | None = None
    requeue_after: float | None = None
