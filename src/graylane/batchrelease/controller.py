"""The BatchRelease controller: caches → observe → `planner.plan` (pure) → status, then workload writes.

What this module does: picks the rolling style's `Control` (canary style for an apps/v1 Deployment with
rollingStyle Canary or the deprecated enableExtraWorkloadForCanary, partition style otherwise; every
other kind its own partition, kinds_style.py), builds
the frozen `BatchReleaseObserved` from the informer caches, and turns the plan into the runtime's
`Decision`: the status to store (guarded by the version the plan was made from, written first by the
loop), the finalizer change, the workload writes in order, and the phase-change Event. Its action
table says for each write whether it is guarded or idempotent.

Pods are not cached: they are listed (by the workload's selector) while a Deployment's rolloutID asks
for pod batch labels, and on every pass for the other kinds (their updated ready pods are counted from
them where the kind does not report it), because a cluster-wide pod cache costs far more memory than
these lists.

What it must not do: decide anything the planner decides, or keep state between reconciles.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.enums import BatchReleasePhase, RollingStyle
from graylane.api.workloads import CLONESET as CLONESET_KIND
from graylane.api.workloads import Family, WorkloadKind, lookup
from graylane.batchrelease.bluegreen_cloneset import BlueGreenCloneSet
from graylane.batchrelease.bluegreen_style import BlueGreenDeployment
from graylane.batchrelease.canary_style import CanaryStyle
from graylane.batchrelease.kinds_style import KindControl
from graylane.batchrelease.native_daemonset import owned_pods
from graylane.batchrelease.partition_style import PartitionStyle
from graylane.batchrelease.planner import (
    BatchReleaseAction,
    BatchReleaseObserved,
    Control,
    CreateCanary,
    Delete,
    Patch,
    controller_uid,
)
from graylane.batchrelease.planner import plan as plan_release
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import Informer
from graylane.observe.workload_kinds import WorkloadInformers, resource_for, resource_of
from graylane.observe.workload_objects import kind_workload
from graylane.observe.workloads import (
    POD_TEMPLATE_HASH,
    RevisionCache,
    deployment_workload,
    owned_by,
    template_revision,
)
from graylane.planner.actions import RecordEvent
from graylane.planner.writes import batch_release_status_obj_changed
from graylane.runtime.cache import parse_cached
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer

__all__ = ["BatchReleaseInput", "BatchReleaseReconciler", "Finalizers", "choose_control"]

log = logging.getLogger(__name__)
WORKLOAD_INDEX = "batchrelease-workload"
_RESOURCES = {
    "Deployment": r.DEPLOYMENT,
    "Pod": r.POD,
    "ReplicaSet": r.REPLICASET,
    "HorizontalPodAutoscaler": r.HPA,
}


@dataclasses.dataclass(frozen=True)
class Finalizers:
    """The BatchRelease's new finalizer list (a guarded write: another writer may edit it too)."""

    names: tuple[str, ...]


BatchReleaseWrite = BatchReleaseAction | Finalizers | RecordEvent


@dataclasses.dataclass(frozen=True)
class BatchReleaseInput:
    """One reconcile's reading: the cached object, its style's control (None: not driven), the snapshot."""

    obj: Obj
    control: Control | None
    observed: BatchReleaseObserved | None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def workload_index(release: Obj) -> list[str]:
    """Index BatchReleases by `namespace/Kind/name` of their workload."""
    ref = (release.get("spec") or {}).get("workloadRef") or {}
    ns = release.get("metadata", {}).get("namespace", "")
    return [f"{ns}/{ref.get('kind')}/{ref.get('name')}"] if ref.get("name") else []


def choose_control(br: BatchRelease) -> Control | None:
    """The rolling style's control; None for what is not driven (unknown kinds).

    Canary style (an extra workload) exists for Deployments only; for any other kind it falls through to
    partition style, as in Kruise's batchrelease executor.
    """
    ref = br.spec.workload_ref
    kind = lookup(ref.api_version, ref.kind) if ref is not None else None
    if ref is None or kind is None:
        return None
    plan = br.spec.release_plan
    style = plan.rolling_style or (RollingStyle.CANARY if plan.enable_extra_workload_for_canary else "")
    if style == RollingStyle.BLUE_GREEN:
        return _blue_green(kind)
    if style not in ("", RollingStyle.PARTITION, RollingStyle.CANARY):
        return None
    if kind.family is not Family.DEPLOYMENT:
        return KindControl(kind)
    if ref.api_version != "apps/v1":
        return None
    return CanaryStyle() if style == RollingStyle.CANARY else PartitionStyle()


def _blue_green(kind: WorkloadKind) -> Control | None:
    """Blue-green exists for Deployments and CloneSets only (the webhook refuses other kinds)."""
    if kind.family is Family.CLONESET:
        return BlueGreenCloneSet()
    return (
        BlueGreenDeployment() if kind.family is Family.DEPLOYMENT and kind.api_version == "apps/v1" else None
    )


class BatchReleaseReconciler:
    name = "batchrelease"
    primary = r.BATCHRELEASE
    status_message = True

    def __init__(
        self,
        workers: int = 3,
        clock: Callable[[], dt.datetime] = _utcnow,
        workloads: WorkloadInformers | None = None,
        revisions: RevisionCache | None = None,
    ) -> None:
        self.workers = workers
        self._revisions = revisions or RevisionCache()
        self._clock = clock
        self._workloads = workloads or WorkloadInformers()
        self._client: KubeClient | None = None
        self._recorder: EventRecorder | None = None
        self._releases: Informer | None = None
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None
        self._rollouts: Informer | None = None
        self._hpas: Informer | None = None

    def setup(self, manager: Manager) -> Informer:
        self._client, self._recorder = manager.client, manager.recorder
        self._releases = manager.watch(self, r.BATCHRELEASE)
        self._releases.add_index(WORKLOAD_INDEX, workload_index)
        self._deployments = manager.watch(self, r.DEPLOYMENT, keys=self._for_deployment)
        # Every ReplicaSet update counts: blue-green reads their availability (minReadySeconds).
        self._replicasets = manager.watch(self, r.REPLICASET, keys=self._for_replicaset)
        self._rollouts = manager.informer(r.ROLLOUT)  # read only: whether a release still holds one
        # Blue-green disables and restores an HPA on the workload; its events wake the finalisation.
        self._hpas = manager.watch(self, r.HPA, keys=self._for_hpa)
        self._workloads.setup(manager)
        self._workloads.subscribe(lambda kind, _: self._watch_kind(manager, kind))
        return self._releases

    def _watch_kind(self, manager: Manager, kind: WorkloadKind) -> None:
        resource = self._workloads.resource(kind)
        if resource is not None:
            manager.watch(self, resource, keys=self._for_workload)

    def _for_workload(self, obj: Obj) -> list[str]:
        """The BatchReleases driving this StatefulSet, DaemonSet or OpenKruise workload."""
        assert self._releases is not None
        meta = obj.get("metadata", {})
        ns = meta.get("namespace")
        found = self._releases.by_index(WORKLOAD_INDEX, f"{ns}/{obj.get('kind')}/{meta.get('name')}")
        return [f"{ns}/{br['metadata']['name']}" for br in found]

    def _for_deployment(self, dep: Obj) -> list[str]:
        """The BatchReleases driving this Deployment, as their workload or as its canary's owner."""
        assert self._releases is not None
        meta = dep.get("metadata", {})
        ns = meta.get("namespace")
        found = self._releases.by_index(WORKLOAD_INDEX, f"{ns}/Deployment/{meta.get('name')}")
        mine = [f"{ns}/{br['metadata']['name']}" for br in found]
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
        return mine + [f"{ns}/{o.get('name')}" for o in owners if o.get("kind") == "BatchRelease"]

    def _for_hpa(self, hpa: Obj) -> list[str]:
        assert self._releases is not None
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        name = str(ref.get("name") or "").removesuffix(keys.HPA_DISABLED_SUFFIX)
        ns = hpa.get("metadata", {}).get("namespace")
        found = self._releases.by_index(WORKLOAD_INDEX, f"{ns}/{ref.get('kind')}/{name}")
        return [f"{ns}/{br['metadata']['name']}" for br in found]

    def _for_replicaset(self, rs: Obj) -> list[str]:
        assert self._deployments is not None
        meta = rs.get("metadata", {})
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"]
        deps = [self._deployments.get(meta.get("namespace"), str(o.get("name"))) for o in owners]
        return [key for dep in deps if dep is not None for key in self._for_deployment(dep)]

    # -- the three stages -------------------------------------------------------------------------

    async def observe(self, obj: Obj) -> BatchReleaseInput | None:
        br = parse_cached(obj, BatchRelease)
        if br is None:
            return None
        control = choose_control(br)
        if control is None:
            return BatchReleaseInput(obj, None, None)
        if isinstance(control, KindControl):
            return BatchReleaseInput(obj, control, await self._observe_kind(br, control.kind))
        if isinstance(control, BlueGreenCloneSet):
            observed = await self._observe_kind(br, CLONESET_KIND)
            hpas = tuple(self._hpas.list(observed.release.metadata.get("namespace"))) if self._hpas else ()
            return BatchReleaseInput(obj, control, dataclasses.replace(observed, hpas=hpas))
        return BatchReleaseInput(obj, control, await self._observe(br, isinstance(control, CanaryStyle)))

    def offload(self, _: BatchReleaseInput) -> bool:
        """A BatchRelease plan never runs a script: it runs on the event loop (runtime/loop.py)."""
        return False

    def plan(self, inp: BatchReleaseInput) -> Decision[BatchReleaseWrite]:
        """Pure: the planner's decision; the status only when it changed beyond what is folded."""
        if inp.control is None or inp.observed is None:
            unsupported = RecordEvent(EventKind.WARNING, "UnsupportedWorkload", _unsupported(inp.obj))
            return Decision(actions=(unsupported,))
        br = inp.observed.release
        result = plan_release(inp.observed, inp.control)
        actions: list[BatchReleaseWrite] = []
        if result.finalizers is not None:
            actions.append(Finalizers(result.finalizers))
        actions.extend(result.actions)
        status = result.status.to_obj() if result.status is not None else None
        if status is None or not batch_release_status_obj_changed(br.status.to_obj(), status):
            return Decision(actions=tuple(actions), requeue_after=result.requeue_after)
        return Decision(status, tuple(actions), result.requeue_after)

    async def act(self, action: BatchReleaseWrite, inp: BatchReleaseInput, writer: Writer) -> None:
        ns = str(inp.obj["metadata"]["namespace"])
        if isinstance(action, Patch):
            # Guarded when the patch follows from what the object looked like (see Patch.guard); the
            # rest set fixed values. A guard may also be in the body (a canary's finalizer list).
            guard = action.guard or None
            await writer.patch(_resource(action.kind, inp), action.name, action.body, ns, guard=guard)
        elif isinstance(action, Delete):
            await writer.delete(_resource(action.kind, inp), action.name, ns, uid=action.uid or None)
        elif isinstance(action, CreateCanary):
            await writer.create(r.DEPLOYMENT, dict(action.body), ns)  # a fixed name: a repeat is a no-op
        elif isinstance(action, Finalizers):
            await writer.set_finalizers(r.BATCHRELEASE, inp.obj["metadata"], action.names)
        elif self._recorder is not None:
            await self._recorder.event(inp.obj, EventKind(action.type), action.reason, action.message)

    # -- observe ----------------------------------------------------------------------------------

    async def _observe(self, br: BatchRelease, canary_style: bool) -> BatchReleaseObserved:
        assert self._deployments is not None
        assert self._replicasets is not None
        ns = str(br.metadata.get("namespace", ""))
        ref = br.spec.workload_ref
        dep = self._deployments.get(ns, ref.name) if ref is not None else None
        uid = str(br.metadata.get("uid", ""))
        canaries = tuple(d for d in self._deployments.list(ns) if uid and controller_uid(d) == uid)
        held = self._held(br, dep)
        if dep is None:
            return BatchReleaseObserved(
                release=br, workload=None, now=self._clock(), canaries=canaries, release_held=held
            )
        replica_sets = self._replicasets.list(ns)
        workload = deployment_workload(dep, replica_sets, revisions=self._revisions)
        owned = [rs for rs in replica_sets if owned_by(rs, str(dep["metadata"].get("uid")))]
        if canary_style:
            owners = {str(c["metadata"].get("uid")) for c in canaries}
            updated_rs = [rs for rs in replica_sets if controller_uid(rs) in owners]
        else:
            updated_rs = [
                rs for rs in owned if template_revision(rs["spec"]["template"]) == workload.canary_revision
            ]
        pods = await self._updated_pods(br, dep, updated_rs)
        blue_green = br.spec.release_plan.rolling_style == RollingStyle.BLUE_GREEN
        return BatchReleaseObserved(
            release=br,
            workload=dep,
            now=self._clock(),
            update_revision=workload.canary_revision,
            stable_revision=workload.stable_revision,
            canaries=canaries,
            pods=pods,
            release_held=held,
            replica_sets=tuple(owned) if blue_green else (),
            hpas=tuple(self._hpas.list(ns)) if blue_green and self._hpas is not None else (),
        )

    async def _observe_kind(self, br: BatchRelease, kind: WorkloadKind) -> BatchReleaseObserved:
        """A StatefulSet, DaemonSet or OpenKruise workload, and its pods (listed: Kruise counts the
        updated ready pods of the kinds that do not report them, and labels them with their batch)."""
        assert self._client is not None
        ns = str(br.metadata.get("namespace", ""))
        ref = br.spec.workload_ref
        obj = self._workloads.get(kind, ns, ref.name) if ref is not None else None
        held = self._held(br, obj)
        if obj is None:
            return BatchReleaseObserved(release=br, workload=None, now=self._clock(), release_held=held)
        workload = kind_workload(kind, obj)
        return BatchReleaseObserved(
            release=br,
            workload=obj,
            now=self._clock(),
            update_revision=workload.canary_revision,
            stable_revision=workload.stable_revision,
            pods=await owned_pods(self._client, obj),
            release_held=held,
        )

    def _held(self, br: BatchRelease, dep: Obj | None) -> bool:
        """A Rollout still holds the workload: it is alive and the workload is in its release."""
        assert self._rollouts is not None
        if dep is None or keys.IN_PROGRESSING_ANNOTATION not in (dep["metadata"].get("annotations") or {}):
            return False
        refs = [o for o in br.metadata.get("ownerReferences") or [] if o.get("kind") == "Rollout"]
        if not refs:
            return False  # driven directly, not by a Rollout: nothing else will resume it
        rollout = self._rollouts.get(br.metadata.get("namespace"), str(refs[0].get("name")))
        meta = (rollout or {}).get("metadata") or {}
        return meta.get("uid") == refs[0].get("uid") and not meta.get("deletionTimestamp")

    async def _updated_pods(self, br: BatchRelease, dep: Obj, updated_rs: list[Obj]) -> tuple[Obj, ...]:
        """The updated ReplicaSets' pods, for their batch labels. Pods are listed, not watched (a cache of
        every pod would cost more than it saves), and only while a batch is checked: Preparing and
        Progressing are the only phases whose plan reads them (plan.batch_step)."""
        if not br.spec.release_plan.rollout_id or not updated_rs or not _checks_batches(br):
            return ()
        assert self._client is not None
        listed = await self._client.list(
            r.POD, dep["metadata"]["namespace"], label_selector=_pod_selector(dep, updated_rs)
        )
        uids = {str(rs["metadata"].get("uid")) for rs in updated_rs}
        return tuple(p for p in listed.get("items") or [] if controller_uid(p) in uids)


def _resource(kind: str, inp: BatchReleaseInput) -> r.Resource:
    """The resource of an action's object: the workload's own (in the version it was read in) for a
    KindControl; kind names alone are ambiguous (apps and apps.kruise.io both have a StatefulSet)."""
    workload = inp.observed.workload if inp.observed is not None else None
    if isinstance(inp.control, KindControl) and kind == inp.control.kind.kind and workload is not None:
        return resource_for(str(workload.get("apiVersion") or ""), kind) or resource_of(inp.control.kind)
    if isinstance(inp.control, BlueGreenCloneSet) and kind == CLONESET_KIND.kind and workload is not None:
        return resource_for(str(workload.get("apiVersion") or ""), kind) or resource_of(CLONESET_KIND)
    return _RESOURCES[kind]


def _checks_batches(br: BatchRelease) -> bool:
    """Whether this pass may check a batch: not Finalizing or Completed (both only move forward)."""
    return not br.metadata.get("deletionTimestamp") and br.status.phase not in (
        BatchReleasePhase.FINALIZING,
        BatchReleasePhase.COMPLETED,
    )


def _pod_selector(dep: Obj, updated_rs: list[Obj]) -> str:
    """The workload's selector narrowed to the updated ReplicaSets' pod-template-hash values, so the
    list answers with the new version's pods only (the stable ones are most of them early on)."""
    match = (dep.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    terms = [f"{k}={v}" for k, v in sorted(match.items()) if k != POD_TEMPLATE_HASH]
    hashes = sorted(
        {str((rs["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH) or "") for rs in updated_rs}
    )
    if all(hashes):
        terms.append(f"{POD_TEMPLATE_HASH} in ({','.join(hashes)})")
    return ",".join(terms)


def _unsupported(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    ref = spec.get("workloadRef") or {}
    target = f"{ref.get('apiVersion')}/{ref.get('kind')}" if ref else "<none>"
    style = (spec.get("releasePlan") or {}).get("rollingStyle") or "Partition"
    return f"the workload type '{target}' with rolling style '{style}' is not supported"
