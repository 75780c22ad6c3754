"""The informers of the workload kinds other than Deployments, and OpenKruise's kinds appearing later.

What this module does: StatefulSets and DaemonSets are always served; CloneSet, Advanced StatefulSet and
Advanced DaemonSet only where OpenKruise's CRDs are installed. `discover` finds which are served at
start-up (a GET of each CRD: Established, and graylane's version served); `WorkloadInformers.setup`
registers their informers on the manager and watches CustomResourceDefinitions (the shared, slimmed CRD
informer), so a kind whose CRD is established later gets its informer at once, without a restart (users
who install OpenKruise after graylane need nothing more). Controllers `subscribe` to be told of every
kind watched, now and later, and add their own event → key mappings on its informer.

What it must not do: decide anything, or write to the API server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from graylane.api.workloads import DEPLOYMENT, KINDS, WorkloadKind
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import Informer
from graylane.kube.resources import Resource
from graylane.observe.kinds import established, slim_crd
from graylane.observe.workload_resources import resource_for, resource_of
from graylane.runtime.manager import Manager

__all__ = [
    "PARTITION_KINDS",
    "KindWatched",
    "WorkloadInformers",
    "crd_name",
    "discover",
    "resource_for",
    "resource_of",
    "served_version",
]

log = logging.getLogger(__name__)
PARTITION_KINDS = tuple(k for k in KINDS if k is not DEPLOYMENT)
KindWatched = Callable[[WorkloadKind, Informer], object]  # what it returns is ignored


def crd_name(kind: WorkloadKind) -> str:
    return f"{kind.plural}.{kind.group}"


def served_version(crd: Obj | None, kind: WorkloadKind) -> str | None:
    """The first of the kind's versions (preferred first) that an established CRD serves."""
    if crd is None or not established(crd):
        return None
    served = {v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")}
    return next((v for v in kind.versions if v in served), None)


async def discover(client: KubeClient) -> dict[WorkloadKind, str]:
    """The kinds served now and their versions: the native ones always, OpenKruise's where their CRD is
    established."""
    served = {}
    for kind in PARTITION_KINDS:
        version = kind.version if not kind.openkruise else None
        if kind.openkruise:
            version = served_version(await client.get_or_none(r.CRD, crd_name(kind)), kind)
        if version is None:
            log.info("%s is not served: it is watched once its CRD is established", kind.title)
        else:
            served[kind] = version
    return served


class WorkloadInformers:
    """The informers of the served partition-style kinds; shared by the controllers and the webhook."""

    def __init__(self, served: Mapping[WorkloadKind, str] | None = None) -> None:
        native = {kind: kind.version for kind in PARTITION_KINDS if not kind.openkruise}
        self._wanted = dict(native if served is None else served)
        self._informers: dict[WorkloadKind, Informer] = {}
        self._resources: dict[WorkloadKind, Resource] = {}
        self._subscribers: list[KindWatched] = []
        self._manager: Manager | None = None

    def setup(self, manager: Manager) -> None:
        """Register the informers and the CRD watch (once, whoever calls first)."""
        if self._manager is not None:
            return
        self._manager = manager
        for kind, version in self._wanted.items():
            self._watch(kind, version)
        crds = manager.informer(r.CRD, transform=slim_crd)
        crds.on_event(lambda _, __, crd: self._consider(crd))

    def subscribe(self, fn: KindWatched) -> None:
        """`fn` is called for every kind watched now, and for each one watched later."""
        self._subscribers.append(fn)
        for kind, informer in list(self._informers.items()):
            fn(kind, informer)

    def informer(self, kind: WorkloadKind) -> Informer | None:
        return self._informers.get(kind)

    def resource(self, kind: WorkloadKind) -> Resource | None:
        """The resource (in the version served here) the kind is read in; None while it is not served."""
        return self._resources.get(kind)

    def get(self, kind: WorkloadKind, namespace: str | None, name: str) -> Obj | None:
        informer = self._informers.get(kind)
        return informer.get(namespace, name) if informer is not None else None

    @property
    def watched(self) -> tuple[WorkloadKind, ...]:
        return tuple(self._informers)

    def _watch(self, kind: WorkloadKind, version: str) -> Informer:
        assert self._manager is not None
        resource = resource_of(kind, version)
        self._resources[kind] = resource
        self._informers[kind] = self._manager.informer(resource)
        return self._informers[kind]

    def _consider(self, crd: Obj | None) -> None:
        """A CRD was added or changed: watch an OpenKruise kind it serves that is not watched yet."""
        if crd is None or self._manager is None:
            return
        name = (crd.get("metadata") or {}).get("name")
        for kind in PARTITION_KINDS:
            if not kind.openkruise or kind in self._informers or name != crd_name(kind):
                continue
            version = served_version(crd, kind)
            if version is not None:
                informer = self._watch(kind, version)
                log.info("%s is served now: watching it", kind.title)
                for fn in self._subscribers:
                    fn(kind, informer)
