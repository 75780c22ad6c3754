"""Replica arithmetic of Kruise Rollout: percentages, partitions, batch readiness.

Pure functions only. Every rule here is one users depend on (pod counts per step), so each carries
the reason it is the way it is.
"""

from __future__ import annotations

from graylane.api.common import is_percent, scaled_int_or_percent

__all__ = [
    "IntOrStr",
    "batch_ready",
    "canary_style_replicas",
    "parse_percent",
    "partition_style_replicas",
    "scale",
    "traffic_percent",
]

IntOrStr = int | str


def parse_percent(value: str) -> int:
    """'30%' -> 30; raises ValueError naming the value when it is not an integer percentage."""
    return scaled_int_or_percent(value, 100, round_up=True) if is_percent(value) else _not_percent(value)


def _not_percent(value: str) -> int:
    raise ValueError(f"invalid IntOrString: string is not a percentage: {value!r}")


def scale(value: IntOrStr | None, total: int) -> int:
    """Kubernetes intstr scaling with round-up, clamped to [0, total].

    Kruise scales step replicas with roundUp=true, so 5 replicas at 10% is 1 pod, never 0.
    """
    if value is None:
        return 0
    if isinstance(value, str) and not is_percent(value):
        value = int(value)  # a numeric string is accepted by intstr as an int
    return max(0, min(scaled_int_or_percent(value, total, round_up=True), total))


def canary_style_replicas(step_replicas: IntOrStr | None, workload_replicas: int) -> int:
    """Pods of the extra canary Deployment for a step: 5 replicas at 90% gives 5."""
    return scale(step_replicas, workload_replicas)


def partition_style_replicas(step_replicas: IntOrStr | None, workload_replicas: int) -> int:
    """New-revision pods for a step in partition style: a percentage below 100% keeps one old pod.

    Kruise caps percentages other than "100%" at replicas-1 (when replicas > 1) so that a step that
    is not the last never replaces every old pod; integer steps are taken as written.
    """
    desired = scale(step_replicas, workload_replicas)
    if (
        workload_replicas > 1
        and isinstance(step_replicas, str)
        and is_percent(step_replicas)
        and parse_percent(step_replicas) != 100
    ):
        desired = min(desired, workload_replicas - 1)
    return desired


def traffic_percent(traffic: str | None) -> int | None:
    """'20%' -> 20, None -> None (the step routes no weight)."""
    return None if traffic is None else parse_percent(traffic)


def batch_ready(
    *,
    desired: int,
    updated: int,
    updated_ready: int,
    failure_threshold: IntOrStr | None,
) -> bool:
    """Whether a batch is done: enough updated pods, enough of them ready (within the tolerance).

    The tolerance (failureThreshold) is scaled against the updated pods, rounding up; no threshold
    means no tolerance. A batch that wants pods needs at least one ready pod even with tolerance.
    """
    if updated < desired:
        return False
    tolerated = scale(failure_threshold, updated) if failure_threshold is not None else 0
    if updated_ready + tolerated < desired:
        return False
    return not (desired > 0 and updated_ready == 0)
