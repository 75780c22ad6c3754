"""The write primitives every controller uses: guarded patch/replace, create, delete, finalizers, status.

One `Writer` serves one reconcile of one key. Each write:
- is guarded by the resourceVersion the decision was made on when the caller passes `guard` (merge and
  strategic patches carry it in `metadata.resourceVersion`, JSON patches replace that field, replaces and
  status writes carry it in the body; the API server answers 409 when the object moved on). Later writes
  to the same object in the same pass build on the version our own earlier write returned.
- registers an expectation (expectations.py) of what the cache must show afterwards, so the key's next
  decision waits for its own writes;
- turns the answers the loop handles into `Stale` (409: the guard failed; 404: the object is gone) or
  `Refused` (admission denial, invalid, forbidden), after registering what the fresh state will look like.
A create whose name is taken is not an error: the caller's cache was behind (every create graylane makes
has a deterministic name, so a repeat is idempotent by construction); the next decision waits to see it.

What it must not do: decide anything, retry, or swallow errors other than "already exists/gone".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from graylane.kube.client import ApiError, KubeClient, Obj, PatchType
from graylane.kube.informer import Informer
from graylane.kube.resources import Resource
from graylane.runtime.errors import Refused, Stale, is_refusal
from graylane.runtime.expectations import Expectations, Want

__all__ = ["InformerLookup", "Writer"]

log = logging.getLogger(__name__)
T = TypeVar("T")
InformerLookup = Callable[[Resource, str | None], Iterable[Informer]]


def _version(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _with_guard(body: Any, guard: str, patch_type: PatchType) -> Any:
    """The patch with `metadata.resourceVersion = guard`, which the API server checks before applying."""
    if patch_type == "json":
        return [*body, {"op": "replace", "path": "/metadata/resourceVersion", "value": guard}]
    guarded = dict(body)
    guarded["metadata"] = {**(body.get("metadata") or {}), "resourceVersion": guard}
    return guarded


def _guard_in(body: Any) -> str:
    """A guard the caller wrote into a merge patch itself (providers guard HTTPRoutes this way)."""
    meta = body.get("metadata") if isinstance(body, Mapping) else None
    return str((meta or {}).get("resourceVersion") or "")


class Writer:
    """Writes for `owner` (the reconciled key), with expectations registered in `expectations`."""

    def __init__(
        self, client: KubeClient, expectations: Expectations, informers: InformerLookup, owner: Hashable
    ) -> None:
        self.client = client
        self._expectations = expectations
        self._informers = informers
        self._owner = owner
        self._versions: dict[tuple[str, str, str | None, str], str] = {}
        self.writes = 0

    # -- versions -------------------------------------------------------------------------------

    def version(self, res: Resource, namespace: str | None, name: str, observed: str) -> str:
        """The version to guard the next write on: ours if this pass wrote the object, else `observed`."""
        return self._versions.get(self._id(res, namespace, name), observed)

    def _id(self, res: Resource, namespace: str | None, name: str) -> tuple[str, str, str | None, str]:
        return (res.group, res.plural, namespace if res.namespaced else None, name)

    # -- the writes -----------------------------------------------------------------------------

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj | None:
        """Create; None when the name is taken (then the next decision waits to see that object)."""
        meta = obj.get("metadata") or {}
        ns = namespace if namespace is not None else meta.get("namespace")
        name = str(meta.get("name") or meta.get("generateName") or "")
        try:
            created, seen = await self._call("create", res, name, self.client.create(res, obj, ns), ns)
        except _Taken:
            self._expect(res, ns, name, Want.PRESENT)
            return None
        # A generated name was not known while the create was in flight, so the versions seen then were
        # not recorded; but no older incarnation can hold a fresh random name: any version of it will do.
        generated = not meta.get("name")
        self._record(res, ns, str(created["metadata"]["name"]), created, seen, present=generated)
        return created

    async def patch(
        self,
        res: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        guard: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """Patch; with `guard`, only if the object is still at that version (else `Stale`)."""
        if guard:
            guard = self.version(res, namespace, name, guard)
            body = _with_guard(body, guard, patch_type)
        call = self.client.patch(res, name, body, namespace, patch_type=patch_type, subresource=subresource)
        updated, seen = await self._call("patch", res, name, call, namespace, guard or _guard_in(body))
        self._record(res, namespace, name, updated, seen)
        return updated

    async def replace(self, res: Resource, obj: Obj, *, guard: str, subresource: str | None = None) -> Obj:
        """PUT the object (or a subresource), guarded by `guard` (or our newer version of it)."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace"), str(meta["name"])
        guard = self.version(res, namespace, name, guard)
        body = {**obj, "metadata": {**meta, "resourceVersion": guard}}
        call = self.client.replace(res, body, subresource=subresource)
        updated, seen = await self._call("update", res, name, call, namespace, guard)
        self._record(res, namespace, name, updated, seen)
        return updated

    async def write_status(self, res: Resource, meta: Mapping[str, Any], status: Obj) -> Obj:
        """Replace the status subresource, guarded by the version in `meta` (the decision's version)."""
        body = {
            "apiVersion": res.api_version,
            "kind": res.kind,
            "metadata": {k: meta[k] for k in ("name", "namespace") if k in meta},
            "status": status,
        }
        return await self.replace(res, body, guard=_version({"metadata": meta}), subresource="status")

    async def set_finalizers(self, res: Resource, meta: Mapping[str, Any], finalizers: Iterable[str]) -> Obj:
        """Replace the finalizer list, guarded: two writers editing the list never lose an entry."""
        body = {"metadata": {"finalizers": list(finalizers)}}
        guard = _version({"metadata": meta})
        return await self.patch(res, str(meta["name"]), body, meta.get("namespace"), guard=guard)

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
    ) -> None:
        """Delete (idempotent: a gone object is fine); with `uid`, only that incarnation of the name."""
        preconditions = {"uid": uid} if uid else None
        call = self.client.remove(res, name, namespace, preconditions=preconditions)
        answer, seen = await self._call("delete", res, name, call, namespace)
        if (
            answer
            and answer.get("kind") not in (None, "Status")
            and (answer.get("metadata") or {}).get("deletionTimestamp")
        ):
            self._record(res, namespace, name, answer, seen)  # held by finalizers: the marked version
        else:
            self._expect(res, namespace, name, Want.ABSENT)

    # -- plumbing -------------------------------------------------------------------------------

    async def _call(
        self,
        verb: str,
        res: Resource,
        name: str,
        call: Awaitable[T],
        namespace: str | None = None,
        guard: str = "",
    ) -> tuple[T, set[str]]:
        """The answer, and the versions of the object the informers delivered while it was in flight."""
        self.writes += 1
        flight = self._expectations.depart(self._informers(res, namespace), self._key(res, namespace, name))
        try:
            return await call, flight.seen
        except ApiError as err:
            if err.already_exists:
                raise _Taken from err
            if err.conflict:
                self._expect(res, namespace, name, Want.CHANGED, guard)
                raise Stale(f"{verb} {res.kind} {name}: {err.message}") from err
            if err.not_found and verb != "create":
                self._expect(res, namespace, name, Want.ABSENT)
                raise Stale(f"{verb} {res.kind} {name}: gone") from err
            if is_refusal(err):
                raise Refused(verb, res.kind, name, err) from err
            raise
        finally:
            self._expectations.land(flight)

    def _record(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        written: Obj,
        seen: Collection[str] = (),
        *,
        present: bool = False,
    ) -> None:
        version = _version(written)
        if version:
            self._versions[self._id(res, namespace, name)] = version
            if present:
                self._expect(res, namespace, name, Want.PRESENT)
            else:
                self._expect(res, namespace, name, Want.VERSION, version, seen)

    @staticmethod
    def _key(res: Resource, namespace: str | None, name: str) -> str:
        return f"{namespace}/{name}" if namespace and res.namespaced else name

    def _expect(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        want: Want,
        version: str = "",
        seen: Collection[str] = (),
    ) -> None:
        key = self._key(res, namespace, name)
        for informer in self._informers(res, namespace):
            self._expectations.expect(self._owner, informer, key, want, version, seen)


class _Taken(Exception):
    """A create found the name taken (AlreadyExists)."""
