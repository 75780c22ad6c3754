"""The API resource of each workload kind graylane releases, in a given version (no I/O, light to import:
the CLI uses it too)."""

from __future__ import annotations

from graylane.api.workloads import WorkloadKind, lookup
from graylane.kube.resources import Resource

__all__ = ["resource_for", "resource_of"]


def resource_of(kind: WorkloadKind, version: str | None = None) -> Resource:
    return Resource(kind.group, version or kind.version, kind.plural, kind.kind)


def resource_for(api_version: str, kind_name: str) -> Resource | None:
    """The resource of an object of a kind graylane releases, in the version it names (the kind's
    preferred one when that version is not one graylane reads it in); None for any other kind."""
    kind = lookup(api_version, kind_name)
    if kind is None:
        return None
    version = api_version.rpartition("/")[2]
    return resource_of(kind, version if version in kind.versions else None)
