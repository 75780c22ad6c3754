"""Carry out one traffic `Change` (create / patch / delete a Service, Ingress, HTTPRoute or custom kind).

Thin: the providers decided what to write. Creating an object that already exists is not an error
(the cache the plan came from was behind; the next pass compares again), nor is deleting one that is
gone. Patch conflicts (a stale resourceVersion) propagate, so the Rollout is re-planned from fresh state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.resources import Resource
from graylane.planner.changes import Change, Create, Delete, Kind, ObjectKind, Patch, describe

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
    client: KubeClient,
    namespace: str,
    change: Change,
    resources: Resources = DEFAULT_RESOURCES,
) -> None:
    """Custom kinds are in `resources` only as the observer discovered them (see traffic_observe.py)."""
    res = next((found for kind, found in resources.items() if kind == change.resource), None)
    if res is None:
        raise LookupError(f"{change.resource} is not served by the API (it was not found at start-up)")
    if isinstance(change, Create):
        await _create(client, res, namespace, change)
    elif isinstance(change, Patch):
        await client.patch(res, change.name, dict(change.patch), namespace, patch_type=change.patch_type)
    elif isinstance(change, Delete):
        await client.delete(res, change.name, namespace)
    log.info("traffic change applied", extra={"namespace": namespace, "change": describe(change)})


async def _create(client: KubeClient, res: Resource, namespace: str, change: Create) -> None:
    try:
        await client.create(res, dict(change.obj), namespace)
    except ApiError as err:
        if not err.already_exists:
            raise
