"""Informers: a local, indexed cache of one resource kept current by LIST + WATCH, with event handlers.

`Store` and `diff` are pure (no I/O, no clock) so the tricky parts, synthesising events from a re-list
and keeping secondary indexes right, are unit-tested without a cluster. `Informer` adds the I/O:
paginated LIST, WATCH from the list's resourceVersion with bookmarks, re-watch from the last seen
resourceVersion after a dropped stream, and a full re-LIST when the server says 410 Gone or a caller asks
for one (`request_relist`, e.g. when a write the runtime expects never shows up); no periodic resync:
at 10,000 Rollouts a resync costs more than it finds.

Stored objects are shared with handlers and readers, never copied: callers must not mutate them.
This module must not decide what an event means; handlers (usually "enqueue a key") do.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import enum
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

from graylane.kube.client import ApiError, Obj
from graylane.kube.resources import Resource
from graylane.kube.retry import Backoff

__all__ = [
    "NAMESPACE_INDEX",
    "Change",
    "EventType",
    "Handler",
    "IndexFunc",
    "Informer",
    "ListWatcher",
    "RelistHandler",
    "Store",
    "diff",
    "object_key",
    "split_key",
    "strip_noise",
]

log = logging.getLogger(__name__)

NAMESPACE_INDEX = "namespace"  # built in: `list(namespace)` answers from it
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


Handler = Callable[[EventType, Obj | None, Obj | None], None]
# Called once a LIST has replaced the store, with the number that list got when it started.
RelistHandler = Callable[[int], None]
IndexFunc = Callable[[Obj], Iterable[str]]


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    kind: EventType
    old: Obj | None
    new: Obj | None


def object_key(obj: Obj) -> str | None:
    """`namespace/name` (or `name` when cluster-scoped); None for an object without metadata.name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, sep, name = key.rpartition("/")
    return (namespace if sep else None), name


def strip_noise(obj: Obj) -> Obj:
    """The default transform: drop managedFields and kubectl's last-applied copy, often half an object.

    It works in place: the decoded object is the cached one (its strings already shared by
    `kube/jsondecode.py`), so no second copy of every listed object is made.
    """
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return obj


def _version(obj: Obj | None) -> object:
    return (obj or {}).get("metadata", {}).get("resourceVersion")


def diff(current: Mapping[str, Obj], listed: Mapping[str, Obj]) -> list[Change]:
    """The events that turn `current` into `listed`: adds, changes (by resourceVersion) and deletes."""
    changes = [
        Change(EventType.ADDED, None, obj)
        if key not in current
        else Change(EventType.MODIFIED, current[key], obj)
        for key, obj in listed.items()
        if key not in current or _version(current[key]) != _version(obj)
    ]
    changes += [Change(EventType.DELETED, obj, None) for key, obj in current.items() if key not in listed]
    return changes


def _namespace_of(obj: Obj) -> list[str]:
    return [obj.get("metadata", {}).get("namespace") or ""]


class Store:
    """Objects by key plus named secondary indexes (index name -> value -> keys); no I/O."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        # value -> its one key, or the set of its keys once there are two: most values (an owner's uid,
        # a namespace of one app) name one object, and an empty set alone costs 216 bytes (a third of
        # a cached ReplicaSet's index cost; 2 MB at 10,000 Rollouts at rest, issue 14).
        self._indices: dict[str, dict[str, str | set[str]]] = {}
        self.add_index(NAMESPACE_INDEX, _namespace_of)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def items(self) -> Mapping[str, Obj]:
        return self._items

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        if namespace is None:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj, add=True)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        held = self._indices[name].get(value)
        keys = () if held is None else (held,) if isinstance(held, str) else sorted(held)
        return [self._items[key] for key in keys]

    def index_values(self, name: str) -> builtins.list[str]:
        return sorted(self._indices[name])

    def apply(self, change: Change) -> None:
        obj = change.new if change.new is not None else change.old
        key = object_key(obj or {})
        if key is None:
            return
        if change.old is not None:
            self._reindex(key, self._items.get(key), add=False)
        if change.new is None:
            self._items.pop(key, None)
            return
        self._items[key] = change.new
        self._reindex(key, change.new, add=True)

    def upsert(self, obj: Obj) -> Change:
        key = object_key(obj)
        old = self._items.get(key) if key else None
        change = Change(EventType.ADDED if old is None else EventType.MODIFIED, old, obj)
        self.apply(change)
        return change

    def remove(self, obj: Obj) -> Change:
        key = object_key(obj)
        change = Change(EventType.DELETED, (self._items.get(key) if key else None) or obj, None)
        self.apply(change)
        return change

    def replace(self, listed: Mapping[str, Obj]) -> builtins.list[Change]:
        """Make the store equal to a fresh list; unchanged objects keep their stored dict."""
        changes = diff(self._items, listed)
        for change in changes:
            self.apply(change)
        return changes

    def _reindex(self, key: str, obj: Obj | None, *, add: bool) -> None:
        if obj is None:
            return
        for name in self._indexers:
            self._index_one(name, key, obj, add=add)

    def _index_one(self, name: str, key: str, obj: Obj, *, add: bool) -> None:
        try:
            values = list(self._indexers[name](obj))
        except Exception:  # a buggy index function must not take the informer down
            log.exception("index function failed", extra={"index": name, "key": key})
            return
        index = self._indices[name]
        for value in values:
            if add:
                _index_add(index, value, key)
            else:
                _index_remove(index, value, key)


def _index_add(index: dict[str, str | set[str]], value: str, key: str) -> None:
    held = index.get(value)
    if held is None:
        index[value] = key
    elif isinstance(held, str):
        if held != key:
            index[value] = {held, key}
    else:
        held.add(key)


def _index_remove(index: dict[str, str | set[str]], value: str, key: str) -> None:
    held = index.get(value)
    if held is None:
        return
    if isinstance(held, str):
        if held == key:
            del index[value]  # keep memory bounded by live values
        return
    held.discard(key)
    if len(held) == 1:
        index[value] = next(iter(held))
    elif not held:
        del index[value]


class ListWatcher(Protocol):
    """The two KubeClient calls an informer needs (a fake implements them in tests)."""

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj: ...

    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, Obj]]: ...


class Informer:
    """Keeps a `Store` of one resource (optionally one namespace / label selector) current."""

    def __init__(
        self,
        client: ListWatcher,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        transform: Callable[[Obj], Obj] = strip_noise,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self._transform = transform
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._backoff = backoff or Backoff(initial=0.8, factor=2.0, cap=30.0, jitter=1.0)
        self._api_version = resource.api_version  # one shared string, not one per object
        self._store = Store()
        self._handlers: builtins.list[Handler] = []
        self._relist_handlers: builtins.list[RelistHandler] = []
        self._version: str | None = None  # where the next watch starts; None = re-list first
        self._relist_requested = asyncio.Event()
        self.has_synced = asyncio.Event()
        self.relists = 0
        # Lists are numbered as they start: a list numbered above N began after moment N, so its result
        # includes every write that had completed by then (a LIST without resourceVersion is consistent).
        self.lists_started = 0

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"Informer({self.resource.plural}, ns={self.namespace!r}, selector={self.label_selector!r})"

    # -- reading the cache --------------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._store.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        return self._store.list(namespace)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self._store.add_index(name, fn)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return self._store.by_index(name, value)

    def version_of(self, namespace: str | None, name: str) -> str | None:
        """The cached object's resourceVersion, or None when it is not cached."""
        found = self.get(namespace, name)
        return None if found is None else str((found.get("metadata") or {}).get("resourceVersion", ""))

    def on_relist(self, fn: RelistHandler) -> None:
        self._relist_handlers.append(fn)

    def request_relist(self) -> None:
        """Drop the watch and LIST again soon (the cache is suspected to be behind the server)."""
        self._relist_requested.set()

    def on_event(self, fn: Handler) -> None:
        """Register a handler; objects already cached are replayed to it as ADDED (as client-go does)."""
        self._handlers.append(fn)
        for obj in self._store.list():
            self._call(fn, Change(EventType.ADDED, None, obj))

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """LIST then WATCH until cancelled; errors are logged and retried with back-off, never raised."""
        while True:
            try:
                if self._version is None:
                    self._version = await self._relist()
                await self._watch_unless_relist()
                self._backoff.reset()
            except ApiError as err:
                if err.gone:  # our version was compacted away: only a re-list can tell what we missed
                    log.info("watch expired, re-listing", extra={"informer": repr(self)})
                    self._version = None
                    continue
                self._version = None  # any other API error may mean our view is wrong
                await self._pause(err)
            except Exception as err:  # a dropped stream: re-watch from the last version, as client-go does
                await self._pause(err)

    async def _pause(self, err: BaseException) -> None:
        """Wait before the next LIST/WATCH; a re-list asked meanwhile (the runtime suspects the cache is
        behind, at most once per informer per 30 s) ends the wait: the caller is waiting on this cache."""
        delay = self._backoff.next()
        log.warning(
            "list/watch failed, retrying",
            extra={"informer": repr(self), "error": repr(err), "retry_in": round(delay, 3)},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._relist_requested.wait(), delay)

    async def _relist(self) -> str:
        """LIST everything, diff it against the store, emit the differences; returns the list's version."""
        self._relist_requested.clear()
        self.lists_started += 1
        number = self.lists_started
        listed, version = await self._list_all()
        changes = self._store.replace(listed)
        self.relists += 1
        self._dispatch(changes)
        for fn in self._relist_handlers:
            fn(number)
        self.has_synced.set()
        self._backoff.reset()  # the server answered a whole LIST
        log.debug("listed", extra={"informer": repr(self), "objects": len(listed), "changes": len(changes)})
        return version

    async def _list_all(self) -> tuple[dict[str, Obj], str]:
        listed: dict[str, Obj] = {}
        token: str | None = None
        while True:
            page = await self.client.list(
                self.resource,
                self.namespace,
                label_selector=self.label_selector,
                limit=self._page_size,
                continue_token=token,
            )
            for raw in page.get("items") or []:
                self._accept(raw, listed)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                return listed, str(meta.get("resourceVersion") or "")

    def _accept(self, raw: Any, into: dict[str, Obj]) -> None:
        obj = self._prepare(raw)
        if obj is not None:
            into[object_key(obj) or ""] = obj

    def _prepare(self, raw: Any) -> Obj | None:
        key = object_key(raw) if isinstance(raw, dict) else None
        if key is None:
            log.warning("skipping malformed object", extra={"informer": repr(self), "object": str(raw)[:200]})
            return None
        obj = self._transform(raw)
        obj.setdefault("apiVersion", self._api_version)  # list items come without them
        obj.setdefault("kind", self.resource.kind)
        return obj

    async def _watch_unless_relist(self) -> None:
        """Watch until the stream ends, or until a re-list is requested (then the next pass lists)."""
        watch = asyncio.ensure_future(self._watch())
        relist = asyncio.ensure_future(self._relist_requested.wait())
        try:
            done, _ = await asyncio.wait({watch, relist}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, relist):
                task.cancel()
            await asyncio.gather(watch, relist, return_exceptions=True)
        if watch in done:
            watch.result()  # the stream ended first: its error, if any, goes to run()'s handling
            return
        log.info("re-list requested", extra={"informer": repr(self)})
        self._version = None

    async def _watch(self) -> None:
        """Apply watch events until the server ends the stream, remembering the last version seen."""
        stream = self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self._version,
            label_selector=self.label_selector,
            timeout_seconds=self._watch_timeout,
        )
        async for kind, raw in stream:
            # A stream that delivers is a healthy connection: the next failure starts the back-off
            # afresh. Otherwise every cut of a long-lived watch doubled it, up to 30 s of a stale cache
            # (seen in the chaos suite: a ReplicaSet informer 25 s behind after a cut).
            self._backoff.reset()
            version = (raw.get("metadata") or {}).get("resourceVersion")
            if kind != "BOOKMARK":
                self._on_watch_event(kind, raw)
            if version:
                self._version = str(version)

    def _on_watch_event(self, kind: str, raw: Obj) -> None:
        obj = self._prepare(raw)
        if obj is None:
            return
        if kind == EventType.DELETED:
            change = self._store.remove(obj)
        elif kind in (EventType.ADDED, EventType.MODIFIED):
            change = self._store.upsert(obj)
        else:
            log.warning("unknown watch event type", extra={"informer": repr(self), "type": kind})
            return
        self._dispatch([change])

    def _dispatch(self, changes: Iterable[Change]) -> None:
        for change in changes:
            for fn in self._handlers:
                self._call(fn, change)

    def _call(self, fn: Handler, change: Change) -> None:
        try:
            fn(change.kind, change.old, change.new)
        except Exception:  # one bad handler must not starve the others or stop the watch
            log.exception("event handler failed", extra={"informer": repr(self)})
