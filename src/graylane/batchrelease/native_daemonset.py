"""The native-DaemonSet controller: carries out a native DaemonSet's batch by deleting its old pods.

What this module does: watches apps/v1 DaemonSets; for one whose BatchRelease wrote a batch on it (the
`rollouts.kruise.io/daemonset-partition` annotation) it lists the DaemonSet's pods (by its selector,
owned by it; pods are not cached, as elsewhere in this package) and hands them to
`daemonset_pods.plan`, then deletes the pods it names, each by uid (only the incarnation that was seen).
The DaemonSet controller (OnDelete) replaces each deleted pod with one of the new revision. The DaemonSet's
own status changes as pods come and go, and wake this controller; while pods are terminating it looks
again every 2 s.

What it must not do: decide anything (daemonset_pods does), or write the DaemonSet.
"""

from __future__ import annotations

import logging

from graylane.batchrelease.daemonset_pods import DaemonSetPods, DeletePod, in_release, plan
from graylane.batchrelease.planner import controller_uid
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import Informer, object_key
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer

__all__ = ["NativeDaemonSetReconciler", "owned_pods"]

log = logging.getLogger(__name__)


def _key_if_in_release(ds: Obj) -> list[str]:
    key = object_key(ds)
    return [key] if key and in_release(ds) else []


async def owned_pods(client: KubeClient, workload: Obj) -> tuple[Obj, ...]:
    """The pods whose controller is `workload`, listed by its selector's matchLabels."""
    meta = workload.get("metadata") or {}
    match = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
    listed = await client.list(r.POD, meta.get("namespace"), label_selector=selector)
    uid = str(meta.get("uid") or "")
    return tuple(p for p in listed.get("items") or [] if uid and controller_uid(p) == uid)


class NativeDaemonSetReconciler:
    name = "native-daemonset"
    primary = r.DAEMONSET
    status_message = False  # a DaemonSet has no status.message of ours; refusals go to Events

    def __init__(self, workers: int = 3) -> None:
        self.workers = workers
        self._client: KubeClient | None = None

    def setup(self, manager: Manager) -> Informer:
        self._client = manager.client
        return manager.watch(self, r.DAEMONSET, keys=_key_if_in_release)

    async def observe(self, ds: Obj) -> DaemonSetPods | None:
        if not in_release(ds) or self._client is None:
            return None
        return DaemonSetPods(ds, await owned_pods(self._client, ds))

    def plan(self, observed: DaemonSetPods) -> Decision[DeletePod]:
        result = plan(observed)
        return Decision(actions=result.deletes, requeue_after=result.requeue_after)

    async def act(self, action: DeletePod, observed: DaemonSetPods, writer: Writer) -> None:
        meta = observed.daemonset["metadata"]
        log.info(
            "deleting an old pod for the batch",
            extra={"daemonset": f"{meta['namespace']}/{meta['name']}", "pod": action.name},
        )
        await writer.delete(r.POD, action.name, meta["namespace"], uid=action.uid or None)
