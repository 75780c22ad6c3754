"""Typed writes to the objects traffic routing owns or edits: Services, Ingresses, HTTPRoutes, custom kinds.

The traffic providers' pure functions return lists of these; an empty list means "nothing to change",
which is how a routing task reports done (Kruise's "a pass found nothing to change"). The planner wraps
each one in an `ApplyChange` action and `executor/traffic.py` turns it into one API call.
Pure data: this module must not do I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["Change", "Create", "CustomKind", "Delete", "Kind", "ObjectKind", "Patch", "PatchType", "describe"]

PatchType = Literal["merge", "strategic", "json"]


class ObjectKind(enum.StrEnum):
    """The kinds traffic routing reads and writes (the executor maps them to API resources)."""

    SERVICE = "Service"
    INGRESS = "Ingress"
    HTTP_ROUTE = "HTTPRoute"


@dataclasses.dataclass(frozen=True)
class CustomKind:
    """A kind a `customNetworkRefs` entry names (any API group); the observer maps it to a resource.

    Keyed by group and kind only: the versions of one kind are the same objects to the API server,
    so the controller reads and writes them in the version its discovery prefers.
    """

    group: str
    kind: str

    @classmethod
    def of(cls, api_version: str, kind: str) -> CustomKind:
        group, _, _ = api_version.rpartition("/")
        return cls(group, kind)

    def __str__(self) -> str:
        """`VirtualService.networking.istio.io`: Kind.group, as Kruise's script keys spell it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


Kind = ObjectKind | CustomKind


@dataclasses.dataclass(frozen=True)
class Create:
    """Create `obj` (in the Rollout's namespace); an object that already exists is left alone."""

    resource: Kind
    obj: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class Patch:
    resource: Kind
    name: str
    patch: Mapping[str, Any]
    patch_type: PatchType = "merge"


@dataclasses.dataclass(frozen=True)
class Delete:
    resource: Kind
    name: str


Change = Create | Patch | Delete


def describe(change: Change) -> str:
    """'create Service demo-canary' — for logs and messages."""
    verb = {Create: "create", Patch: "patch", Delete: "delete"}[type(change)]
    return f"{verb} {change.resource} {change.name}"
