"""The `Router`: the planner's `TrafficRouter` port, made of the Services logic and one network provider.

It adds nothing of its own: Service tasks go to services.py, route tasks to the provider (usually a
composite), and `verify` is a dry run — the stable Service must exist and the provider's pure
`ensure` must succeed for a zero weight (which finds missing objects and runs the Lua script once).
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses

from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import Revisions, ServiceTask
from graylane.providers.traffic import services
from graylane.providers.traffic.base import (
    Change,
    ObjectKey,
    RouteIntent,
    RoutingConfig,
    RoutingError,
    TrafficProvider,
)

__all__ = ["Router"]


@dataclasses.dataclass(frozen=True)
class Router:
    config: RoutingConfig
    network: TrafficProvider

    def fetches(self) -> list[ObjectKey]:
        """What the observer must read besides the stable and canary Services."""
        return self.network.fetches()

    def verify(self, observed: TrafficObserved) -> None:
        if observed.stable_service is None:
            raise RoutingError(f"Service {self.config.stable_service} not found")
        self.network.ensure(observed, RouteIntent(weight=0))  # changes discarded: a dry run

    def service_changes(
        self, task: ServiceTask, revisions: Revisions, observed: TrafficObserved
    ) -> list[Change]:
        return services.service_changes(task, observed, self.config, revisions)

    def ensure_routes(self, route: RouteIntent, observed: TrafficObserved) -> list[Change]:
        return self.network.ensure(observed, route)

    def finalise_routes(self, observed: TrafficObserved) -> list[Change]:
        return self.network.finalise(observed)
