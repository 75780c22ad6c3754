"""The Rollout controller: what it watches, how it observes a Rollout, its pure plan (run by runtime/loop.py).

Every decision is made by `graylane.planner`; this module only gathers the frozen snapshot from the
informers (the Rollout, its workload and ReplicaSets, its BatchRelease, traffic objects and linked
TrafficRouting) and hands the plan's writes to the executor's table (executor/rollout.py). Conflicts,
expectations of its own writes and refused writes are the runtime's (level-triggered: a pass never
relies on the event that woke it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.enums import RolloutPhase
from graylane.api.rollout_v1beta1 import Rollout
from graylane.api.workloads import Family, WorkloadKind, lookup
from graylane.executor.coalesce import RolloutWrite, coalesce
from graylane.executor.rollout import RolloutInput, RolloutWrites
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import Informer, object_key
from graylane.kube.resources import Resource
from graylane.observe.analysis import AnalysisObserver
from graylane.observe.traffic import TrafficObserver
from graylane.observe.workload_kinds import WorkloadInformers
from graylane.observe.workload_objects import kind_workload
from graylane.observe.workloads import RevisionCache, deployment_workload
from graylane.planner import lifecycle
from graylane.planner.analysis import has_analysis
from graylane.planner.analysis_observed import AnalysisObserved
from graylane.planner.observed import RolloutObserved, Workload
from graylane.planner.writes import rollout_status_obj_changed
from graylane.runtime.cache import parse_cached
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.predicates import beyond_status, spec_or_metadata
from graylane.runtime.writer import Writer
from graylane.trafficrouting.link import LinkObserver

__all__ = ["RolloutReconciler", "workload_index"]

log = logging.getLogger(__name__)
WORKLOAD_INDEX = "workload"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def workload_index(rollout: Obj) -> list[str]:
    """Index Rollouts by `namespace/Kind/name` of the workload they point at."""
    ref = (rollout.get("spec") or {}).get("workloadRef") or {}
    ns = rollout.get("metadata", {}).get("namespace", "")
    return [f"{ns}/{ref.get('kind')}/{ref.get('name')}"] if ref.get("name") else []


def _precise(requeue: float | None, now: dt.datetime) -> float | None:
    """The planner measured time-based waits (pauses, grace periods) from `now` truncated to the second;
    without the truncated fraction the wake-up would come up to a second late."""
    if requeue is None:
        return None
    return max(requeue - now.microsecond / 1_000_000, 0.0)


class RolloutReconciler:
    name = "rollout"
    primary = r.ROLLOUT
    status_message = True

    def __init__(
        self,
        workers: int = 3,
        clock: Callable[[], dt.datetime] = _utcnow,
        traffic: TrafficObserver | None = None,
        workloads: WorkloadInformers | None = None,
        revisions: RevisionCache | None = None,
    ) -> None:
        self.workers = workers
        self._revisions = revisions or RevisionCache()
        self._clock = clock
        self._traffic = traffic or TrafficObserver()
        self._workloads = workloads or WorkloadInformers()
        self._link = LinkObserver()
        self._analysis = AnalysisObserver()
        self._rollouts: Informer | None = None
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None
        self._batch_releases: Informer | None = None
        self._writes = RolloutWrites()
        self._client: KubeClient | None = None

    def setup(self, manager: Manager) -> Informer:
        self._writes = RolloutWrites(manager.recorder, self._traffic.resources)
        self._client = manager.client
        self._batch_releases = manager.watch(self, r.BATCHRELEASE)
        self._rollouts = manager.watch(self, r.ROLLOUT)
        self._rollouts.add_index(WORKLOAD_INDEX, workload_index)
        self._traffic.setup(manager, self, self._rollouts)
        self._link.setup(manager, self, self._rollouts)
        self._analysis.setup(manager, self, self._rollouts)
        # A Rollout reads its Deployments' spec, metadata and observedGeneration, never their replica
        # counts (the BatchRelease's status carries those), so their other status updates are skipped;
        # of a ReplicaSet it reads the owner, labels and spec alone (deployment_workload; the stable
        # template for an automatic rollback, _observe_analysis). The other kinds' watches keep every
        # update: kind_workload reads their status counts.
        self._deployments = manager.watch(
            self, r.DEPLOYMENT, keys=self._rollouts_for_deployment, changed=beyond_status
        )
        self._replicasets = manager.watch(
            self, r.REPLICASET, keys=self._rollouts_for_replicaset, changed=spec_or_metadata
        )
        self._workloads.setup(manager)
        self._workloads.subscribe(lambda kind, _: self._watch_kind(manager, kind))
        return self._rollouts

    def _watch_kind(self, manager: Manager, kind: WorkloadKind) -> None:
        """Events of a StatefulSet, DaemonSet or OpenKruise kind (one whose CRD appears later too) wake
        its Rollouts."""
        resource = self._workloads.resource(kind)
        if resource is not None:
            manager.watch(self, resource, keys=self._rollouts_for_workload)

    def _rollouts_for_workload(self, obj: Obj) -> list[str]:
        assert self._rollouts is not None
        meta = obj.get("metadata", {})
        found = self._rollouts.by_index(
            WORKLOAD_INDEX, f"{meta.get('namespace')}/{obj.get('kind')}/{meta.get('name')}"
        )
        return [key for key in map(object_key, found) if key]

    def _rollouts_for_deployment(self, dep: Obj) -> list[str]:
        """The Rollouts of this Deployment, as their workload or as the canary Deployment of it."""
        assert self._rollouts is not None
        meta = dep.get("metadata", {})
        # A canary-style release's extra Deployment carries its stable Deployment's name in a label.
        name = (meta.get("labels") or {}).get(keys.CANARY_DEPLOYMENT_LABEL) or meta.get("name")
        found = self._rollouts.by_index(WORKLOAD_INDEX, f"{meta.get('namespace')}/Deployment/{name}")
        return [key for key in map(object_key, found) if key]

    def _rollouts_for_replicaset(self, rs: Obj) -> list[str]:
        assert self._deployments is not None
        meta = rs.get("metadata", {})
        ns = meta.get("namespace")
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"]
        # The owner from the cache (for its labels); a name-only stand-in while it is not cached yet.
        deps = [
            self._deployments.get(ns, str(o.get("name")))
            or {"metadata": {"namespace": ns, "name": o.get("name")}}
            for o in owners
        ]
        return [key for dep in deps for key in self._rollouts_for_deployment(dep)]

    # -- the three stages -------------------------------------------------------------------------

    async def observe(self, obj: Obj) -> RolloutInput | None:
        rollout = parse_cached(obj, Rollout)
        if rollout is None:
            return None
        namespace = rollout.metadata.get("namespace")
        now = self._clock()
        fresh = await self._fresh_workload(rollout)
        observed = RolloutObserved(
            rollout=rollout,
            workload=self._observe_workload(rollout, fresh),
            now=now.replace(microsecond=0),  # status times have 1 s resolution
            batch_release=self._observe_batch_release(namespace, str(rollout.metadata.get("name", ""))),
            traffic=self._traffic.observe(rollout),
            traffic_routing=self._link.observe(rollout),
            analysis=self._observe_analysis(rollout, fresh),
        )
        return RolloutInput(obj=obj, observed=observed, stored=rollout.status, now=now)

    def offload(self, inp: RolloutInput) -> bool:
        """Only a Rollout with traffic routing can wait on a user's script (a provider's Lua) while
        planning; every other plan is plain arithmetic and runs on the event loop (runtime/loop.py)."""
        return inp.observed.traffic is not None

    def plan(self, inp: RolloutInput) -> Decision[RolloutWrite]:
        """Pure: the planner's decision, with a status only when it changed beyond what is folded."""
        plan = lifecycle.plan(inp.observed)
        status = plan.status.to_obj() if plan.status is not None else None
        # Timestamps and mirrored fields alone are folded into the next real transition.
        if status is not None and not rollout_status_obj_changed(inp.stored.to_obj(), status, plan.actions):
            status = None
        return Decision(
            status=status,
            actions=coalesce(plan.actions),
            requeue_after=_precise(plan.requeue_after, inp.now),
        )

    async def act(self, step: RolloutWrite, inp: RolloutInput, writer: Writer) -> None:
        await self._writes.act(step, inp, writer)

    # -- observation ------------------------------------------------------------------------------

    def _observe_batch_release(self, namespace: str | None, name: str) -> BatchRelease | None:
        assert self._batch_releases is not None
        cached = self._batch_releases.get(namespace, name)
        return parse_cached(cached, BatchRelease) if cached is not None else None

    async def _fresh_workload(self, rollout: Rollout) -> Obj | None:
        """The workload read from the API, when this pass may be the Rollout's last word on it.

        Removing the finalizer of a deleted Rollout, or going Disabled, hands the workload back for good:
        nothing would undo the webhook's hold if it was missed. The webhook's pause and in-progressing
        annotation come from a write the caches may not have shown yet (a Rollout deleted 0.3 s after
        `kubectl set image`), so these passes read the workload from the API (one GET per such pass).
        """
        final = bool(rollout.metadata.get("deletionTimestamp")) or (
            rollout.spec.disabled and rollout.status.phase != RolloutPhase.DISABLED
        )
        resource = self._workload_resource(rollout)
        if not final or self._client is None or resource is None:
            return None
        ref = rollout.spec.workload_ref
        return await self._client.get_or_none(resource, ref.name, rollout.metadata.get("namespace"))

    def _workload_resource(self, rollout: Rollout) -> Resource | None:
        """Where the Rollout's workload is read: its kind's resource, if the kind is one graylane releases
        and is served here (OpenKruise's kinds need their CRDs)."""
        ref = rollout.spec.workload_ref
        kind = lookup(ref.api_version, ref.kind)
        if kind is None:
            return None
        if kind.family is Family.DEPLOYMENT:
            return r.DEPLOYMENT if ref.api_version == "apps/v1" else None
        return self._workloads.resource(kind)

    def _observe_analysis(self, rollout: Rollout, fresh: Obj | None) -> AnalysisObserved:
        """Runs and templates; during a release with analysis also the two pod templates an automatic
        rollback needs: the Deployment's (the release, recorded for `graylane retry`) and the stable
        ReplicaSet's (what it goes back to)."""
        sub = rollout.status.canary_status
        ref = rollout.spec.workload_ref
        deployment = (ref.api_version, ref.kind) == ("apps/v1", "Deployment")
        if not (has_analysis(rollout) and deployment and sub is not None and sub.stable_revision):
            return self._analysis.observe(rollout)
        assert self._deployments is not None
        assert self._replicasets is not None
        namespace = rollout.metadata.get("namespace")
        dep = fresh or self._deployments.get(namespace, ref.name)
        if dep is None:
            return self._analysis.observe(rollout)
        uid = dep["metadata"].get("uid")
        stable = next(
            (
                rs
                for rs in self._replicasets.list(namespace)
                if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == sub.stable_revision
                and any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
            ),
            None,
        )
        stable_template = (stable.get("spec") or {}).get("template") if stable is not None else None
        release_template = (dep.get("spec") or {}).get("template")
        return self._analysis.observe(rollout, stable_template, release_template)

    def _observe_workload(self, rollout: Rollout, fresh: Obj | None = None) -> Workload | None:
        assert self._deployments is not None
        assert self._replicasets is not None
        ref = rollout.spec.workload_ref
        namespace = rollout.metadata.get("namespace")
        kind = lookup(ref.api_version, ref.kind)
        if kind is None or self._workload_resource(rollout) is None:
            return None  # a kind graylane cannot release (lifecycle says so), or its CRD is not installed
        if kind.family is not Family.DEPLOYMENT:
            obj = fresh or self._workloads.get(kind, namespace, ref.name)
            return kind_workload(kind, obj) if obj is not None else None
        dep = fresh or self._deployments.get(namespace, ref.name)
        if dep is None:
            return None
        canaries = [  # canary-style release: its extra Deployment (reference §2.7)
            d
            for d in self._deployments.list(namespace)
            if (d["metadata"].get("labels") or {}).get(keys.CANARY_DEPLOYMENT_LABEL) == ref.name
        ]
        return deployment_workload(dep, self._replicasets.list(namespace), canaries, self._revisions)
