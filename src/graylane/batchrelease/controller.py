"""The BatchRelease controller: caches → observe → `planner.plan` → carry out the actions → write status.

What this module does: picks the rolling style's `Control` (canary style for an apps/v1 Deployment with
rollingStyle Canary or the deprecated enableExtraWorkloadForCanary, partition style otherwise), builds
the frozen `Observed` from the informer caches, and applies the plan: finalizer changes first (Kruise's
handleFinalizer runs before the executor), then the workload actions in order, then one status PUT
guarded by the resourceVersion the plan was made from, so a concurrent spec or status change makes the
write fail and the key is planned again from fresh state.

Pods are not cached: they are listed (by the workload's selector) only while a rolloutID asks for pod
batch labels, because a cluster-wide pod cache costs far more memory than the few lists it saves.

What it must not do: decide anything the planner decides, or keep state between reconciles.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease, BatchReleaseStatus
from graylane.api.enums import RollingStyle
from graylane.batchrelease.canary_style import CanaryStyle
from graylane.batchrelease.partition_style import PartitionStyle
from graylane.batchrelease.planner import (
    Action,
    Control,
    CreateCanary,
    Delete,
    Observed,
    Patch,
    Plan,
    controller_uid,
)
from graylane.batchrelease.planner import plan as plan_release
from graylane.controller.cached import load_cached
from graylane.controller.manager import Manager
from graylane.controller.workloads import deployment_workload, owned_by, template_revision
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import Informer
from graylane.planner.writes import batch_release_status_changed

__all__ = ["BatchReleaseController", "choose_control"]

log = logging.getLogger(__name__)
WORKLOAD_INDEX = "batchrelease-workload"
CONFLICT_REQUEUE = 0.2
_RESOURCES = {"Deployment": r.DEPLOYMENT, "Pod": r.POD, "ReplicaSet": r.REPLICASET}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def workload_index(release: Obj) -> list[str]:
    """Index BatchReleases by `namespace/Kind/name` of their workload."""
    ref = (release.get("spec") or {}).get("workloadRef") or {}
    ns = release.get("metadata", {}).get("namespace", "")
    return [f"{ns}/{ref.get('kind')}/{ref.get('name')}"] if ref.get("name") else []


def choose_control(br: BatchRelease) -> Control | None:
    """The rolling style's control; None for what is not driven yet (other kinds, blue-green)."""
    ref = br.spec.workload_ref
    if ref is None or (ref.api_version, ref.kind) != ("apps/v1", "Deployment"):
        return None
    plan = br.spec.release_plan
    style = plan.rolling_style or (RollingStyle.CANARY if plan.enable_extra_workload_for_canary else "")
    if style == RollingStyle.CANARY:
        return CanaryStyle()
    return PartitionStyle() if style in ("", RollingStyle.PARTITION) else None


class BatchReleaseController:
    name = "batchrelease"

    def __init__(self, workers: int = 3, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.workers = workers
        self._clock = clock
        self._client: KubeClient | None = None
        self._recorder: EventRecorder | None = None
        self._releases: Informer | None = None
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None

    def setup(self, manager: Manager) -> None:
        self._client, self._recorder = manager.client, manager.recorder
        self._releases = manager.watch(self, r.BATCHRELEASE)
        self._releases.add_index(WORKLOAD_INDEX, workload_index)
        self._deployments = manager.watch(self, r.DEPLOYMENT, keys=self._for_deployment)
        self._replicasets = manager.watch(self, r.REPLICASET, keys=self._for_replicaset)

    def _for_deployment(self, dep: Obj) -> list[str]:
        """The BatchReleases driving this Deployment, as their workload or as its canary's owner."""
        assert self._releases is not None
        meta = dep.get("metadata", {})
        ns = meta.get("namespace")
        found = self._releases.by_index(WORKLOAD_INDEX, f"{ns}/Deployment/{meta.get('name')}")
        mine = [f"{ns}/{br['metadata']['name']}" for br in found]
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
        return mine + [f"{ns}/{o.get('name')}" for o in owners if o.get("kind") == "BatchRelease"]

    def _for_replicaset(self, rs: Obj) -> list[str]:
        assert self._deployments is not None
        meta = rs.get("metadata", {})
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"]
        deps = [self._deployments.get(meta.get("namespace"), str(o.get("name"))) for o in owners]
        return [key for dep in deps if dep is not None for key in self._for_deployment(dep)]

    async def reconcile(self, key: str) -> float | None:
        assert self._releases is not None
        loaded = load_cached(self._releases, key, BatchRelease)
        if loaded is None:
            return None
        raw, br = loaded
        control = choose_control(br)
        if control is None:
            await self._event(raw, EventKind.WARNING, "UnsupportedWorkload", _unsupported(br))
            return None
        result = plan_release(await self._observe(br, isinstance(control, CanaryStyle)), control)
        try:
            await self._execute(raw, br, result)
        except ApiError as err:
            if err.conflict or err.not_found:
                return CONFLICT_REQUEUE
            raise
        return result.requeue_after

    # -- observe ----------------------------------------------------------------------------------

    async def _observe(self, br: BatchRelease, canary_style: bool) -> Observed:
        assert self._deployments is not None
        assert self._replicasets is not None
        ns = str(br.metadata.get("namespace", ""))
        ref = br.spec.workload_ref
        dep = self._deployments.get(ns, ref.name) if ref is not None else None
        uid = str(br.metadata.get("uid", ""))
        canaries = tuple(d for d in self._deployments.list(ns) if uid and controller_uid(d) == uid)
        if dep is None:
            return Observed(release=br, workload=None, now=self._clock(), canaries=canaries)
        replica_sets = self._replicasets.list(ns)
        workload = deployment_workload(dep, replica_sets)
        if canary_style:
            owners = {str(c["metadata"].get("uid")) for c in canaries}
            updated_rs = [rs for rs in replica_sets if controller_uid(rs) in owners]
        else:
            owned = [rs for rs in replica_sets if owned_by(rs, str(dep["metadata"].get("uid")))]
            updated_rs = [
                rs for rs in owned if template_revision(rs["spec"]["template"]) == workload.canary_revision
            ]
        pods = await self._updated_pods(br, dep, updated_rs)
        return Observed(
            release=br,
            workload=dep,
            now=self._clock(),
            update_revision=workload.canary_revision,
            stable_revision=workload.stable_revision,
            canaries=canaries,
            pods=pods,
        )

    async def _updated_pods(self, br: BatchRelease, dep: Obj, updated_rs: list[Obj]) -> tuple[Obj, ...]:
        if not br.spec.release_plan.rollout_id or not updated_rs:
            return ()
        assert self._client is not None
        match = (dep.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
        listed = await self._client.list(r.POD, dep["metadata"]["namespace"], label_selector=selector)
        uids = {str(rs["metadata"].get("uid")) for rs in updated_rs}
        return tuple(p for p in listed.get("items") or [] if controller_uid(p) in uids)

    # -- execute ----------------------------------------------------------------------------------

    async def _execute(self, raw: Obj, br: BatchRelease, result: Plan) -> None:
        if result.finalizers is not None:
            await self._write_finalizers(raw, result.finalizers)
        for action in result.actions:
            await self._apply(raw["metadata"]["namespace"], action)
        # Timestamps and mirrored counts alone are folded into the next real transition.
        if result.status is not None and batch_release_status_changed(br.status, result.status):
            await self._write_status(raw, result.status)
            if result.status.phase != br.status.phase:
                message = (
                    f"BatchRelease phase changed from {br.status.phase or 'none'} to {result.status.phase}"
                )
                await self._event(raw, EventKind.NORMAL, result.status.phase, message)

    async def _write_finalizers(self, raw: Obj, finalizers: tuple[str, ...]) -> None:
        assert self._client is not None
        meta = raw["metadata"]
        body = {"metadata": {"finalizers": list(finalizers), "resourceVersion": meta["resourceVersion"]}}
        updated = await self._client.patch(r.BATCHRELEASE, meta["name"], body, meta["namespace"])
        meta["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def _write_status(self, raw: Obj, status: BatchReleaseStatus) -> None:
        """Replace the status subresource, guarded by the resourceVersion the plan was made from."""
        assert self._client is not None
        meta = raw["metadata"]
        body: Obj = {
            "apiVersion": r.BATCHRELEASE.api_version,
            "kind": "BatchRelease",
            "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion")},
            "status": status.to_obj(),
        }
        updated = await self._client.replace(r.BATCHRELEASE, body, subresource="status")
        meta["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def _apply(self, namespace: str, action: Action) -> None:
        assert self._client is not None
        if isinstance(action, Patch):
            await self._client.patch(_RESOURCES[action.kind], action.name, action.body, namespace)
        elif isinstance(action, Delete):
            await self._client.delete(_RESOURCES[action.kind], action.name, namespace)
        elif not await self._canary_exists(namespace, action):
            await self._client.create(r.DEPLOYMENT, dict(action.body), namespace)

    async def _canary_exists(self, namespace: str, action: CreateCanary) -> bool:
        """Asked of the API, not the cache: a canary created a moment ago may not be cached yet."""
        assert self._client is not None
        selector = f"{keys.CANARY_DEPLOYMENT_LABEL}={action.stable_name}"
        listed = await self._client.list(r.DEPLOYMENT, namespace, label_selector=selector)
        want = template_revision(action.body["spec"]["template"])
        return any(
            controller_uid(d) == action.owner_uid
            and not d["metadata"].get("deletionTimestamp")
            and template_revision(d["spec"]["template"]) == want
            for d in listed.get("items") or []
        )

    async def _event(self, obj: Obj, kind: EventKind, reason: str, message: str) -> None:
        if self._recorder is not None:
            await self._recorder.event(obj, kind, reason, message)


def _unsupported(br: BatchRelease) -> str:
    ref = br.spec.workload_ref
    target = f"{ref.api_version}/{ref.kind}" if ref is not None else "<none>"
    style = br.spec.release_plan.rolling_style or "Partition"
    return f"the workload type '{target}' with rolling style '{style}' is not supported"
