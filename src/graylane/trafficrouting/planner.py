"""The TrafficRouting planner (reference §1.6, §3.6): observed TrafficRouting → new status, actions, requeue.

Phases, as Kruise's TrafficRouting controller moves them:
- "" → Initial ("TrafficRouting is Initializing"); Initial → Healthy once the stable Service and the
  provider objects (and Lua script) check out;
- Healthy → Progressing when any finalizer `progressing.rollouts.kruise.io/<rollout>` is present (a
  consuming Rollout is releasing); while Progressing, `spec.strategy` is routed every pass;
- Progressing → Finalizing when the last such finalizer is gone; Finalizing restores the routes
  (deletes the canary Ingress, restores an HTTPRoute) → Healthy;
- deletion → Terminating: restore, then drop the finalizer `rollouts.kruise.io/trafficrouting`.
A pass that is not done asks to be looked at again in 3 s; as in Kruise, observedGeneration is written
with a pass that is done (the status is also written when the phase changes, e.g. to Terminating).
Where Kruise only returns the error, graylane also writes the reason (a missing Ingress, a failing Lua
script) to status.message with a Warning Event (once per distinct reason), keeping the phase; no route
is changed meanwhile.
Pure: no I/O; the observed objects are never mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from graylane.api import keys
from graylane.api.enums import TrafficRoutingPhase
from graylane.api.rollout_v1alpha1 import TrafficRoutingStrategy
from graylane.api.rollout_v1beta1 import HttpRouteMatch
from graylane.api.trafficrouting import TrafficRouting, TrafficRoutingStatus
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import Change
from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import RouteIntent, RoutingError

__all__ = [
    "AddFinalizer",
    "RemoveFinalizer",
    "TrafficRoutingAction",
    "TrafficRoutingObserved",
    "TrafficRoutingPlan",
    "has_route",
    "plan",
    "progressing_finalizers",
    "route_intent",
]

Phase = TrafficRoutingPhase
RECHECK_SECONDS = 3.0  # Kruise's defaultGracePeriodSeconds
MSG_INITIALIZING = "TrafficRouting is Initializing"
MSG_HEALTHY = "TrafficRouting is Healthy"
MSG_PROGRESSING = "TrafficRouting is Progressing"
MSG_FINALIZING = "TrafficRouting is Finalizing"
NOT_READY_REASON = "TrafficRoutingNotReady"
FAILED_REASON = "TrafficRoutingFailed"


@dataclasses.dataclass(frozen=True)
class AddFinalizer:
    finalizer: str


@dataclasses.dataclass(frozen=True)
class RemoveFinalizer:
    finalizer: str


TrafficRoutingAction = AddFinalizer | RemoveFinalizer | ApplyChange | RecordEvent


@dataclasses.dataclass(frozen=True)
class TrafficRoutingObserved:
    traffic_routing: TrafficRouting
    # The objects of spec.objectRef[0] and their router; None when objectRef is empty.
    traffic: TrafficObserved | None


@dataclasses.dataclass(frozen=True)
class TrafficRoutingPlan:
    actions: tuple[TrafficRoutingAction, ...] = ()
    status: TrafficRoutingStatus | None = None  # None: leave the status as it is
    requeue_after: float | None = None


@dataclasses.dataclass
class _Pass:
    observed: TrafficRoutingObserved
    status: TrafficRoutingStatus
    actions: list[TrafficRoutingAction] = dataclasses.field(default_factory=list)
    done: bool = True
    blocked: bool = False

    @property
    def tr(self) -> TrafficRouting:
        return self.observed.traffic_routing

    def not_done(self) -> None:
        self.done = False


def route_intent(strategy: TrafficRoutingStrategy) -> RouteIntent:
    """`spec.strategy` as a route: v1alpha1 `weight: W` is the v1beta1 `traffic: "W%"`; header matches."""
    return RouteIntent(
        weight=strategy.weight,
        matches=tuple(HttpRouteMatch(headers=list(m.headers)) for m in strategy.matches),
        request_header_modifier=strategy.request_header_modifier,
    )


def has_route(strategy: TrafficRoutingStrategy) -> bool:
    """Kruise's DoTrafficRouting is done at once when the strategy sets neither weight nor matches."""
    return strategy.weight is not None or bool(strategy.matches)


def progressing_finalizers(tr: TrafficRouting) -> list[str]:
    """The consuming Rollouts' finalizers (Kruise matches the prefix anywhere in the name)."""
    return [f for f in _finalizers(tr) if keys.PROGRESSING_ROLLOUT_FINALIZER_PREFIX in f]


def plan(observed: TrafficRoutingObserved) -> TrafficRoutingPlan:
    tr = observed.traffic_routing
    p = _Pass(observed, tr.status.model_copy(deep=True))
    if not _deleting(tr) and keys.TRAFFIC_ROUTING_FINALIZER not in _finalizers(tr):
        p.actions.append(AddFinalizer(keys.TRAFFIC_ROUTING_FINALIZER))
    if not p.status.phase:
        p.status.phase, p.status.message = Phase.INITIAL, MSG_INITIALIZING
    if _deleting(tr):
        p.status.phase = Phase.TERMINATING
    handler = _HANDLERS.get(p.status.phase)
    if handler is not None:
        handler(p)
    if p.done:
        p.status.observed_generation = int(tr.metadata.get("generation", 0))
    # Kruise writes only a finished pass; a new phase or a block reason is shown at once as well.
    write = p.done or p.blocked or p.status.phase != tr.status.phase
    return TrafficRoutingPlan(
        actions=tuple(p.actions),
        status=p.status if write and p.status != tr.status else None,
        requeue_after=None if p.done else RECHECK_SECONDS,
    )


# -- one handler per phase ------------------------------------------------------------------------


def _initial(p: _Pass) -> None:
    traffic = p.observed.traffic
    try:
        if traffic is not None:
            traffic.router.verify(traffic)
    except RoutingError as err:
        _block(p, f"traffic routing is not ready: {err}", NOT_READY_REASON)
        return
    p.status.phase, p.status.message = Phase.HEALTHY, MSG_HEALTHY


def _healthy(p: _Pass) -> None:
    if progressing_finalizers(p.tr):
        p.status.phase, p.status.message = Phase.PROGRESSING, MSG_PROGRESSING


def _progressing(p: _Pass) -> None:
    if not progressing_finalizers(p.tr):
        p.status.phase, p.status.message = Phase.FINALIZING, MSG_FINALIZING
        return
    strategy = p.tr.spec.strategy
    traffic = p.observed.traffic
    if traffic is None or not has_route(strategy):
        return
    _apply(p, lambda: traffic.router.ensure_routes(route_intent(strategy), traffic), MSG_PROGRESSING)


def _finalizing(p: _Pass) -> None:
    if _restored(p, MSG_FINALIZING):
        p.status.phase, p.status.message = Phase.HEALTHY, MSG_HEALTHY


def _terminating(p: _Pass) -> None:
    if _restored(p, p.status.message) and keys.TRAFFIC_ROUTING_FINALIZER in _finalizers(p.tr):
        p.actions.append(RemoveFinalizer(keys.TRAFFIC_ROUTING_FINALIZER))


_HANDLERS: dict[str, Callable[[_Pass], None]] = {
    Phase.INITIAL: _initial,
    Phase.HEALTHY: _healthy,
    Phase.PROGRESSING: _progressing,
    Phase.FINALIZING: _finalizing,
    Phase.TERMINATING: _terminating,
}


# -- helpers --------------------------------------------------------------------------------------


def _restored(p: _Pass, message: str) -> bool:
    """Kruise's FinalisingTrafficRouting: routes back to stable; no Service was ever touched."""
    traffic = p.observed.traffic
    if traffic is None:
        return True
    _apply(p, lambda: traffic.router.finalise_routes(traffic), message)
    return p.done


def _apply(p: _Pass, changes_of: Callable[[], list[Change]], message: str) -> None:
    """Carry out the changes still needed; done when a pass finds none (the next pass checks ours)."""
    try:
        changes = changes_of()
    except RoutingError as err:
        _block(p, f"traffic routing is blocked: {err}", FAILED_REASON)
        return
    if changes:
        p.actions.extend(ApplyChange(change) for change in changes)
        p.not_done()
        return
    p.status.message = message  # clears the reason of an earlier block


def _block(p: _Pass, message: str, reason: str) -> None:
    if p.tr.status.message != message:
        p.actions.append(RecordEvent("Warning", reason, message))
    p.status.message = message
    p.blocked = True
    p.not_done()


def _deleting(tr: TrafficRouting) -> bool:
    return bool(tr.metadata.get("deletionTimestamp"))


def _finalizers(tr: TrafficRouting) -> list[str]:
    return list(tr.metadata.get("finalizers") or [])
