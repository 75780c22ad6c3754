"""The traffic provider contract: what a provider fetches, declares, and changes (STYLE §3.3).

A provider (Ingress via Lua, Gateway API HTTPRoute, ...) is a frozen value built from one
`trafficRoutings[0]` element and a `RoutingConfig`. It says which objects the observer must fetch
(`fetches`), which step features it can route (`capabilities`, checked by the webhook), and answers
with pure functions: `ensure(observed, route)` and `finalise(observed)` return the `Change`s still
needed — an empty list means "done" (a pass found nothing to change). Providers never do I/O and never
mutate the observed objects (they are the informers' shared cache).

Several providers of one routing each do what they can (Kruise's behaviour): a step feature is
refused only when no provider can route it (`missing_capability`), and each provider is handed the
route `narrowed` to what it can do, so it never meets a feature it cannot express.

The `Change` types and `RouteIntent` live in the planner (which may not import this package) and are
re-exported here for providers.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from graylane.api.gateway import HTTPHeaderMatch
from graylane.api.rollout_v1beta1 import HttpRouteMatch
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
    "header_capability",
    "missing_capability",
    "narrowed",
    "needed_capabilities",
    "require",
]

COOKIE_HEADER = "canary-by-cookie"  # the Ingress scripts' cookie convention (the webhook's rule too)


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


def header_capability(header: HTTPHeaderMatch) -> Capability:
    if header.name == COOKIE_HEADER:
        return Capability.COOKIE_MATCH
    if header.type == "RegularExpression":
        return Capability.HEADER_REGEX
    return Capability.HEADER_MATCH


def needed_capabilities(route: RouteIntent) -> Iterator[Capability]:
    """Every step feature the route uses, in the order the webhook checks them."""
    if route.weight is not None:
        yield Capability.WEIGHT
    for match in route.matches:
        yield from (header_capability(header) for header in match.headers)
        if match.query_params:
            yield Capability.QUERY_MATCH
        if match.path is not None:
            yield Capability.PATH_MATCH
    if route.request_header_modifier is not None:
        yield Capability.REQUEST_HEADER_MODIFIER


def missing_capability(route: RouteIntent, able: frozenset[Capability]) -> Capability | None:
    """The first feature of `route` outside `able`, or None when all of it can be routed."""
    return next((needed for needed in needed_capabilities(route) if needed not in able), None)


def narrowed(route: RouteIntent, able: frozenset[Capability]) -> RouteIntent:
    """`route` without the features outside `able`; a match left with no condition is dropped.

    (An empty match would match every request, which is the opposite of what the step asked.)
    """
    if missing_capability(route, able) is None:
        return route
    matches = tuple(kept for match in route.matches if (kept := _narrowed_match(match, able)) is not None)
    return RouteIntent(
        weight=route.weight if Capability.WEIGHT in able else None,
        matches=matches,
        request_header_modifier=(
            route.request_header_modifier if Capability.REQUEST_HEADER_MODIFIER in able else None
        ),
    )


def _narrowed_match(match: HttpRouteMatch, able: frozenset[Capability]) -> HttpRouteMatch | None:
    headers = [header for header in match.headers if header_capability(header) in able]
    queries = match.query_params if Capability.QUERY_MATCH in able else []
    path = match.path if Capability.PATH_MATCH in able else None
    if not headers and not queries and path is None:
        return None
    return match.model_copy(update={"headers": headers, "query_params": queries, "path": path})
