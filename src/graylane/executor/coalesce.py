"""Folding a plan's metadata actions into one patch per object, before the executor sends them.

The planner states each intent on its own (add the finalizer, set the hash annotation, label the
workload, drop the in-progress annotation); sending each as its own PATCH costs a request apiece and,
on a Deployment, every metadata write bumps its resourceVersion and makes the controller-manager's
concurrent status update conflict (BENCHMARKS.md cause 7). So all metadata intents for one object go
out as one merged patch, at the position of the first of them.

What it must not do: I/O, or reorder actions other than the ones it merges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.planner.actions import (
    AddRolloutFinalizer,
    LabelWorkload,
    RemoveRolloutFinalizer,
    RemoveWorkloadAnnotation,
    RemoveWorkloadLabel,
    RolloutAction,
    SetRolloutAnnotation,
    UnpauseWorkload,
)

__all__ = ["RolloutMetadata", "RolloutWrite", "WorkloadMetadata", "coalesce"]


@dataclasses.dataclass(frozen=True)
class WorkloadMetadata:
    """One merge patch of the workload's labels and annotations (None removes a key), and `unpause`."""

    labels: dict[str, str | None] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str | None] = dataclasses.field(default_factory=dict)
    unpause: bool = False

    def body(self, resume: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The merge patch; `unpause` writes `resume` (the workload's own hand-back patch: a Deployment's
        `spec.paused: false`, another kind's partition or update strategy, see observe/workload_objects)."""
        resume = resume if resume is not None else {"spec": {"paused": False}}
        meta: dict[str, Any] = {}
        if self.labels:
            meta["labels"] = dict(self.labels)
        annotations = dict(self.annotations)
        if self.unpause:
            annotations.update((resume.get("metadata") or {}).get("annotations") or {})
        if annotations:
            meta["annotations"] = annotations
        body: dict[str, Any] = {"metadata": meta}
        if self.unpause:
            body["spec"] = dict(resume.get("spec") or {})
        return body

    @property
    def guarded(self) -> bool:
        """Labels set alone are fixed values (idempotent); removing the in-progressing annotation or a
        label, or unpausing, follows from what was observed of the workload, so it waits on that version."""
        return self.unpause or bool(self.annotations) or None in self.labels.values()


@dataclasses.dataclass(frozen=True)
class RolloutMetadata:
    """One patch of the Rollout's finalizers (added / removed) and annotations."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)

    def finalizers(self, current: Iterable[str]) -> list[str] | None:
        """The new finalizer list, or None when this patch does not touch finalizers."""
        if not self.add and not self.remove:
            return None
        kept = [f for f in current if f not in self.remove]
        return [*kept, *(f for f in self.add if f not in kept)]


RolloutWrite = RolloutAction | WorkloadMetadata | RolloutMetadata
_WORKLOAD = (LabelWorkload, RemoveWorkloadLabel, RemoveWorkloadAnnotation, UnpauseWorkload)
_ROLLOUT = (AddRolloutFinalizer, RemoveRolloutFinalizer, SetRolloutAnnotation)


def coalesce(actions: Iterable[RolloutAction]) -> tuple[RolloutWrite, ...]:
    """The actions with every workload and every Rollout metadata action merged into one step each."""
    actions = tuple(actions)
    workload, rollout = _workload(actions), _rollout(actions)
    steps: list[RolloutWrite] = []
    for action in actions:
        if isinstance(action, _WORKLOAD):
            if workload is not None:
                steps.append(workload)
                workload = None
        elif isinstance(action, _ROLLOUT):
            if rollout is not None:
                steps.append(rollout)
                rollout = None
        else:
            steps.append(action)
    return tuple(steps)


def _workload(actions: tuple[RolloutAction, ...]) -> WorkloadMetadata | None:
    unpause = any(isinstance(action, UnpauseWorkload) for action in actions)
    merged = WorkloadMetadata(unpause=unpause)
    for action in actions:
        if isinstance(action, LabelWorkload):
            merged.labels[action.key] = action.value
        elif isinstance(action, RemoveWorkloadLabel):
            merged.labels[action.key] = None
        elif isinstance(action, RemoveWorkloadAnnotation):
            merged.annotations[action.key] = None
    return merged if merged.labels or merged.annotations or unpause else None


def _rollout(actions: tuple[RolloutAction, ...]) -> RolloutMetadata | None:
    add = tuple(a.finalizer for a in actions if isinstance(a, AddRolloutFinalizer))
    remove = tuple(a.finalizer for a in actions if isinstance(a, RemoveRolloutFinalizer))
    annotations = {a.key: a.value for a in actions if isinstance(a, SetRolloutAnnotation)}
    return RolloutMetadata(add, remove, annotations) if add or remove or annotations else None
