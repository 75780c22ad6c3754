"""The planner's port to the traffic providers: what it asks of them and the values it passes.

The planner may import only `graylane.api` and the standard library (an import-linter contract), so it
cannot reach `graylane.providers` directly. Instead the controller builds a `TrafficRouter` for the
Rollout (from the provider registry) and hands it over inside the frozen `TrafficObserved`; the
planner decides *when* (grace periods, task order, waiting for revisions) and the router answers
*what* to change, as pure functions of the observed objects. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Protocol

from graylane.api.gateway import HTTPHeaderFilter
from graylane.api.rollout_v1beta1 import CanaryStep, HttpRouteMatch
from graylane.planner.changes import Change
from graylane.planner.weights import traffic_percent

if TYPE_CHECKING:
    from graylane.planner.observed import TrafficObserved

__all__ = ["Revisions", "RouteIntent", "RoutingError", "ServiceTask", "TrafficRouter"]


class RoutingError(Exception):
    """A routing object is missing or cannot be built (e.g. a Lua script failed).

    The message is written to status.message as is, so it names the object and the cause.
    """


@dataclasses.dataclass(frozen=True)
class RouteIntent:
    """Where a step sends traffic: a canary weight and/or request matches (ORed)."""

    weight: int | None = None  # percent to the canary; None: the step sets no weight
    matches: tuple[HttpRouteMatch, ...] = ()
    request_header_modifier: HTTPHeaderFilter | None = None

    @classmethod
    def for_step(cls, step: CanaryStep) -> RouteIntent:
        return cls(
            weight=traffic_percent(step.traffic),
            matches=tuple(step.matches),
            request_header_modifier=step.request_header_modifier,
        )


@dataclasses.dataclass(frozen=True)
class Revisions:
    """Pod label values that tell the versions apart (reference §3: canaryRevision := podTemplateHash)."""

    label_key: str  # pod-template-hash, or controller-revision-hash for StatefulSets and DaemonSets
    stable: str
    canary: str


class ServiceTask(enum.StrEnum):
    ENSURE = "EnsureServices"  # canary Service selects canary pods, stable Service the stable ones
    PATCH_STABLE = "PatchStableService"
    RESTORE_STABLE = "RestoreStableService"
    REMOVE_CANARY = "RemoveCanaryService"


class TrafficRouter(Protocol):
    """Pure answers about one Rollout's traffic objects; every method may raise `RoutingError`."""

    def verify(self, observed: TrafficObserved) -> None:
        """Raise unless the stable Service, the provider objects and their scripts are usable."""
        ...

    def service_changes(
        self, task: ServiceTask, revisions: Revisions, observed: TrafficObserved
    ) -> list[Change]: ...

    def ensure_routes(self, route: RouteIntent, observed: TrafficObserved) -> list[Change]: ...

    def finalise_routes(self, observed: TrafficObserved) -> list[Change]:
        """Changes that send all traffic back to the stable Service and remove canary routes."""
        ...
