"""Carry out a plan's actions against the API, in order, then write the status once.

Thin on purpose: every decision was made by the planner. Writes carry the resourceVersion they were
planned from, so a concurrent change (a user's approval patch, another writer) makes the write fail
with a conflict and the key is re-planned from fresh state instead of overwriting what changed.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.executor.traffic import DEFAULT_RESOURCES, apply_change
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.resources import Resource
from graylane.planner.actions import (
    Action,
    AddRolloutFinalizer,
    ApplyChange,
    DeleteBatchRelease,
    EnsureBatchRelease,
    LabelWorkload,
    PatchBatchRelease,
    Plan,
    RecordEvent,
    RemoveRolloutFinalizer,
    RemoveWorkloadAnnotation,
    SetRolloutAnnotation,
)
from graylane.planner.changes import ObjectKind
from graylane.planner.observed import Workload

__all__ = ["Executor"]


class Executor:
    """Applies the actions of one Rollout's plan; holds no state between reconciles."""

    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder | None = None,
        traffic_resources: Mapping[ObjectKind, Resource] = DEFAULT_RESOURCES,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.traffic_resources = traffic_resources  # the HTTPRoute version the cluster serves

    async def execute(self, rollout: Obj, workload: Workload | None, plan: Plan) -> None:
        for action in plan.actions:
            await self._handler(action)(rollout, workload, action)
        if plan.status is not None:
            await self.write_status(rollout, plan.status)

    def _handler(self, action: Action) -> Callable[[Obj, Workload | None, Any], Awaitable[None]]:
        handlers: dict[type, Callable[[Obj, Workload | None, Any], Awaitable[None]]] = {
            AddRolloutFinalizer: functools.partial(self._finalizers, add=True),
            RemoveRolloutFinalizer: functools.partial(self._finalizers, add=False),
            SetRolloutAnnotation: self._annotate,
            LabelWorkload: self._label_workload,
            RemoveWorkloadAnnotation: self._unannotate_workload,
            EnsureBatchRelease: self._ensure_batch_release,
            PatchBatchRelease: self._patch_batch_release,
            DeleteBatchRelease: self._delete_batch_release,
            ApplyChange: self._apply_change,
            RecordEvent: self._event,
        }
        return handlers[type(action)]

    async def _finalizers(self, rollout: Obj, _: Workload | None, action: Any, *, add: bool) -> None:
        meta = rollout["metadata"]
        current = list(meta.get("finalizers") or [])
        wanted = [*current, action.finalizer] if add else [f for f in current if f != action.finalizer]
        body = {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}}
        updated = await self.client.patch(r.ROLLOUT, meta["name"], body, meta["namespace"])
        _carry_version(rollout, updated)

    async def _annotate(self, rollout: Obj, _: Workload | None, action: SetRolloutAnnotation) -> None:
        meta = rollout["metadata"]
        body = {"metadata": {"annotations": {action.key: action.value}}}
        updated = await self.client.patch(r.ROLLOUT, meta["name"], body, meta["namespace"])
        _carry_version(rollout, updated)

    async def _label_workload(self, rollout: Obj, workload: Workload | None, action: LabelWorkload) -> None:
        if workload is None:
            return
        body = {"metadata": {"labels": {action.key: action.value}}}
        await self.client.patch(r.DEPLOYMENT, workload.name, body, rollout["metadata"]["namespace"])

    async def _unannotate_workload(
        self, rollout: Obj, workload: Workload | None, action: RemoveWorkloadAnnotation
    ) -> None:
        if workload is None:
            return
        body = {"metadata": {"annotations": {action.key: None}}}
        await self.client.patch(r.DEPLOYMENT, workload.name, body, rollout["metadata"]["namespace"])

    async def _ensure_batch_release(
        self, rollout: Obj, _: Workload | None, action: EnsureBatchRelease
    ) -> None:
        meta = rollout["metadata"]
        try:
            await self.client.patch(
                r.BATCHRELEASE,
                meta["name"],
                [{"op": "replace", "path": "/spec", "value": action.spec}],
                meta["namespace"],
                patch_type="json",
            )
        except ApiError as err:
            if not err.not_found:
                raise
            await self.client.create(r.BATCHRELEASE, _new_batch_release(rollout, action))

    async def _patch_batch_release(self, rollout: Obj, _: Workload | None, action: PatchBatchRelease) -> None:
        meta = rollout["metadata"]
        await self.client.patch(r.BATCHRELEASE, meta["name"], action.patch, meta["namespace"])

    async def _delete_batch_release(
        self, rollout: Obj, _: Workload | None, action: DeleteBatchRelease
    ) -> None:
        meta = rollout["metadata"]
        await self.client.delete(r.BATCHRELEASE, meta["name"], meta["namespace"])

    async def _apply_change(self, rollout: Obj, _: Workload | None, action: ApplyChange) -> None:
        namespace = rollout["metadata"]["namespace"]
        await apply_change(self.client, namespace, action.change, self.traffic_resources)

    async def _event(self, rollout: Obj, _: Workload | None, action: RecordEvent) -> None:
        if self.recorder is not None:
            kind = EventKind.WARNING if action.type == "Warning" else EventKind.NORMAL
            await self.recorder.event(rollout, kind, action.reason, action.message)

    async def write_status(self, rollout: Obj, status: RolloutStatus) -> None:
        """Replace the status subresource, guarded by the resourceVersion the plan was made from."""
        body = {
            "apiVersion": r.ROLLOUT.api_version,
            "kind": "Rollout",
            "metadata": {k: rollout["metadata"][k] for k in ("name", "namespace", "resourceVersion")},
            "status": status.to_obj(),
        }
        updated = await self.client.replace(r.ROLLOUT, body, subresource="status")
        _carry_version(rollout, updated)


def _new_batch_release(rollout: Obj, action: EnsureBatchRelease) -> Obj:
    """Named as the Rollout, with a controller reference to it (garbage collected with it)."""
    meta = rollout["metadata"]
    owner = {
        "apiVersion": r.ROLLOUT.api_version,
        "kind": "Rollout",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    metadata: Obj = {"name": meta["name"], "namespace": meta["namespace"], "ownerReferences": [owner]}
    if action.annotations:
        metadata["annotations"] = dict(action.annotations)
    return {
        "apiVersion": r.BATCHRELEASE.api_version,
        "kind": "BatchRelease",
        "metadata": metadata,
        "spec": action.spec,
    }


def _carry_version(rollout: Obj, updated: Obj) -> None:
    """Later writes in the same reconcile build on our own write, not on the stale cached version."""
    rollout["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
