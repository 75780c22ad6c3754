"""The Advanced Deployment controller: drives partition-style Deployments the native controller holds still.

What this module does: watches Deployments under rollout control (paused, `Recreate`, control-info,
controlled-by label) and the ReplicaSets they own, computes the revisions of their pod templates
(the new ReplicaSet is named `<deployment>-<revision>` and labelled `pod-template-hash=<revision>`, with
the Deployment controller's own hash, api/podtemplatehash.py, so the native controller's name and label
are the same when it takes the Deployment back), and carries out
`advanced_deployment_planner.plan`: create the new ReplicaSet, scale ReplicaSets, write the extra status.

Writes: a new ReplicaSet has a fixed name (`<deployment>-<revision>`), so a repeated create finds it
taken; scaling is guarded by the ReplicaSet's version the sizes were read at; the extra-status
annotation by the Deployment's version (a stale write after the hand-back would outlive the release).
The runtime's loop runs the plan and waits for these writes to show in the caches before the next
decision.

What it must not do: decide anything (the planner does), or write Deployment status (the native
controller keeps writing it for paused Deployments, from the same ReplicaSets).
"""

from __future__ import annotations

import logging

from graylane.api import keys
from graylane.batchrelease.advanced_deployment_planner import (
    CreateReplicaSet,
    ScaleReplicaSet,
    ScalingAction,
    ScalingObserved,
    plan,
    under_control,
)
from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.informer import Informer, object_key
from graylane.observe.workloads import owned_by, template_revision
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer

__all__ = ["AdvancedDeploymentReconciler"]

log = logging.getLogger(__name__)


def _seen(observed: ScalingObserved) -> dict[str, object]:
    """The observation a scaling decision was made on, for its log line."""
    dep = observed.deployment
    return {
        "deployment_version": dep["metadata"].get("resourceVersion"),
        "strategy": (dep["metadata"].get("annotations") or {}).get(keys.DEPLOYMENT_STRATEGY_ANNOTATION),
        "replicasets": {
            rs["metadata"]["name"]: (
                rs.get("spec", {}).get("replicas"),
                rs["metadata"].get("resourceVersion"),
            )
            for rs in observed.replica_sets
        },
    }


def _own_key_if_controlled(dep: Obj) -> list[str]:
    key = object_key(dep)
    return [key] if key and under_control(dep) else []


class AdvancedDeploymentReconciler:
    name = "advanced-deployment"
    primary = r.DEPLOYMENT
    status_message = False  # a Deployment has no status.message of ours; refusals go to Events

    def __init__(self, workers: int = 3) -> None:
        self.workers = workers
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None

    def setup(self, manager: Manager) -> Informer:
        self._deployments = manager.watch(self, r.DEPLOYMENT, keys=_own_key_if_controlled)
        self._replicasets = manager.watch(self, r.REPLICASET, keys=self._owner_key)
        return self._deployments

    def _owner_key(self, rs: Obj) -> list[str]:
        assert self._deployments is not None
        meta = rs.get("metadata", {})
        ns = meta.get("namespace")
        owners = [
            o
            for o in meta.get("ownerReferences") or []
            if o.get("controller") and o.get("kind") == "Deployment"
        ]
        deps = [self._deployments.get(ns, str(o.get("name"))) for o in owners]
        return [key for dep in deps if dep is not None for key in _own_key_if_controlled(dep)]

    async def observe(self, dep: Obj) -> ScalingObserved | None:
        assert self._replicasets is not None
        if not under_control(dep):
            return None
        uid = str(dep["metadata"].get("uid", ""))
        owned = tuple(
            rs for rs in self._replicasets.list(dep["metadata"].get("namespace")) if owned_by(rs, uid)
        )
        return ScalingObserved(
            deployment=dep,
            replica_sets=owned,
            revision=template_revision(dep.get("spec", {}).get("template", {})),
            rs_revisions={
                rs["metadata"]["name"]: template_revision(rs["spec"].get("template", {})) for rs in owned
            },
        )

    def offload(self, _: ScalingObserved) -> bool:
        """Plain arithmetic, no script: the plan runs on the event loop (runtime/loop.py)."""
        return False

    def plan(self, observed: ScalingObserved) -> Decision[ScalingAction]:
        result = plan(observed)
        return Decision(actions=result.actions, requeue_after=result.requeue_after)

    async def act(self, action: ScalingAction, observed: ScalingObserved, writer: Writer) -> None:
        meta = observed.deployment["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if isinstance(action, CreateReplicaSet):
            log.info(
                "creating replicaset",
                extra={
                    "deployment": f"{ns}/{name}",
                    "replicas": action.body["spec"]["replicas"],
                    **_seen(observed),
                },
            )
            await writer.create(r.REPLICASET, dict(action.body), ns)
        elif isinstance(action, ScaleReplicaSet):
            # What was seen and decided, one line per scale: a batch found with more new pods than its
            # partition allows is explained by these (a chaos run saw one in 200 releases).
            log.info(
                "scaling replicaset",
                extra={
                    "deployment": f"{ns}/{name}",
                    "replicaset": action.name,
                    "to": action.replicas,
                    **_seen(observed),
                },
            )
            body = {
                "metadata": {"annotations": dict(action.annotations)},
                "spec": {"replicas": action.replicas},
            }
            await writer.patch(r.REPLICASET, action.name, body, ns, guard=action.guard or None)
        else:
            body = {"metadata": {"annotations": {keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION: action.value}}}
            await writer.patch(r.DEPLOYMENT, name, body, ns, guard=action.guard or None)
