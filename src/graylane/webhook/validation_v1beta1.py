"""Kruise Rollout's admission rules for ``rollouts.kruise.io/v1beta1`` Rollouts.

Mirrors upstream's ``validateRollout`` / ``validateRolloutUpdate``: the same checks in the same order, the
same field paths (upstream's own ``Spec.Strategy...`` spelling) and messages, and the same "stop at the
first error" points. The stored object of an UPDATE, and the sibling Rollouts used by the conflict check,
may be in either API version; they are read as upstream's conversion would present them in v1beta1.

Must not: do I/O, or reach a different verdict from upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from graylane.webhook.validation_common import (
    UNSUPPORTED_WORKLOAD,
    FieldError,
    ImmutableRule,
    Raw,
    StepsContext,
    ValidationOptions,
    annotations_of,
    api_group,
    as_dict,
    as_list,
    blue_green_of,
    canary_of,
    check_conflict,
    check_immutable,
    check_routings,
    check_steps,
    invalid,
    is_percent_type,
    is_supported_workload,
    is_v1alpha1,
    scaled_percent,
    valid_replicas,
)
from graylane.webhook.validation_gofmt import Slice, decode, schemas_for

__all__ = ["rolling_style", "validate_v1beta1", "workload_ref"]

_SCHEMAS = schemas_for("v1beta1")
_CANARY, _PARTITION, _BLUE_GREEN = "Canary", "Partition", "BlueGreen"
_STYLE_ANNOTATION = "rollouts.kruise.io/rolling-style"
_BLUE_GREEN_WORKLOADS = frozenset({("apps", "Deployment"), ("apps.kruise.io", "CloneSet")})
_PARTITION_LIMIT = (
    "For partition style rollout: step[x].replicas must not greater than partition-percent-limit"
    " if traffic specified"
)


def validate_v1beta1(
    rollout: Raw, old: Raw | None, siblings: Sequence[Raw], options: ValidationOptions
) -> list[FieldError]:
    errors = _validate(rollout, siblings, options)
    if old is None or errors:
        return errors
    return check_immutable(old, rollout, _IMMUTABLE)


def _validate(rollout: Raw, siblings: Sequence[Raw], options: ValidationOptions) -> list[FieldError]:
    style = _context_style(rollout)
    errors = _check_workload_ref(workload_ref(rollout), style, options)
    errors += _check_strategy(rollout, style, options)
    return errors + check_conflict(rollout, siblings, _workload_key)


# --- How upstream sees a Rollout in v1beta1 ------------------------------------------------------------


def workload_ref(rollout: Raw) -> Raw:
    """``spec.workloadRef`` (``spec.objectRef.workloadRef`` of a v1alpha1 Rollout); {} when absent."""
    spec = as_dict(rollout.get("spec"))
    if is_v1alpha1(rollout):
        return as_dict(as_dict(spec.get("objectRef")).get("workloadRef"))
    return as_dict(spec.get("workloadRef"))


def _workload_key(rollout: Raw) -> object:
    # A v1beta1 workloadRef is a struct, never nil, so every Rollout has a key.
    return decode(_SCHEMAS.workload_ref, workload_ref(rollout))


def rolling_style(rollout: Raw) -> str:
    """Upstream's ``GetRollingStyle``; "" for a Rollout with neither strategy."""
    if canary_of(rollout) is None:
        return _BLUE_GREEN if blue_green_of(rollout) is not None else ""
    if is_v1alpha1(rollout):
        # Conversion sets enableExtraWorkloadForCanary unless the annotation says "partition".
        return (
            _PARTITION
            if str(annotations_of(rollout).get(_STYLE_ANNOTATION, "")).lower() == "partition"
            else _CANARY
        )
    if blue_green_of(rollout) is not None:
        return _BLUE_GREEN
    return _CANARY if as_dict(canary_of(rollout)).get("enableExtraWorkloadForCanary") is True else _PARTITION


def _context_style(rollout: Raw) -> str:
    # IsRealPartition: the extra-workload canary style is only honoured for an apps/v1 Deployment.
    style = rolling_style(rollout)
    if style == _CANARY and not _is_deployment(workload_ref(rollout)):
        return _PARTITION
    return style


def _is_deployment(ref: Raw) -> bool:
    return ref.get("apiVersion") == "apps/v1" and ref.get("kind") == "Deployment"


def _active_strategy(rollout: Raw) -> Raw:
    style = rolling_style(rollout)
    if style == _BLUE_GREEN:
        return as_dict(blue_green_of(rollout))
    return as_dict(canary_of(rollout)) if style else {}


def _routing_key(rollout: Raw) -> object:
    return decode(Slice(_SCHEMAS.traffic_routing), _active_strategy(rollout).get("trafficRoutings"))


def _step_count(rollout: Raw) -> int:
    return len(as_list(_active_strategy(rollout).get("steps")))


_IMMUTABLE: tuple[ImmutableRule, ...] = (
    (_workload_key, "Spec.ObjectRef", "Rollout 'ObjectRef' field is immutable"),
    (
        _routing_key,
        "Spec.Strategy.Canary|BlueGreen.TrafficRoutings",
        "Rollout 'Strategy.Canary|BlueGreen.TrafficRoutings' field is immutable",
    ),
    (
        rolling_style,
        "Spec.Strategy.Canary|BlueGreen",
        "Rollout style and enableExtraWorkloadForCanary are immutable",
    ),
    (_step_count, "Spec.Strategy.Canary|BlueGreen", "Amount of Rollout steps are immutable"),
)


# --- Rules -----------------------------------------------------------------------------------------------


def _check_workload_ref(ref: Raw, style: str, options: ValidationOptions) -> list[FieldError]:
    # No "WorkloadRef is required" here: the v1beta1 field is a struct upstream, so a missing one is an
    # empty reference and fails the kind check (the CRD schema makes it required anyway).
    path = "Spec.ObjectRef.WorkloadRef"
    if not is_supported_workload(ref, options):
        return [invalid(path, ref, UNSUPPORTED_WORKLOAD, _SCHEMAS.workload_ref)]
    group_kind = (api_group(str(ref.get("apiVersion", ""))), ref.get("kind", ""))
    if style == _BLUE_GREEN and group_kind not in _BLUE_GREEN_WORKLOADS:
        message = "WorkloadRef kind is not supported for bluegreen style"
        return [invalid(path, ref, message, _SCHEMAS.workload_ref)]
    return []


def _check_strategy(rollout: Raw, style: str, options: ValidationOptions) -> list[FieldError]:
    path = "Spec.Strategy"
    canary, blue_green = canary_of(rollout), blue_green_of(rollout)
    if canary is None and blue_green is None:
        return [invalid(path, None, "Canary and BlueGreen cannot both be empty")]
    if canary is not None and blue_green is not None:
        return [invalid(path, None, "Canary and BlueGreen cannot both be set")]
    if blue_green is not None:
        return _check_body(blue_green, f"{path}.BlueGreen", style, options)
    return _check_body(as_dict(canary), f"{path}.Canary", style, options)


def _check_body(body: Raw, path: str, style: str, options: ValidationOptions) -> list[FieldError]:
    steps = StepsContext(
        body.get("steps"), f"{path}.Steps", style, options.partition_percent_limit, _SCHEMAS.steps
    )
    errors = check_steps(steps, _check_step, _check_sequence)
    return errors + check_routings(body.get("trafficRoutings"), path, _SCHEMAS)


def _check_step(ctx: StepsContext, index: int, step: Raw) -> FieldError | None:
    replicas = step.get("replicas")
    if replicas is None:
        return ctx.step_error(index, "replicas cannot be empty")
    value = valid_replicas(replicas)
    if value is None:
        return ctx.replicas_error(index, replicas)
    traffic = step.get("traffic")
    if traffic is None and not as_list(step.get("matches")):
        return None
    if ctx.style == _PARTITION and isinstance(replicas, str) and value > ctx.limit:
        return ctx.step_error(index, _PARTITION_LIMIT)
    return None if traffic is None else _check_traffic(ctx, index, traffic)


def _check_traffic(ctx: StepsContext, index: int, traffic: object) -> FieldError | None:
    weight = scaled_percent(traffic) if isinstance(traffic, str) else None
    if ctx.style == _BLUE_GREEN:
        # Blue-green may keep all traffic on the old version during a step.
        if weight is None or not 0 <= weight <= 100:
            return ctx.step_error(
                index, 'traffic must be percentage with "0%" <= traffic <= "100%" in blueGreen strategy'
            )
        return None
    if weight is None or not 0 < weight <= 100:
        return ctx.step_error(
            index, 'traffic must be percentage with "0%" < traffic <= "100%" in canary strategy'
        )
    return None


def _check_sequence(ctx: StepsContext, steps: list[Raw]) -> FieldError | None:
    # Only steps whose replicas are of the same kind (both counts or both percentages) are compared.
    for prev, curr in pairwise(step.get("replicas") for step in steps):
        if is_percent_type(prev) != is_percent_type(curr):
            continue
        if (scaled_percent(curr) or 0) < (scaled_percent(prev) or 0):
            return ctx.list_error("CanaryReplicas", "Steps.CanaryReplicas must be a non decreasing sequence")
    return None
