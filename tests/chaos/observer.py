"""One view of every chaos lane every 0.5 s: five cluster-wide LISTs, shared by the sampler and the lanes.

Every lane reads its Rollout, Deployments, BatchRelease and pods from the latest snapshot instead of
polling on its own, so the API load does not grow with the number of lanes. Pods are listed first, then
ReplicaSets, then the Deployments, BatchReleases and Rollouts (those three at once), which the sampler
relies on: see checks.over_ready.
A LIST that fails (the API server restarting) skips that snapshot, and so does one whose LISTs were
served out of that order (see `consistent`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import httpx2

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from tests.chaos.checks import CANARY_LABEL

__all__ = ["Observer", "Snapshot"]

Obj = dict[str, Any]
INTERVAL = 0.5


@dataclasses.dataclass(frozen=True)
class Snapshot:
    serial: int
    taken: float  # time.monotonic() when the first LIST was sent
    pods: Mapping[str, list[Obj]]
    deployments: Mapping[str, list[Obj]]
    batch_releases: Mapping[str, list[Obj]]
    rollouts: Mapping[str, list[Obj]]
    replica_sets: Mapping[str, list[Obj]] = dataclasses.field(default_factory=dict)

    def rollout(self, namespace: str, name: str) -> Obj | None:
        return _named(self.rollouts.get(namespace, []), name)

    def deployment(self, namespace: str, name: str) -> Obj | None:
        return _named(self.deployments.get(namespace, []), name)

    def batch_release(self, namespace: str, name: str) -> Obj | None:
        return _named(self.batch_releases.get(namespace, []), name)

    def canaries(self, namespace: str) -> list[Obj]:
        return [
            d
            for d in self.deployments.get(namespace, [])
            if CANARY_LABEL in (d["metadata"].get("labels") or {})
        ]


class Inconsistent(Exception):
    """A snapshot with a LIST served from a point older than a LIST sent before it."""


def consistent(first: Obj, later: Iterable[Obj]) -> bool:
    """Whether every `later` LIST reflects at least the state `first` did.

    The sampler's over-ready check needs the Rollout and BatchRelease read no earlier than the pods. An
    API server that is starting (seen while it was not ready yet, 11 s into a 28 s restart) answered the
    custom resources' LISTs from a point older than the pods LIST, so a Rollout read as step 1 beside the
    pods of a later step. A LIST's resourceVersion is the store's revision it was served at (etcd's, a
    number that only grows), so the snapshot is kept only when no later LIST is older than the first.
    """
    base = _revision(first)
    return base is None or all((_revision(other) or base) >= base for other in later)


def _revision(listed: Obj) -> int | None:
    raw = str((listed.get("metadata") or {}).get("resourceVersion") or "")
    return int(raw) if raw.isdigit() else None


def _named(objs: list[Obj], name: str) -> Obj | None:
    return next((o for o in objs if o["metadata"]["name"] == name), None)


class Observer:
    def __init__(
        self,
        kube: KubeClient,
        namespaces: Collection[str],
        on_snapshot: Callable[[Snapshot], None],
        interval: float = INTERVAL,
    ) -> None:
        self.kube = kube
        self.namespaces = frozenset(namespaces)
        self.on_snapshot = on_snapshot
        self.interval = interval
        self.latest: Snapshot | None = None
        self.failed = 0
        self.inconsistent = 0  # snapshots dropped: a later LIST was older than an earlier one
        self._changed = asyncio.Condition()

    async def run(self, stop: asyncio.Event) -> None:
        serial = 0
        while not stop.is_set():
            began = time.monotonic()
            try:
                snap = await self._take(serial + 1, began)
            except (ApiError, httpx2.TransportError):
                self.failed += 1
            except Inconsistent:
                self.inconsistent += 1
            else:
                serial = snap.serial
                self.on_snapshot(snap)
                async with self._changed:
                    self.latest = snap
                    self._changed.notify_all()
            pause = self.interval - (time.monotonic() - began)
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

    async def next(self, after: Snapshot | None, *, timeout: float) -> Snapshot:
        """The first snapshot newer than `after` (any, when None); TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: self.latest is not None and (after is None or self.latest.serial > after.serial)
            )
            assert self.latest is not None
            return self.latest

    async def _take(self, serial: int, began: float) -> Snapshot:
        # Pods strictly first, ReplicaSets second (see the module doc); the other three together, to
        # keep a cycle short.
        pods = await self.kube.list(r.POD)
        replica_sets = await self.kube.list(r.REPLICASET)
        rest = await asyncio.gather(
            *(self.kube.list(res) for res in (r.DEPLOYMENT, r.BATCHRELEASE, r.ROLLOUT))
        )
        if not (consistent(pods, [replica_sets, *rest]) and consistent(replica_sets, rest)):
            raise Inconsistent
        deployments, batch_releases, rollouts = (self._by_namespace(listed["items"]) for listed in rest)
        return Snapshot(
            serial,
            began,
            pods=self._by_namespace(pods["items"]),
            deployments=deployments,
            batch_releases=batch_releases,
            rollouts=rollouts,
            replica_sets=self._by_namespace(replica_sets["items"]),
        )

    def _by_namespace(self, items: list[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = collections.defaultdict(list)
        for item in items:
            ns = item["metadata"].get("namespace", "")
            if ns in self.namespaces:
                out[ns].append(item)
        return dict(out)
