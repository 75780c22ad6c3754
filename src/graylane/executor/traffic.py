"""Carry out one traffic `Change` (create / patch / delete a Service, Ingress, HTTPRoute or custom kind).

Thin: the providers decided what to write. Guards: HTTPRoute and custom-kind patches carry the
resourceVersion they were computed from (the providers put it in the patch); Service selectors and
Ingress annotations are set to fixed values, so repeating one changes nothing (idempotent by
construction). Creating an object whose name is taken is not an error (the names are fixed, so the
cache was behind; the runtime waits to see it before deciding again), nor is deleting one that is gone.
A stale patch raises `Stale` (runtime/writer.py), so the key is re-planned from fresh state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from graylane.kube import resources as r
from graylane.kube.resources import Resource
from graylane.planner.changes import Change, Create, Delete, Kind, ObjectKind, Patch, describe
from graylane.runtime.writer import Writer

__all__ = ["DEFAULT_RESOURCES", "Resources", "apply_change"]

log = logging.getLogger(__name__)

# What each kind is in the API; custom kinds join when discovered (key types: mappings are invariant).
Resources = Mapping[ObjectKind, Resource] | Mapping[Kind, Resource]
DEFAULT_RESOURCES: Mapping[ObjectKind, Resource] = {
    ObjectKind.SERVICE: r.SERVICE,
    ObjectKind.INGRESS: r.INGRESS,
    ObjectKind.HTTP_ROUTE: r.HTTPROUTE,
}


async def apply_change(
    writer: Writer,
    namespace: str,
    change: Change,
    resources: Resources = DEFAULT_RESOURCES,
) -> None:
    """Custom kinds are in `resources` only as the observer discovered them (see observe/traffic.py)."""
    res = next((found for kind, found in resources.items() if kind == change.resource), None)
    if res is None:
        raise LookupError(f"{change.resource} is not served by the API (it was not found at start-up)")
    if isinstance(change, Create):
        await writer.create(res, dict(change.obj), namespace)
    elif isinstance(change, Patch):
        await writer.patch(res, change.name, dict(change.patch), namespace, patch_type=change.patch_type)
    elif isinstance(change, Delete):
        await writer.delete(res, change.name, namespace)
    log.info("traffic change applied", extra={"namespace": namespace, "change": describe(change)})
