"""Several providers driven as one (one `trafficRoutings` element may name an Ingress and an HTTPRoute).

The composite is done only when every provider is done: its change list is the concatenation, which
is empty only if each provider's is (Kruise's CompositeController ANDs `done` the same way). Each
provider does what it can, as in Kruise: the composite can route a step feature if any provider can,
and hands each provider the route narrowed to its own capabilities (e.g. Istio routes a query-parameter
match while the nginx Ingress beside it sends that match nothing). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import functools

from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic.base import (
    Capability,
    Change,
    ObjectKey,
    RouteIntent,
    RoutingError,
    TrafficProvider,
    missing_capability,
    narrowed,
)

__all__ = ["CompositeProvider"]


@dataclasses.dataclass(frozen=True)
class CompositeProvider:
    providers: tuple[TrafficProvider, ...]

    @property
    def label(self) -> str:
        return " + ".join(provider.label for provider in self.providers)

    @property
    def capabilities(self) -> frozenset[Capability]:
        sets = [provider.capabilities for provider in self.providers]
        return functools.reduce(frozenset.union, sets, frozenset())

    def fetches(self) -> list[ObjectKey]:
        return [key for provider in self.providers for key in provider.fetches()]

    def ensure(self, observed: TrafficObserved, route: RouteIntent) -> list[Change]:
        missing = missing_capability(route, self.capabilities)
        if missing is not None:
            raise RoutingError(f"none of the traffic providers {self.label} can route by {missing}")
        return [
            change
            for provider in self.providers
            for change in provider.ensure(observed, narrowed(route, provider.capabilities))
        ]

    def finalise(self, observed: TrafficObserved) -> list[Change]:
        return [change for provider in self.providers for change in provider.finalise(observed)]
