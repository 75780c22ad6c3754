"""The Rollout's action → write table: one small handler per (coalesced) action of a `RolloutPlan`.

Thin on purpose: every decision was made by the planner, and the runtime's loop (runtime/loop.py) has
already stored the decision's status, guarded by the resourceVersion it was made from. Each write here
is either guarded by the version of the object the decision read, or sets fixed values so that
repeating it changes nothing (idempotent by construction); the comment on each handler says which.

What it must not do: decide anything, or read anything the snapshot does not hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from graylane.api import keys
from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.api.workloads import Family, lookup
from graylane.executor.coalesce import RolloutMetadata, RolloutWrite, WorkloadMetadata
from graylane.executor.traffic import DEFAULT_RESOURCES, Resources, apply_change
from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.observe.workload_kinds import resource_for
from graylane.planner.actions import (
    ApplyChange,
    CreateAnalysisRun,
    DeleteBatchRelease,
    EnsureBatchRelease,
    PatchBatchRelease,
    RecordEvent,
    RollBackWorkload,
    SetTrafficRoutingFinalizers,
    TerminateAnalysisRun,
)
from graylane.planner.observed import RolloutObserved
from graylane.runtime.writer import Writer

__all__ = ["RolloutInput", "RolloutWrites"]


@dataclasses.dataclass(frozen=True)
class RolloutInput:
    """What one Rollout reconcile reads: the cached object, the planner's snapshot, the stored status."""

    obj: Obj  # the cached Rollout (shared: never mutated)
    observed: RolloutObserved
    stored: RolloutStatus  # as stored: a plan writes its status only when it differs from this
    now: datetime  # not truncated: the requeue is made precise with it

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


Handler = Callable[[Any, RolloutInput, Writer], Awaitable[None]]


class RolloutWrites:
    """Carries out one step of a Rollout's plan; holds no state between reconciles."""

    def __init__(
        self,
        recorder: EventRecorder | None = None,
        traffic: Callable[[], Resources] = lambda: DEFAULT_RESOURCES,
    ) -> None:
        self.recorder = recorder
        self.traffic = traffic  # the HTTPRoute version and custom kinds the cluster serves (as of now)
        self._table: dict[type, Handler] = {
            RolloutMetadata: self._rollout_metadata,
            WorkloadMetadata: self._workload_metadata,
            EnsureBatchRelease: self._ensure_batch_release,
            PatchBatchRelease: self._patch_batch_release,
            DeleteBatchRelease: self._delete_batch_release,
            ApplyChange: self._apply_change,
            SetTrafficRoutingFinalizers: self._traffic_routing_finalizers,
            CreateAnalysisRun: self._create_analysis_run,
            TerminateAnalysisRun: self._terminate_analysis_run,
            RollBackWorkload: self._roll_back_workload,
            RecordEvent: self._event,
        }

    async def act(self, step: RolloutWrite, inp: RolloutInput, writer: Writer) -> None:
        await self._table[type(step)](step, inp, writer)

    async def _rollout_metadata(self, step: RolloutMetadata, inp: RolloutInput, writer: Writer) -> None:
        """Finalizers are guarded (several writers edit the list); the hash annotation is a fixed value."""
        meta = inp.obj["metadata"]
        body: dict[str, Any] = {}
        finalizers = step.finalizers(meta.get("finalizers") or [])
        if finalizers is not None:
            body["finalizers"] = finalizers
        if step.annotations:
            body["annotations"] = dict(step.annotations)
        guard = str(meta["resourceVersion"]) if finalizers is not None else None
        await writer.patch(r.ROLLOUT, inp.name, {"metadata": body}, inp.namespace, guard=guard)

    async def _workload_metadata(self, step: WorkloadMetadata, inp: RolloutInput, writer: Writer) -> None:
        """Guarded when it hands the workload back (see WorkloadMetadata.guarded); labels are fixed."""
        workload = inp.observed.workload
        if workload is None:
            return
        guard = workload.resource_version if step.guarded else None
        resource = _workload_resource(workload.api_version, workload.kind)
        body = step.body(workload.resume_patch)
        await writer.patch(resource, workload.name, body, inp.namespace, guard=guard)

    async def _ensure_batch_release(
        self, action: EnsureBatchRelease, inp: RolloutInput, writer: Writer
    ) -> None:
        """Create it (named as the Rollout: a repeat finds the name taken), or replace its spec guarded
        by the version the plan compared it with."""
        br = inp.observed.batch_release
        if br is None:
            await writer.create(r.BATCHRELEASE, _new_batch_release(inp.obj, action))
            return
        replace = [{"op": "replace", "path": "/spec", "value": action.spec}]
        if action.annotations:  # e.g. rollback-in-batch, told to a BatchRelease that exists already
            merged = {**(br.metadata.get("annotations") or {}), **action.annotations}
            replace.append({"op": "add", "path": "/metadata/annotations", "value": merged})
        guard = str(br.metadata.get("resourceVersion", ""))
        await writer.patch(r.BATCHRELEASE, inp.name, replace, inp.namespace, patch_type="json", guard=guard)

    async def _patch_batch_release(
        self, action: PatchBatchRelease, inp: RolloutInput, writer: Writer
    ) -> None:
        """Fixed values (batchPartition null and the finalizing policy, or the rollout id): idempotent."""
        await writer.patch(r.BATCHRELEASE, inp.name, action.patch, inp.namespace)

    async def _delete_batch_release(self, _: DeleteBatchRelease, inp: RolloutInput, writer: Writer) -> None:
        """Idempotent; the uid precondition never deletes a newer BatchRelease of the same name."""
        br = inp.observed.batch_release
        uid = str(br.metadata.get("uid") or "") if br is not None else ""
        await writer.delete(r.BATCHRELEASE, inp.name, inp.namespace, uid=uid or None)

    async def _apply_change(self, action: ApplyChange, inp: RolloutInput, writer: Writer) -> None:
        await apply_change(writer, inp.namespace, action.change, self.traffic())

    async def _traffic_routing_finalizers(
        self, action: SetTrafficRoutingFinalizers, inp: RolloutInput, writer: Writer
    ) -> None:
        """Guarded: several Rollouts add and remove their own entry of the same list."""
        body = {"metadata": {"finalizers": list(action.finalizers)}}
        await writer.patch(r.TRAFFICROUTING, action.name, body, inp.namespace, guard=action.resource_version)

    async def _create_analysis_run(
        self, action: CreateAnalysisRun, inp: RolloutInput, writer: Writer
    ) -> None:
        """A fixed name (Rollout, revision, release, step): a repeat finds the name taken."""
        await writer.create(r.ANALYSIS_RUN, dict(action.run), inp.namespace)

    async def _terminate_analysis_run(
        self, action: TerminateAnalysisRun, inp: RolloutInput, writer: Writer
    ) -> None:
        """A fixed value: idempotent."""
        await writer.patch(r.ANALYSIS_RUN, action.name, {"spec": {"terminate": True}}, inp.namespace)

    async def _roll_back_workload(self, action: RollBackWorkload, inp: RolloutInput, writer: Writer) -> None:
        """Guarded by the workload's version the decision read: a template changed meanwhile (a newer
        release) is never overwritten with the stable one."""
        workload = inp.observed.workload
        if workload is None:
            return
        body = [{"op": "replace", "path": "/spec/template", "value": dict(action.template)}]
        guard = workload.resource_version
        await writer.patch(r.DEPLOYMENT, workload.name, body, inp.namespace, patch_type="json", guard=guard)

    async def _event(self, action: RecordEvent, inp: RolloutInput, _: Writer) -> None:
        if self.recorder is not None:
            kind = EventKind.WARNING if action.type == "Warning" else EventKind.NORMAL
            await self.recorder.event(inp.obj, kind, action.reason, action.message)


def _workload_resource(api_version: str, kind: str) -> r.Resource:
    found = lookup(api_version, kind)
    if found is None or found.family is Family.DEPLOYMENT:
        return r.DEPLOYMENT  # only a Deployment (or nothing) reaches here for a kind outside the table
    return resource_for(api_version, kind) or r.DEPLOYMENT


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
