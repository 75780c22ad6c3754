"""An event recorder writing core/v1 Events, the kind `kubectl describe` shows and Kruise writes.

Like client-go's correlator, a repeat of the same event (same object, type, reason, message) bumps
`count` and `lastTimestamp` on the existing Event instead of creating another, and once an object
gets more than `aggregate_after` different messages for one reason within ten minutes, further ones
are folded into a single "(combined from similar events)" Event. Both caches are bounded LRUs owned
by the recorder instance.

This module must not raise into the caller: an Event that cannot be written is logged and dropped,
because losing an Event must never fail a reconcile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import enum
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from graylane.kube.client import ApiError, Obj
from graylane.kube.resources import Resource

__all__ = ["CORE_EVENT", "EventKind", "EventRecorder", "EventWriter", "object_reference"]

CORE_EVENT = Resource("", "v1", "events", "Event")
MAX_MESSAGE = 1024  # the API server rejects longer notes on events.k8s.io; stay portable
AGGREGATE_WINDOW = dt.timedelta(minutes=10)
COMBINED_PREFIX = "(combined from similar events): "
log = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventWriter(Protocol):
    """The two KubeClient calls the recorder needs."""

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj: ...

    async def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None) -> Obj: ...


class _KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it (so the map stays small)."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, ...], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class _Lru(collections.OrderedDict[tuple[str, ...], Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def touch(self, key: tuple[str, ...], value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """Records Events about objects; one per process (or per component), passed to controllers."""

    def __init__(
        self,
        client: EventWriter,
        *,
        component: str = "rollout-controller",
        host: str | None = None,
        cache_size: int = 4096,
        aggregate_after: int = 10,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host or socket.gethostname()
        self._now = now
        self._aggregate_after = aggregate_after
        self._seen = _Lru(cache_size)  # event key -> (event name, namespace, count)
        self._similar = _Lru(cache_size)  # key without message -> (first seen, distinct messages)
        # Writes about one object and reason are ordered (count bumps must not race); writes about
        # different objects run concurrently. A single lock serialised every Event of every worker:
        # at 1,000 Rollouts reconciles queued behind it for ~1 s each (BENCHMARKS.md).
        self._locks = _KeyedLocks()

    async def event(self, obj: Obj, kind: EventKind, reason: str, message: str) -> None:
        """Record (or count again) an event about `obj`; never raises except on cancellation."""
        ref = object_reference(obj)
        if "name" not in ref:
            log.warning("event about an object without a name dropped", extra={"reason": reason})
            return
        async with self._locks.hold((ref.get("namespace", ""), ref["name"], reason)):
            try:
                await self._record(ref, kind, reason, message[:MAX_MESSAGE])
            except Exception as err:
                log.warning(
                    "could not write event",
                    extra={"reason": reason, "object": ref["name"], "error": repr(err)},
                )

    async def _record(self, ref: dict[str, str], kind: EventKind, reason: str, message: str) -> None:
        now = self._now()
        base = (ref.get("kind", ""), ref.get("namespace", ""), ref["name"], ref.get("uid", ""), kind, reason)
        combined = self._aggregate(base, message, now)
        if combined:  # all further similar events share one Event showing the latest message
            message = COMBINED_PREFIX + message
        key = (*base, COMBINED_PREFIX if combined else message)
        seen = self._seen.get(key)
        if seen is not None and await self._bump(seen, message, now):
            self._seen.touch(key, (seen[0], seen[1], seen[2] + 1))
            return
        created = await self.client.create(CORE_EVENT, self._new_event(ref, kind, reason, message, now))
        meta = created.get("metadata") or {}
        self._seen.touch(key, (meta.get("name", ""), meta.get("namespace", ""), 1))

    def _aggregate(self, base: tuple[str, ...], message: str, now: dt.datetime) -> bool:
        """True once `base` has had more than `aggregate_after` distinct messages in the window."""
        first: dt.datetime
        messages: set[str]
        first, messages = self._similar.get(base) or (now, set())
        if now - first > AGGREGATE_WINDOW:
            first, messages = now, set()
        if len(messages) <= self._aggregate_after:  # past the threshold the set need not grow
            messages.add(message)
        self._similar.touch(base, (first, messages))
        return len(messages) > self._aggregate_after

    async def _bump(self, seen: tuple[str, str, int], message: str, now: dt.datetime) -> bool:
        name, namespace, count = seen
        body = {"count": count + 1, "lastTimestamp": _timestamp(now), "message": message}
        try:
            await self.client.patch(CORE_EVENT, name, body, namespace)
        except ApiError as err:
            if err.not_found:
                return False  # the Event expired (1 h TTL by default): create a new one
            raise
        return True

    def _new_event(
        self, ref: dict[str, str], kind: EventKind, reason: str, message: str, now: dt.datetime
    ) -> Obj:
        namespace = ref.get("namespace") or "default"  # where client-go puts events on cluster objects
        stamp = _timestamp(now)
        nanos = int(now.timestamp() * 1e9)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref['name']}.{nanos:x}", "namespace": namespace},
            "involvedObject": ref,
            "type": str(kind),
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
