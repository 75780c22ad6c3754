"""Typed writes to the objects traffic routing owns or edits: Services, Ingresses and HTTPRoutes.

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

__all__ = ["Change", "Create", "Delete", "ObjectKind", "Patch", "PatchType", "describe"]

PatchType = Literal["merge", "strategic", "json"]


class ObjectKind(enum.StrEnum):
    """The kinds traffic routing reads and writes (the executor maps them to API resources)."""

    SERVICE = "Service"
    INGRESS = "Ingress"
    HTTP_ROUTE = "HTTPRoute"


@dataclasses.dataclass(frozen=True)
class Create:
    """Create `obj` (in the Rollout's namespace); an object that already exists is left alone."""

    resource: ObjectKind
    obj: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class Patch:
    resource: ObjectKind
    name: str
    patch: Mapping[str, Any]
    patch_type: PatchType = "merge"


@dataclasses.dataclass(frozen=True)
class Delete:
    resource: ObjectKind
    name: str


Change = Create | Patch | Delete


def describe(change: Change) -> str:
    """'create Service demo-canary' — for logs and messages."""
    verb = {Create: "create", Patch: "patch", Delete: "delete"}[type(change)]
    return f"{verb} {change.resource} {change.name}"
