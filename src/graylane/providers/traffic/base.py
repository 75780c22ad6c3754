"""The traffic provider contract: what a provider fetches, declares, and changes (STYLE §3.3).

A provider (Ingress via Lua, Gateway API HTTPRoute, ...) is a frozen value built from one
`trafficRoutings[0]` element and a `RoutingConfig`. It says which objects the observer must fetch
(`fetches`), which step features it can route (`capabilities`, checked by the webhook), and answers
with pure functions: `ensure(observed, route)` and `finalise(observed)` return the `Change`s still
needed — an empty list means "done" (a pass found nothing to change). Providers never do I/O and never
mutate the observed objects (they are the informers' shared cache).

The `Change` types and `RouteIntent` live in the planner (which may not import this package) and are
re-exported here for providers.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Protocol

from graylane.planner.changes import Change, Create, CustomKind, Delete, Kind, ObjectKind, Patch
from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import RouteIntent, RoutingError

__all__ = [
    "Capability",
    "Change",
    "Create",
    "CustomKind",
    "Delete",
    "Kind",
    "ObjectKey",
    "ObjectKind",
    "Patch",
    "RouteIntent",
    "RoutingConfig",
    "RoutingError",
    "TrafficProvider",
    "require",
]


class Capability(enum.StrEnum):
    """A step feature a provider can route; the value reads well in a message."""

    WEIGHT = "weight"
    HEADER_MATCH = "header match"
    HEADER_REGEX = "header regular-expression match"
    COOKIE_MATCH = "cookie match"
    QUERY_MATCH = "query parameter match"
    PATH_MATCH = "path match"
    REQUEST_HEADER_MODIFIER = "request header modifier"


ObjectKey = tuple[Kind, str]


@dataclasses.dataclass(frozen=True)
class RoutingConfig:
    """What every provider of one Rollout needs to know, derived from the Rollout by the registry."""

    namespace: str
    stable_service: str
    canary_service: str  # equals stable_service when disableGenerateCanaryService is set
    owner: Mapping[str, Any]  # controller ownerReference to the Rollout, for created objects
    generate_canary_service: bool = True
    # patchPodTemplateMetadata.labels: they overwrite selector keys of the canary Service.
    selector_patch: Mapping[str, str] = dataclasses.field(default_factory=dict)


class TrafficProvider(Protocol):
    """One network provider; see the module docstring for the rules every method follows."""

    @property
    def label(self) -> str:
        """How messages name the provider, e.g. 'Ingress nginx'."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    def fetches(self) -> list[ObjectKey]:
        """The objects (in the Rollout's namespace) `ensure` and `finalise` read from `objects`."""
        ...

    def ensure(self, observed: TrafficObserved, route: RouteIntent) -> list[Change]: ...

    def finalise(self, observed: TrafficObserved) -> list[Change]: ...


def require(observed: TrafficObserved, kind: Kind, name: str) -> Mapping[str, Any]:
    """The observed object, or a RoutingError that says it is missing (and why it may be)."""
    found = observed.get(kind, name)
    if found is not None:
        return found
    if kind not in observed.watched:
        raise RoutingError(
            f"{kind} {name} cannot be read: its CRD is not installed "
            "(graylane watches it as soon as the CRD is established)"
        )
    raise RoutingError(f"{kind} {name} not found")
