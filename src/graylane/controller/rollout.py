"""The Rollout controller: fetch from caches → observe → plan → execute → requeue.

Every decision is made by `graylane.planner`; this module only gathers the observed state from the
informers and hands the plan to the executor. A write conflict re-queues the key so the next pass
plans from fresh state (level-triggered: it never relies on the event that woke it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.api.rollout_v1beta1 import Rollout
from graylane.controller.cached import load_cached
from graylane.controller.manager import Manager
from graylane.controller.traffic_observe import TrafficObserver
from graylane.controller.workloads import deployment_workload
from graylane.executor.apply import Executor
from graylane.executor.traffic import DEFAULT_RESOURCES
from graylane.kube import resources as r
from graylane.kube.client import ApiError, Obj
from graylane.kube.informer import Informer, object_key, split_key
from graylane.kube.resources import Resource
from graylane.planner import lifecycle
from graylane.planner.changes import Kind, ObjectKind
from graylane.planner.observed import Observed, Workload
from graylane.planner.writes import rollout_status_changed
from graylane.trafficrouting.link import LinkObserver

__all__ = ["RolloutController"]

log = logging.getLogger(__name__)
WORKLOAD_INDEX = "workload"
CONFLICT_REQUEUE = 0.2


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


class RolloutController:
    name = "rollout"

    def __init__(
        self,
        workers: int = 3,
        clock: Callable[[], dt.datetime] = _utcnow,
        traffic: TrafficObserver | None = None,
    ) -> None:
        self.workers = workers
        self._clock = clock
        self._traffic = traffic or TrafficObserver()
        self._link = LinkObserver()
        self._rollouts: Informer | None = None
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None
        self._executor: Executor | None = None
        self._batch_releases: Informer | None = None

    def setup(self, manager: Manager) -> None:
        self._executor = Executor(manager.client, manager.recorder, self._traffic_resources())
        self._batch_releases = manager.watch(self, r.BATCHRELEASE)
        self._rollouts = manager.watch(self, r.ROLLOUT)
        self._rollouts.add_index(WORKLOAD_INDEX, workload_index)
        self._traffic.setup(manager, self, self._rollouts)
        self._link.setup(manager, self, self._rollouts)
        self._deployments = manager.watch(self, r.DEPLOYMENT, keys=self._rollouts_for_deployment)
        self._replicasets = manager.watch(self, r.REPLICASET, keys=self._rollouts_for_replicaset)

    def _traffic_resources(self) -> dict[Kind, Resource]:
        resources: dict[Kind, Resource] = dict(DEFAULT_RESOURCES.items())
        if self._traffic.http_route is not None:
            resources[ObjectKind.HTTP_ROUTE] = self._traffic.http_route
        resources.update(self._traffic.custom_resources.items())
        return resources

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

    async def reconcile(self, key: str) -> float | None:
        assert self._rollouts is not None
        assert self._executor is not None
        loaded = load_cached(self._rollouts, key, Rollout)
        if loaded is None:
            return None
        raw, rollout = loaded
        namespace, name = split_key(key)
        now = self._clock()
        workload = self._observe_workload(rollout)
        observed = Observed(
            rollout=rollout,
            workload=workload,
            now=now.replace(microsecond=0),  # status times have 1 s resolution
            batch_release=self._observe_batch_release(namespace, name),
            traffic=self._traffic.observe(rollout),
            traffic_routing=self._link.observe(rollout),
        )
        # Off the event loop: a provider may wait on a Lua script's worker process (up to its deadline).
        plan = await asyncio.to_thread(lifecycle.plan, observed)
        # Timestamps and mirrored fields alone are folded into the next real transition.
        if plan.status is not None and not rollout_status_changed(rollout.status, plan.status, plan.actions):
            plan = type(plan)(actions=plan.actions, status=None, requeue_after=plan.requeue_after)
        try:
            await self._executor.execute(raw, workload, plan)
        except ApiError as err:
            if err.conflict or err.not_found:
                return CONFLICT_REQUEUE
            raise
        return _precise(plan.requeue_after, now)

    def _observe_batch_release(self, namespace: str | None, name: str) -> BatchRelease | None:
        assert self._batch_releases is not None
        cached = self._batch_releases.get(namespace, name)
        try:
            return BatchRelease.from_obj(cached) if cached is not None else None
        except ValueError as err:
            log.error("batchrelease %s/%s is malformed, ignored: %s", namespace, name, err)
            return None

    def _observe_workload(self, rollout: Rollout) -> Workload | None:
        assert self._deployments is not None
        assert self._replicasets is not None
        ref = rollout.spec.workload_ref
        namespace = rollout.metadata.get("namespace")
        if (ref.api_version, ref.kind) != ("apps/v1", "Deployment"):
            return None  # other workload kinds are not driven yet; they read as not found
        dep = self._deployments.get(namespace, ref.name)
        if dep is None:
            return None
        canaries = [  # canary-style release: its extra Deployment (reference §2.7)
            d
            for d in self._deployments.list(namespace)
            if (d["metadata"].get("labels") or {}).get(keys.CANARY_DEPLOYMENT_LABEL) == ref.name
        ]
        return deployment_workload(dep, self._replicasets.list(namespace), canaries)
