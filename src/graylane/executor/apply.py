"""Carry out a plan's actions against the API, in order, then write the status once.

Thin on purpose: every decision was made by the planner. Writes carry the resourceVersion they were
planned from, so a concurrent change (a user's approval patch, another writer) makes the write fail
with a conflict and the key is re-planned from fresh state instead of overwriting what changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from graylane.api import keys
from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.executor.coalesce import RolloutMetadata, WorkloadMetadata, coalesce
from graylane.executor.traffic import DEFAULT_RESOURCES, Resources, apply_change
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.planner.actions import (
    Action,
    ApplyChange,
    DeleteBatchRelease,
    EnsureBatchRelease,
    PatchBatchRelease,
    Plan,
    RecordEvent,
    SetTrafficRoutingFinalizers,
)
from graylane.planner.observed import Workload

__all__ = ["Executor"]


class Executor:
    """Applies the actions of one Rollout's plan; holds no state between reconciles."""

    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder | None = None,
        traffic_resources: Resources = DEFAULT_RESOURCES,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.traffic_resources = traffic_resources  # the HTTPRoute version the cluster serves

    async def execute(self, rollout: Obj, workload: Workload | None, plan: Plan) -> None:
        for step in coalesce(plan.actions):
            if isinstance(step, WorkloadMetadata):
                await self._patch_workload(rollout, workload, step)
            elif isinstance(step, RolloutMetadata):
                await self._patch_rollout(rollout, step)
            else:
                await self._handler(step)(rollout, workload, step)
        if plan.status is not None:
            await self.write_status(rollout, plan.status)

    def _handler(self, action: Action) -> Callable[[Obj, Workload | None, Any], Awaitable[None]]:
        handlers: dict[type, Callable[[Obj, Workload | None, Any], Awaitable[None]]] = {
            EnsureBatchRelease: self._ensure_batch_release,
            PatchBatchRelease: self._patch_batch_release,
            DeleteBatchRelease: self._delete_batch_release,
            ApplyChange: self._apply_change,
            SetTrafficRoutingFinalizers: self._traffic_routing_finalizers,
            RecordEvent: self._event,
        }
        return handlers[type(action)]

    async def _patch_rollout(self, rollout: Obj, step: RolloutMetadata) -> None:
        """One patch of finalizers and annotations; a finalizer change is guarded by resourceVersion."""
        meta = rollout["metadata"]
        body: dict[str, Any] = {}
        finalizers = step.finalizers(meta.get("finalizers") or [])
        if finalizers is not None:
            body.update(finalizers=finalizers, resourceVersion=meta["resourceVersion"])
        if step.annotations:
            body["annotations"] = dict(step.annotations)
        updated = await self.client.patch(r.ROLLOUT, meta["name"], {"metadata": body}, meta["namespace"])
        _carry_version(rollout, updated)

    async def _patch_workload(self, rollout: Obj, workload: Workload | None, step: WorkloadMetadata) -> None:
        if workload is None:
            return
        await self.client.patch(r.DEPLOYMENT, workload.name, step.body(), rollout["metadata"]["namespace"])

    async def _ensure_batch_release(
        self, rollout: Obj, _: Workload | None, action: EnsureBatchRelease
    ) -> None:
        # The cache decides which write goes first, so a new release costs one request, not a 404 + create.
        meta = rollout["metadata"]
        if not action.exists:
            try:
                await self.client.create(r.BATCHRELEASE, _new_batch_release(rollout, action))
                return
            except ApiError as err:
                if not err.already_exists:
                    raise
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

    async def _traffic_routing_finalizers(
        self, rollout: Obj, _: Workload | None, action: SetTrafficRoutingFinalizers
    ) -> None:
        body = {
            "metadata": {"finalizers": list(action.finalizers), "resourceVersion": action.resource_version}
        }
        await self.client.patch(r.TRAFFICROUTING, action.name, body, rollout["metadata"]["namespace"])

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
    metadata: Obj = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "ownerReferences": [owner],
        # Born with the finalizer the BatchRelease controller would add: one PATCH less per release.
        "finalizers": [keys.BATCH_RELEASE_FINALIZER],
    }
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
