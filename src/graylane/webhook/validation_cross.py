"""Admission never admits what it will later refuse: each version's rules on the other version's view.

A Rollout is stored as v1beta1 and served as both versions, and every later write — the user's, other
tools', graylane's own finalizer and annotation patches — is validated by the rules of the version it
is written in. Kruise checks only the version of the request, so a v1alpha1 Rollout whose step has
`replicas` and `weight: -1` (or 150) is admitted, then every v1beta1 write of it is refused
("traffic must be percentage ..."): an empty status, no Event, the user cannot even label it. Here the
Rollout (and, on UPDATE, the stored one) is converted to the other version (graylane.api.conversion,
what `/convert` does) and that version's rules run on it too.

Errors are reported in the version the user sent: paths are translated, and where the other version's
message names a field the user never wrote it is rewritten to name the user's field and what is allowed
(`Spec.Strategy.Canary.Steps[1].Weight: Invalid value: -1: weight must be ...`). Where Kruise itself
refuses (the other version's rule verbatim, e.g. "Amount of Rollout steps are immutable" for a v1alpha1
update that removes steps while Progressing) its message is kept.

Scope: v1alpha1 can express only canary Rollouts, so v1beta1 blue-green (or strategy-less) Rollouts are
checked by the v1beta1 rules alone; their v1alpha1 view is an empty spec by design, not an error. An
UPDATE that leaves the spec as it was (finalizers, annotations, labels, status) is not checked again here,
so a Rollout stored before these rules existed can still be labelled, finalised and deleted.

Must not: do I/O, or change what the request's own version's rules decide (they run first).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from graylane.api import conversion, keys
from graylane.webhook.validation_common import (
    FieldError,
    FieldErrorType,
    Raw,
    ValidationOptions,
    as_dict,
    as_list,
    blue_green_of,
    canary_of,
    invalid,
    is_v1alpha1,
    scaled_percent,
)
from graylane.webhook.validation_gofmt import INT32, Ptr
from graylane.webhook.validation_v1alpha1 import validate_v1alpha1
from graylane.webhook.validation_v1beta1 import validate_v1beta1

__all__ = ["validate_converted"]

_STEP_TRAFFIC = "traffic must be percentage"
_WEIGHT_ORDER = "Steps.Weight must be a non decreasing sequence"


def validate_converted(
    rollout: Raw, old: Raw | None, siblings: Sequence[Raw], options: ValidationOptions
) -> list[FieldError]:
    """The other version's verdict on `rollout` (and `old`), in terms of the version the user sent."""
    if old is not None and as_dict(old.get("spec")) == as_dict(rollout.get("spec")):
        return []
    if not is_v1alpha1(rollout) and (blue_green_of(rollout) is not None or canary_of(rollout) is None):
        return []  # not expressible in v1alpha1 (see the module docstring)
    target = keys.V1ALPHA1 if not is_v1alpha1(rollout) else keys.V1BETA1
    try:
        converted = conversion.convert(rollout, target)
        converted_old = _as_stored(old, target) if old is not None else None
    except (conversion.ConversionError, ValueError, TypeError, KeyError, AttributeError) as err:
        # What the webhook cannot convert, the API server's /convert cannot either: it could not be read.
        return [invalid("Spec", None, f"the Rollout cannot be converted to {target}: {err}")]
    if target == keys.V1BETA1:
        errors = validate_v1beta1(converted, converted_old, siblings, options)
        return [_for_v1alpha1(error, rollout) for error in errors]
    errors = validate_v1alpha1(converted, converted_old, siblings, options)
    return [_for_v1beta1(error, rollout) for error in errors]


# --- v1alpha1 requests, v1beta1 rules -------------------------------------------------------------------


def _for_v1alpha1(error: FieldError, rollout: Raw) -> FieldError:
    index = _step_index(error.path)
    if index is not None and error.message.startswith(_STEP_TRAFFIC):
        step = as_dict(_steps(rollout)[index]) if index < len(_steps(rollout)) else {}
        weight = step.get("weight")
        message = (
            "weight must be from 1 to 100: this Rollout is stored as v1beta1, where the weight is "
            f'traffic "{weight}%" and must be "0%" < traffic <= "100%", so every later write of it '
            "(yours, other tools', the controller's own) would be refused"
        )
        return invalid(f"Spec.Strategy.Canary.Steps[{index}].Weight", weight, message, Ptr(INT32))
    return _with_path(error, error.path.replace("Canary|BlueGreen", "Canary"))


# --- v1beta1 requests, v1alpha1 rules -------------------------------------------------------------------


def _for_v1beta1(error: FieldError, rollout: Raw) -> FieldError:
    if error.message == _WEIGHT_ORDER:
        found = _decreasing_traffic(_steps(rollout))
        if found is not None:
            index, previous, traffic = found
            message = (
                f'traffic must not be less than the step before it ("{previous}") when trafficRoutings '
                "are set: Kruise's v1alpha1 rules refuse it, so no v1alpha1 client (kubectl-kruise, "
                "KubeVela) could write this Rollout again"
            )
            return invalid(f"Spec.Strategy.Canary.Steps[{index}].Traffic", traffic, message)
    return error


def _decreasing_traffic(steps: list[object]) -> tuple[int, str, str] | None:
    """(index, previous traffic, traffic) of the first step whose traffic is below the one before."""
    traffics = [as_dict(step).get("traffic") for step in steps]
    for index, (prev, curr) in enumerate(pairwise(traffics), start=1):
        if isinstance(prev, str) and isinstance(curr, str):
            before, now = scaled_percent(prev), scaled_percent(curr)
            if before is not None and now is not None and now < before:
                return index, prev, curr
    return None


# --- helpers ---------------------------------------------------------------------------------------------


def _as_stored(old: Raw, target: str) -> Raw:
    """The stored object as `target` sees it: through the storage version, as the API server serves it.

    (A v1alpha1 object converted straight back to v1alpha1 would keep a missing rolling-style
    annotation that the trip through v1beta1 fills in, and the style would look changed.)
    """
    return conversion.convert(conversion.convert(old, keys.V1BETA1), target)


def _steps(rollout: Raw) -> list[object]:
    return as_list(as_dict(canary_of(rollout)).get("steps"))


def _step_index(path: str) -> int | None:
    prefix = "Spec.Strategy.Canary.Steps["
    if not path.startswith(prefix):
        return None
    digits = path[len(prefix) :].split("]", 1)[0]
    return int(digits) if digits.isdigit() else None


def _with_path(error: FieldError, path: str) -> FieldError:
    if path == error.path:
        return error
    return FieldError(path, FieldErrorType(error.type), error.value, error.message, error.go_type)
