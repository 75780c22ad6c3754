"""Traffic-routing tasks as seen by the step machine and the finalisation sequences.

Each function answers "is this task done?" and may add actions. Rollouts without `trafficRoutings`
have nothing to route, so every task is done at once. The gateway providers (Services, Ingress,
Gateway API, Lua) plug in here; until they do, a Rollout that names trafficRoutings releases pods
by its steps without moving traffic, and says so with a Warning Event (`TRAFFIC_NOT_APPLIED`).
"""

from __future__ import annotations

from graylane.api.rollout_v1beta1 import CanaryStep
from graylane.planner.context import Pass

__all__ = ["TRAFFIC_NOT_APPLIED", "has_traffic", "task_done"]

TRAFFIC_NOT_APPLIED = (
    "trafficRoutings are not applied by this graylane version: pods move by steps, traffic does not"
)


def has_traffic(step: CanaryStep) -> bool:
    return step.traffic is not None or bool(step.matches)


def task_done(p: Pass, task: str) -> bool:
    """RestoreStableService, RouteTrafficToStable/ToNew, RemoveCanaryService, PatchStableService, Route."""
    return not p.rollout.spec.strategy.traffic_routings()
