"""Kruise Rollout's admission rules for ``rollouts.kruise.io/v1alpha1`` Rollouts.

Mirrors upstream's ``validateV1alpha1Rollout`` / ``validateV1alpha1RolloutUpdate`` (file
``validate_v1alphal_rollout.go``): canary only, ``weight`` instead of ``traffic``, the rolling style in the
``rollouts.kruise.io/rolling-style`` annotation, and upstream's messages verbatim, typos ("patition")
included. The stored object of an UPDATE and the siblings may be in either API version; they are read as
upstream's conversion would present them in v1alpha1.

Must not: do I/O, or reach a different verdict from upstream (the one deliberate exception:
a Rollout where upstream would panic (nil workloadRef) gets field errors instead of a crash).
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
from graylane.webhook.validation_gofmt import INT32, Ptr, Slice, decode, schemas_for

__all__ = ["STYLE_ANNOTATION", "style_annotation", "validate_v1alpha1", "workload_ref"]

STYLE_ANNOTATION = "rollouts.kruise.io/rolling-style"
_SCHEMAS = schemas_for("v1alpha1")
_CANARY, _PARTITION = "Canary", "Partition"
# Upstream's wording, typo included: users match on it.
_PARTITION_REPLICAS = (
    "For patition style rollout: step[x].replicas must not greater than replicasLimitWithTraffic"
    " if traffic or matches specified"
)
_PARTITION_WEIGHT = (
    "For patition style rollout: step[x].weight must not greater than replicasLimitWithTraffic"
    " if replicas is not specified"
)
_WEIGHT_RANGE = (
    "weight must be positive number, and less than or equal to replicasLimitWithTraffic (defaults to 30)"
)


def validate_v1alpha1(
    rollout: Raw, old: Raw | None, siblings: Sequence[Raw], options: ValidationOptions
) -> list[FieldError]:
    errors = _validate(rollout, siblings, options)
    if old is None or errors:
        return errors
    return check_immutable(old, rollout, _IMMUTABLE)


def _validate(rollout: Raw, siblings: Sequence[Raw], options: ValidationOptions) -> list[FieldError]:
    errors = _check_workload_ref(workload_ref(rollout), options)
    errors += _check_rolling_style(rollout)
    errors += _check_canary(rollout, options)
    return errors + check_conflict(rollout, siblings, _workload_key)


# --- How upstream sees a Rollout in v1alpha1 -----------------------------------------------------------


def _converts_from_v1beta1(rollout: Raw) -> bool:
    # Upstream's v1beta1 -> v1alpha1 conversion keeps only metadata unless the Rollout is a canary.
    return not is_v1alpha1(rollout) and blue_green_of(rollout) is None and canary_of(rollout) is not None


def workload_ref(rollout: Raw) -> Raw | None:
    """``spec.objectRef.workloadRef``, or None where upstream's pointer is nil."""
    spec = as_dict(rollout.get("spec"))
    if _converts_from_v1beta1(rollout):
        return as_dict(spec.get("workloadRef"))
    if not is_v1alpha1(rollout):
        return None
    ref = as_dict(spec.get("objectRef")).get("workloadRef")
    return None if ref is None else as_dict(ref)


def _workload_key(rollout: Raw) -> object | None:
    # A nil reference never conflicts and compares equal only to another nil one.
    ref = workload_ref(rollout)
    return None if ref is None else decode(_SCHEMAS.workload_ref, ref)


def style_annotation(rollout: Raw) -> str:
    """The rolling-style annotation (conversion from v1beta1 writes "canary" or "partition")."""
    if _converts_from_v1beta1(rollout):
        return (
            "canary"
            if as_dict(canary_of(rollout)).get("enableExtraWorkloadForCanary") is True
            else "partition"
        )
    value = annotations_of(rollout).get(STYLE_ANNOTATION)
    return value if isinstance(value, str) else ""


def _canary(rollout: Raw) -> Raw | None:
    return canary_of(rollout) if is_v1alpha1(rollout) or _converts_from_v1beta1(rollout) else None


def _routing_key(rollout: Raw) -> object:
    return decode(Slice(_SCHEMAS.traffic_routing), as_dict(_canary(rollout)).get("trafficRoutings"))


def _style_key(rollout: Raw) -> str:
    # strings.EqualFold: the annotation's case may change freely.
    return style_annotation(rollout).lower()


_IMMUTABLE: tuple[ImmutableRule, ...] = (
    (_workload_key, "Spec.ObjectRef", "Rollout 'ObjectRef' field is immutable"),
    (
        _routing_key,
        "Spec.Strategy.Canary.TrafficRoutings",
        "Rollout 'Strategy.Canary.TrafficRoutings' field is immutable",
    ),
    (_style_key, "Metadata.Annotation", "Rollout 'Rolling-Style' annotation is immutable"),
)


def _context_style(rollout: Raw) -> str:
    # Only an apps/v1 Deployment with an empty or "canary" annotation gets the extra canary workload.
    # (Upstream dereferences a nil workloadRef here and panics; we call that partition style instead.)
    ref = workload_ref(rollout) or {}
    is_deployment = ref.get("apiVersion") == "apps/v1" and ref.get("kind") == "Deployment"
    return _CANARY if is_deployment and _style_key(rollout) in ("", "canary") else _PARTITION


# --- Rules -----------------------------------------------------------------------------------------------


def _check_workload_ref(ref: Raw | None, options: ValidationOptions) -> list[FieldError]:
    path = "Spec.ObjectRef.WorkloadRef"
    if ref is None:
        return [invalid(path, None, "WorkloadRef is required")]
    if not is_supported_workload(ref, options):
        return [invalid(path, ref, UNSUPPORTED_WORKLOAD, _SCHEMAS.workload_ref)]
    return []


def _check_rolling_style(rollout: Raw) -> list[FieldError]:
    value = style_annotation(rollout)
    if value.lower() in ("", "canary", "partition"):
        return []
    # Upstream roots this path at "RollingStyle", not under "Spec".
    return [invalid("RollingStyle", value, "Rolling style must be 'Canary', 'Partition' or empty")]


def _check_canary(rollout: Raw, options: ValidationOptions) -> list[FieldError]:
    path = "Spec.Strategy.Canary"
    canary = _canary(rollout)
    if canary is None:
        return [invalid(path, None, "Canary cannot be empty")]
    routings = canary.get("trafficRoutings")
    steps = StepsContext(
        canary.get("steps"),
        f"{path}.Steps",
        _context_style(rollout),
        options.partition_percent_limit,
        _SCHEMAS.steps,
        has_routing=bool(as_list(routings)),
    )
    errors = check_steps(steps, _check_step, _check_sequence)
    return errors + check_routings(routings, path, _SCHEMAS)


def _check_step(ctx: StepsContext, index: int, step: Raw) -> FieldError | None:
    if step.get("weight") is None and step.get("replicas") is None:
        return ctx.step_error(index, "weight and replicas cannot be empty at the same time")
    if step.get("replicas") is not None:
        return _check_replicas(ctx, index, step)
    return _check_weight(ctx, index, step.get("weight"))


def _check_replicas(ctx: StepsContext, index: int, step: Raw) -> FieldError | None:
    replicas = step.get("replicas")
    value = valid_replicas(replicas)
    if value is None:
        return ctx.replicas_error(index, replicas)
    # An explicit empty matches list counts as traffic here (a non-nil slice upstream).
    with_traffic = step.get("matches") is not None or step.get("weight") is not None
    if ctx.style == _PARTITION and isinstance(replicas, str) and value > ctx.limit and with_traffic:
        return ctx.step_error(index, _PARTITION_REPLICAS)
    return None


def _check_weight(ctx: StepsContext, index: int, weight: object) -> FieldError | None:
    amount = _as_int(weight)
    if ctx.style == _PARTITION and amount > ctx.limit:
        return ctx.step_error(index, _PARTITION_WEIGHT)
    if amount <= 0 or amount > 100:
        return invalid(f"{ctx.path}[{index}].Weight", weight, _WEIGHT_RANGE, Ptr(INT32))
    return None


def _check_sequence(ctx: StepsContext, steps: list[Raw]) -> FieldError | None:
    for prev, curr in pairwise(steps):
        if ctx.has_routing and _weight_decreases(prev, curr):
            return ctx.list_error("Weight", "Steps.Weight must be a non decreasing sequence")
        # Only steps whose replicas are of the same kind (nil counts as a percentage) are compared.
        if is_percent_type(prev.get("replicas")) != is_percent_type(curr.get("replicas")):
            continue
        if _amount(curr) < _amount(prev):
            return ctx.list_error("CanaryReplicas", "Steps.CanaryReplicas must be a non decreasing sequence")
    return None


def _weight_decreases(prev: Raw, curr: Raw) -> bool:
    if prev.get("weight") is None or curr.get("weight") is None:
        return False
    return _as_int(curr.get("weight")) < _as_int(prev.get("weight"))


def _amount(step: Raw) -> int:
    # A step without replicas is compared by its weight.
    replicas = step.get("replicas")
    return _as_int(step.get("weight")) if replicas is None else scaled_percent(replicas) or 0


def _as_int(raw: object) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
