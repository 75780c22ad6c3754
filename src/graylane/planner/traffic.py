"""Traffic-routing tasks as seen by the step machine and the finalisation sequences (reference §3).

Each task answers "is it done?" and may add actions. The router carried by `p.observed.traffic` (built
by the controller from graylane.providers.traffic) says *what* to change; this module decides *when*:
a task that changed something sets lastUpdateTime and waits gracePeriodSeconds, and is done only on a
later pass that finds nothing to change once that grace period is over (so our own write, echoed back
by the informers, can never end the wait early). A task that cannot proceed (a missing Ingress, a
broken Lua script) writes the reason to status.message with a Warning Event and retries every 3 s.
Rollouts without `trafficRoutings` have nothing to route, so every task is done at once. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from graylane.api import keys
from graylane.api.enums import FinalisingStep
from graylane.api.rollout_v1beta1 import CanaryStep, TrafficRoutingRef
from graylane.planner.actions import ApplyChange, RecordEvent
from graylane.planner.changes import Change
from graylane.planner.context import Pass
from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import Revisions, RouteIntent, RoutingError, ServiceTask

__all__ = [
    "PATCH_STABLE_SERVICE",
    "ROUTE",
    "finalise_routing",
    "has_traffic",
    "revision_label_key",
    "task_done",
    "verify",
]

PATCH_STABLE_SERVICE = "PatchStableService"
ROUTE = "Route"
DEFAULT_GRACE_SECONDS = 3
RETRY_SECONDS = 3.0
# Workloads whose pods carry controller-revision-hash instead of pod-template-hash.
_CONTROLLER_REVISION_KINDS = frozenset({"StatefulSet", "DaemonSet"})

F = FinalisingStep
Task = Callable[[Pass, TrafficRoutingRef, TrafficObserved], bool]


def has_traffic(step: CanaryStep) -> bool:
    return step.traffic is not None or bool(step.matches)


def revision_label_key(kind: str) -> str:
    return (
        keys.CONTROLLER_REVISION_HASH_LABEL
        if kind in _CONTROLLER_REVISION_KINDS
        else keys.POD_TEMPLATE_HASH_LABEL
    )


def task_done(p: Pass, task: str) -> bool:
    """Route, PatchStableService, RestoreStableService, RouteTrafficToStable/ToNew, RemoveCanaryService."""
    routings = p.rollout.spec.strategy.traffic_routings()
    if not routings:
        return True
    handler = _TASKS[task]
    if p.observed.traffic is None:
        return _blocked(p, RoutingError("the traffic routing objects were not observed"))
    try:
        return handler(p, routings[0], _with_pod_labels(p, p.observed.traffic))
    except RoutingError as err:
        return _blocked(p, err)


def verify(p: Pass) -> bool:
    """Initializing: the stable Service and every provider object (and Lua script) must be usable."""
    if not p.rollout.spec.strategy.traffic_routings():
        return True
    try:
        if p.observed.traffic is None:
            raise RoutingError("the traffic routing objects were not observed")
        p.observed.traffic.router.verify(_with_pod_labels(p, p.observed.traffic))
    except RoutingError as err:
        return _blocked(p, err, reason="TrafficRoutingNotReady", prefix="traffic routing is not ready")
    return True


def finalise_routing(p: Pass) -> bool:
    """Kruise's FinalisingTrafficRouting, run before a step without traffic: undo routing in order."""
    tasks = (F.RESTORE_STABLE_SERVICE, F.ROUTE_TRAFFIC_TO_STABLE, F.REMOVE_CANARY_SERVICE)
    return all(task_done(p, task) for task in tasks)  # stops at the first task still under way


# -- the tasks ------------------------------------------------------------------------------------


def _route(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    """Kruise's DoTrafficRouting for the current step: Services first, then the provider routes."""
    step = p.current_step
    if not has_traffic(step):
        return True
    grace = ref.grace_period_seconds if ref.grace_period_seconds > 0 else DEFAULT_GRACE_SECONDS
    if _in_grace(p, grace):
        return False
    if not p.rollout.spec.strategy.disable_generate_canary_service():
        if not p.sub.stable_revision or not p.sub.pod_template_hash:
            p.wait(RETRY_SECONDS)  # issue #113: never select pods by an empty revision
            return False
        changes = traffic.router.service_changes(ServiceTask.ENSURE, _revisions(p), traffic)
        if changes:
            return _changed(p, changes, grace)
    changes = traffic.router.ensure_routes(RouteIntent.for_step(step), traffic)
    return _changed(p, changes, grace) if changes else True


def _patch_stable(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    if p.rollout.spec.strategy.disable_generate_canary_service():
        return True
    if not p.sub.stable_revision:
        p.wait(RETRY_SECONDS)
        return False
    changes = traffic.router.service_changes(ServiceTask.PATCH_STABLE, _revisions(p), traffic)
    return _settle(p, changes, _grace(p))


def _restore_stable(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    changes = traffic.router.service_changes(ServiceTask.RESTORE_STABLE, _revisions(p), traffic)
    return _settle(p, changes, _grace(p))


def _remove_canary(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    if p.rollout.spec.strategy.disable_generate_canary_service():
        return True
    changes = traffic.router.service_changes(ServiceTask.REMOVE_CANARY, _revisions(p), traffic)
    return _settle(p, changes, _grace(p))


def _to_stable(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    return _settle(p, traffic.router.finalise_routes(traffic), _grace(p))


def _to_new(p: Pass, ref: TrafficRoutingRef, traffic: TrafficObserved) -> bool:
    """Blue-green success: all traffic to the new version before the old pods go."""
    return _settle(p, traffic.router.ensure_routes(RouteIntent(weight=100), traffic), _grace(p))


_TASKS: dict[str, Task] = {
    ROUTE: _route,
    PATCH_STABLE_SERVICE: _patch_stable,
    F.RESTORE_STABLE_SERVICE: _restore_stable,
    F.ROUTE_TRAFFIC_TO_STABLE: _to_stable,
    F.ROUTE_TRAFFIC_TO_NEW: _to_new,
    F.REMOVE_CANARY_SERVICE: _remove_canary,
}


# -- helpers --------------------------------------------------------------------------------------


def _with_pod_labels(p: Pass, traffic: TrafficObserved) -> TrafficObserved:
    """The snapshot with the new pods' labels, for scripts that route by pod label (Gloo subsets)."""
    labels = p.observed.workload.template_labels if p.observed.workload is not None else {}
    return dataclasses.replace(traffic, pod_template_labels=labels)


def _revisions(p: Pass) -> Revisions:
    # The key comes from the workloadRef, not the workload: a Rollout whose workload is gone must still
    # take its revision off the stable Service (Kruise's empty key there leaves the Service pinned).
    kind = p.rollout.spec.workload_ref.kind
    return Revisions(revision_label_key(kind), p.sub.stable_revision, p.sub.pod_template_hash)


def _grace(p: Pass) -> int:
    """Kruise's GetGraceSeconds for finalisation: the largest of the refs; 0 is honoured, <0 means 3."""
    grace = max(ref.grace_period_seconds for ref in p.rollout.spec.strategy.traffic_routings())
    return DEFAULT_GRACE_SECONDS if grace < 0 else grace


def _changed(p: Pass, changes: list[Change], grace: int) -> bool:
    p.act(*(ApplyChange(change) for change in changes))
    p.touch()
    p.wait(grace)
    return False


def _settle(p: Pass, changes: list[Change], grace: int) -> bool:
    """Done when nothing is left to change and the grace period since the last change is over."""
    if changes:
        return _changed(p, changes, grace)
    return not _in_grace(p, grace)


def _in_grace(p: Pass, grace: int) -> bool:
    since = p.sub.last_update_time
    if since is None:
        return False
    remaining = (since + dt.timedelta(seconds=grace) - p.observed.now).total_seconds()
    if remaining <= 0:
        return False
    p.wait(remaining)
    return True


def _blocked(
    p: Pass,
    err: RoutingError,
    *,
    reason: str = "TrafficRoutingFailed",
    prefix: str = "traffic routing is blocked",
) -> bool:
    """Say why in status.message; a Warning Event only when the reason is new (retries are quiet)."""
    message = f"{prefix}: {err}"
    if p.status.message != message:
        p.act(RecordEvent("Warning", reason, message))
    p.status.message = message
    p.wait(RETRY_SECONDS)
    return False
