"""An in-memory stand-in for the KubeClient surface the runtime uses, to drive controllers in unit tests.

It is the runtime's own seam, not a model of Kubernetes: objects are plain dicts with resourceVersions
from one counter, LIST answers from the store, WATCH replays every event after the version asked for,
writes behave as the API server's do where graylane depends on it:
- a resourceVersion in a patch (merge, strategic, or a JSON patch replacing it) or a PUT body is a
  precondition (409 Conflict when the object moved on); DELETE preconditions likewise;
- `status` is a subresource: writes to the object keep the status, status writes keep the rest;
  metadata.generation grows when the spec changes;
- DELETE marks an object held by finalizers and removes it once they are gone;
- a pod template is stored with the defaults the API server fills in (so a template read back never
  equals the one sent, as on a real cluster);
- `generateName` gets a random suffix; a taken name is 409 AlreadyExists.
Controls for tests: `hold(plural)` keeps that resource's watch events from every watcher (a lagging
cache) until `release(plural)`; `fail(verb, plural, code, reason)` makes the next such write fail.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import random
import string
from collections.abc import AsyncIterator, Mapping
from typing import Any

from graylane.kube.client import ApiError, Obj
from graylane.kube.resources import Resource

Key = tuple[str, str | None, str]  # plural, namespace, name
TEMPLATE_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Obj, ops: list[dict[str, Any]]) -> Obj:
    """The `add`, `replace`, `remove` and `test` operations on object paths (no list indexes needed)."""
    result = copy.deepcopy(target)
    for op in ops:
        *parents, last = [p for p in op["path"].split("/") if p]
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if op["op"] in ("add", "replace"):
            node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            node.pop(last, None)
        elif op["op"] == "test" and node.get(last) != op["value"]:
            raise ApiError(422, "Invalid", f"test of {op['path']} failed")
    return result


def _default_template(obj: Obj) -> None:
    for container in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        for key, value in TEMPLATE_DEFAULTS.items():
            container.setdefault(key, value)


class FakeApi:
    """The KubeClient calls the informers, the writer and the event recorder make."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.log: dict[str, list[tuple[int, str, Obj]]] = {}  # plural -> (version, type, object)
        self._versions = itertools.count(100)
        self._tick = asyncio.Event()  # set (and replaced) whenever watchers may have something new
        self._held: set[str] = set()
        self._failures: list[tuple[str, str, ApiError]] = []
        self.calls: list[tuple[str, str, str]] = []  # (verb, plural, name)
        self.namespace = "default"

    # -- test controls --------------------------------------------------------------------------

    def hold(self, plural: str) -> None:
        self._held.add(plural)

    def release(self, plural: str) -> None:
        self._held.discard(plural)
        self._wake()

    def fail(self, verb: str, plural: str, code: int, reason: str, message: str = "injected") -> None:
        self._failures.append((verb, plural, ApiError(code, reason, message)))

    def put(self, res: Resource, obj: Obj) -> Obj:
        """Store an object as given (status included), as if it had been there all along."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        stored.setdefault("apiVersion", res.api_version)
        stored.setdefault("kind", res.kind)
        self._store(res, stored, "ADDED")
        return copy.deepcopy(stored)

    def stored(self, res: Resource, name: str, namespace: str | None = "ns") -> Obj | None:
        found = self.objects.get((res.plural, namespace if res.namespaced else None, name))
        return copy.deepcopy(found) if found is not None else None

    def count(self, verb: str, plural: str) -> int:
        return sum(1 for v, p, _ in self.calls if (v, p) == (verb, plural))

    # -- reads ----------------------------------------------------------------------------------

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        items = [
            copy.deepcopy(o)
            for (plural, ns, _), o in self.objects.items()
            if plural == res.plural
            and (namespace is None or ns == namespace)
            and _selected(o, label_selector)
        ]
        version = max((v for v, _, _ in self.log.get(res.plural, [])), default=0)
        return {"items": items, "metadata": {"resourceVersion": str(version)}}

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        found = self.stored(res, name, namespace)
        if found is None:
            raise ApiError(404, "NotFound", f"{res.plural} {name} not found")
        return found

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        return self.stored(res, name, namespace)

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, Obj]]:
        since = int(resource_version or 0)
        log = self.log.setdefault(res.plural, [])
        position = next((i for i, (v, _, _) in enumerate(log) if v > since), len(log))
        while True:
            tick = self._tick
            if position >= len(log) or res.plural in self._held:
                await tick.wait()
                continue
            while position < len(log) and res.plural not in self._held:
                _, kind, obj = log[position]
                position += 1
                if namespace is None or obj["metadata"].get("namespace") == namespace:
                    yield kind, copy.deepcopy(obj)

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        if namespace is not None and res.namespaced:
            meta["namespace"] = namespace
        if not meta.get("name"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = f"{meta.get('generateName', '')}{suffix}"
        self._record("create", res, meta["name"])
        key = self._key(res, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f"{res.plural} {meta['name']} already exists")
        meta["uid"] = f"uid-{meta['name']}-{next(self._versions)}"
        meta["generation"] = 1
        meta["creationTimestamp"] = f"2026-01-01T00:00:{len(self.objects) % 60:02d}Z"
        new.setdefault("apiVersion", res.api_version)
        new.setdefault("kind", res.kind)
        _default_template(new)
        self._store(res, new, "ADDED")
        return copy.deepcopy(new)

    async def patch(
        self,
        res: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        force: bool = False,
    ) -> Obj:
        self._record("patch", res, name, namespace)
        current = self._current(res, namespace, name)
        patched = json_patch(current, body) if patch_type == "json" else merge_patch(current, body)
        return self._update(res, current, patched, subresource)

    async def replace(self, res: Resource, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        self._record("update", res, meta["name"], meta.get("namespace"))
        current = self._current(res, meta.get("namespace"), meta["name"])
        patched = copy.deepcopy(obj)
        patched["metadata"] = {**current["metadata"], **obj["metadata"]}
        return self._update(res, current, patched, subresource)

    async def remove(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj | None:
        self._record("delete", res, name)
        key = self._key(res, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return None
        meta = current["metadata"]
        for field, want in (preconditions or {}).items():
            if str(meta.get(field)) != str(want):
                raise ApiError(409, "Conflict", f"precondition failed: {field}")
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                marked = copy.deepcopy(current)
                marked["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
                self._store(res, marked, "MODIFIED")
            return copy.deepcopy(self.objects[key])
        self._drop(res, key)
        return {"kind": "Status", "status": "Success"}

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *, propagation: str | None = None
    ) -> bool:
        return await self.remove(res, name, namespace) is not None

    async def close(self) -> None:
        return None

    # -- plumbing -------------------------------------------------------------------------------

    def _key(self, res: Resource, namespace: str | None, name: str) -> Key:
        return (res.plural, namespace if res.namespaced else None, name)

    def _record(self, verb: str, res: Resource, name: str, namespace: str | None = None) -> None:
        self.calls.append((verb, res.plural, name))
        for i, (want_verb, plural, err) in enumerate(self._failures):
            if (want_verb, plural) == (verb, res.plural):
                del self._failures[i]
                if err.conflict:
                    self._touch(res, namespace, name)  # a conflict means someone else wrote first
                raise err

    def _touch(self, res: Resource, namespace: str | None, name: str) -> None:
        found = self.objects.get(self._key(res, namespace, name))
        if found is not None:
            self._store(res, copy.deepcopy(found), "MODIFIED")

    def _current(self, res: Resource, namespace: str | None, name: str) -> Obj:
        found = self.objects.get(self._key(res, namespace, name))
        if found is None:
            raise ApiError(404, "NotFound", f"{res.plural} {name} not found")
        return copy.deepcopy(found)

    def _update(self, res: Resource, current: Obj, patched: Obj, subresource: str | None) -> Obj:
        meta = current["metadata"]
        asked = str((patched.get("metadata") or {}).get("resourceVersion") or "")
        if asked and asked != meta["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified; please apply your changes")
        if subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = patched.get("status")
        else:
            new = patched
            new["status"] = current.get("status")
            new["metadata"] = {
                **patched["metadata"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            }
            if json.dumps(new.get("spec"), sort_keys=True) != json.dumps(current.get("spec"), sort_keys=True):
                new["metadata"]["generation"] = int(meta.get("generation") or 1) + 1
                _default_template(new)
        if new.get("status") is None:
            new.pop("status", None)
        if new == current:
            return copy.deepcopy(current)  # the API server keeps the version of a write that changed nothing
        key = self._key(res, meta.get("namespace"), meta["name"])
        if meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._drop(res, key)
            return new
        self._store(res, new, "MODIFIED")
        return copy.deepcopy(self.objects[key])

    def _store(self, res: Resource, obj: Obj, kind: str) -> None:
        version = next(self._versions)
        obj["metadata"]["resourceVersion"] = str(version)
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.objects[key] = obj
        self._emit(res, version, kind, obj)

    def _drop(self, res: Resource, key: Key) -> None:
        gone = self.objects.pop(key)
        version = next(self._versions)
        gone["metadata"]["resourceVersion"] = str(version)
        self._emit(res, version, "DELETED", gone)

    def _emit(self, res: Resource, version: int, kind: str, obj: Obj) -> None:
        self.log.setdefault(res.plural, []).append((version, kind, copy.deepcopy(obj)))
        self._wake()

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()


def _selected(obj: Obj, selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, _, v in (part.partition("=") for part in selector.split(",")))
