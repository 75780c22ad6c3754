"""The Advanced Deployment controller: drives partition-style Deployments the native controller holds still.

What this module does: watches Deployments under rollout control (paused, `Recreate`, control-info,
controlled-by label) and the ReplicaSets they own, computes the revisions of their pod templates
(the new ReplicaSet is named `<deployment>-<revision>` and labelled `pod-template-hash=<revision>`, with
the Deployment controller's own hash, api/podtemplatehash.py, so the native controller's name and label
are the same when it takes the Deployment back), and carries out
`advanced_deployment_planner.plan`: create the new ReplicaSet, scale ReplicaSets, write the extra status.

What it must not do: decide anything (the planner does), or write Deployment status (the native
controller keeps writing it for paused Deployments, from the same ReplicaSets).
"""

from __future__ import annotations

import logging

from graylane.api import keys
from graylane.batchrelease.advanced_deployment_planner import (
    Action,
    CreateReplicaSet,
    ObservedDeployment,
    ScaleReplicaSet,
    plan,
    under_control,
)
from graylane.controller.manager import Manager
from graylane.controller.workloads import owned_by, template_revision
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.informer import Informer, object_key, split_key

__all__ = ["AdvancedDeploymentController"]

log = logging.getLogger(__name__)
CONFLICT_REQUEUE = 0.2


def _own_key_if_controlled(dep: Obj) -> list[str]:
    key = object_key(dep)
    return [key] if key and under_control(dep) else []


class AdvancedDeploymentController:
    name = "advanced-deployment"

    def __init__(self, workers: int = 3) -> None:
        self.workers = workers
        self._client: KubeClient | None = None
        self._deployments: Informer | None = None
        self._replicasets: Informer | None = None

    def setup(self, manager: Manager) -> None:
        self._client = manager.client
        self._deployments = manager.watch(self, r.DEPLOYMENT, keys=_own_key_if_controlled)
        self._replicasets = manager.watch(self, r.REPLICASET, keys=self._owner_key)

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

    async def reconcile(self, key: str) -> float | None:
        assert self._deployments is not None
        assert self._replicasets is not None
        namespace, name = split_key(key)
        dep = self._deployments.get(namespace, name)
        if dep is None or not under_control(dep):
            return None
        uid = str(dep["metadata"].get("uid", ""))
        owned = tuple(rs for rs in self._replicasets.list(namespace) if owned_by(rs, uid))
        observed = ObservedDeployment(
            deployment=dep,
            replica_sets=owned,
            revision=template_revision(dep.get("spec", {}).get("template", {})),
            rs_revisions={
                rs["metadata"]["name"]: template_revision(rs["spec"].get("template", {})) for rs in owned
            },
        )
        result = plan(observed)
        try:
            for action in result.actions:
                await self._apply(dep, action)
        except ApiError as err:
            if err.conflict or err.not_found or err.already_exists:
                return CONFLICT_REQUEUE  # the caches were behind: plan again from what is there now
            raise
        return result.requeue_after

    async def _apply(self, dep: Obj, action: Action) -> None:
        assert self._client is not None
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        if isinstance(action, CreateReplicaSet):
            log.info("creating replicaset", extra={"deployment": f"{ns}/{name}"})
            await self._client.create(r.REPLICASET, dict(action.body), ns)
        elif isinstance(action, ScaleReplicaSet):
            body = {
                "metadata": {"annotations": dict(action.annotations)},
                "spec": {"replicas": action.replicas},
            }
            await self._client.patch(r.REPLICASET, action.name, body, ns)
        else:
            body = {"metadata": {"annotations": {keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION: action.value}}}
            await self._client.patch(r.DEPLOYMENT, name, body, ns)
