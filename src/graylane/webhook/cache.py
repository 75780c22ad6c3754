"""Webhook listers that read the manager's informer caches, and ask the API server until those synced.

Each admission used to list the namespace's Rollouts (and ReplicaSets) from the API server: 28 % of the
controller's CPU at N = 1000, with the Deployment write held meanwhile (BENCHMARKS.md cause 3). Kruise's
webhook reads the manager's cache too (controller-runtime's cached client), so what it sees may be a
watch event behind the API server, as here.

A webhook call can arrive before the caches are filled (the webhook server starts before the informers
have listed, and standbys serve webhooks as well): until `has_synced` the API lister answers. Objects in
an informer's store are shared with the controllers, so every object handed out is a copy the caller
may change freely. This module must not decide anything about the objects it lists.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from graylane.kube.client import KubeClient
from graylane.webhook.server import KubeRolloutLister, RolloutLister
from graylane.webhook.workload import KubeReplicaSetLister, ReplicaSetLister

__all__ = [
    "OWNER_INDEX",
    "CachedReplicaSetLister",
    "CachedRolloutLister",
    "InformerCache",
    "cached_listers",
    "controller_uids",
    "json_copy",
]

Obj = dict[str, Any]
OWNER_INDEX: Final = "graylane.io/controller-uid"


class InformerCache(Protocol):
    """What the listers read from a `graylane.kube.informer.Informer`."""

    @property
    def has_synced(self) -> asyncio.Event: ...

    def list(self, namespace: str | None = None) -> builtins.list[Obj]: ...

    def add_index(self, name: str, fn: Callable[[Obj], Iterable[str]]) -> None: ...

    def by_index(self, name: str, value: str) -> builtins.list[Obj]: ...


def controller_uids(obj: Obj) -> Iterable[str]:
    """The uid of the object's controller owner (the index the Deployment webhook looks ReplicaSets up in)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [
        str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("controller") and ref.get("uid")
    ]


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data; several times faster than copy.deepcopy, which handles any object."""
    if type(value) is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if type(value) is list:
        return [json_copy(item) for item in value]
    return value  # str, int, float, bool, None: immutable


class CachedRolloutLister:
    """A `RolloutLister` over the Rollout informer (v1beta1, like the API lister), by namespace."""

    def __init__(self, cache: InformerCache, fallback: RolloutLister) -> None:
        self._cache = cache
        self._fallback = fallback

    async def list_rollouts(self, namespace: str) -> list[Obj]:
        if not self._cache.has_synced.is_set():
            return await self._fallback.list_rollouts(namespace)
        return [json_copy(obj) for obj in self._cache.list(namespace)]


class CachedReplicaSetLister:
    """A `ReplicaSetLister` over the ReplicaSet informer, indexed by controller owner."""

    def __init__(self, cache: InformerCache, fallback: ReplicaSetLister) -> None:
        self._cache = cache
        self._fallback = fallback
        with contextlib.suppress(ValueError):  # a lister built earlier over this informer added it
            cache.add_index(OWNER_INDEX, controller_uids)

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> list[Obj]:
        if not self._cache.has_synced.is_set():
            return await self._fallback.list_replicasets(namespace, owner_uid)
        if owner_uid is None:
            found = self._cache.list(namespace)
        else:
            found = [rs for rs in self._cache.by_index(OWNER_INDEX, owner_uid) if _namespace(rs) == namespace]
        return [json_copy(obj) for obj in found]


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def cached_listers(
    rollouts: InformerCache, replica_sets: InformerCache, kube: KubeClient
) -> tuple[CachedRolloutLister, CachedReplicaSetLister]:
    """The webhook's two listers over these informers, falling back to `kube` until they synced."""
    return (
        CachedRolloutLister(rollouts, KubeRolloutLister(kube)),
        CachedReplicaSetLister(replica_sets, KubeReplicaSetLister(kube)),
    )
