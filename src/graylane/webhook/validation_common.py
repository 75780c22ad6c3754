"""Building blocks shared by the v1alpha1 and v1beta1 Rollout validators.

Holds the field-error value type (printed exactly like apimachinery's ``field.Error``), the options that
mirror upstream's command-line flags, IntOrString parsing with upstream's rules, version-neutral accessors
over raw Rollout dicts (including how upstream's conversion would present a Rollout of the other version),
and the checks both versions run identically: workload kind, traffic routing, and the one-Rollout-per-
workload conflict check.

Must not: do I/O, import graylane.api (it works on the raw admission JSON), or hold mutable state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from graylane.api.workloads import KINDS, SUPPORTED
from graylane.webhook.validation_gofmt import (
    INT_OR_STRING,
    GoType,
    Ptr,
    Slice,
    VersionSchemas,
    render_bad_value,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "FROZEN_PHASES",
    "REPLICAS_MESSAGE",
    "UNSUPPORTED_WORKLOAD",
    "FieldError",
    "FieldErrorType",
    "ImmutableRule",
    "Raw",
    "StepsContext",
    "ValidationOptions",
    "annotations_of",
    "api_group",
    "as_dict",
    "as_list",
    "blue_green_of",
    "canary_of",
    "check_conflict",
    "check_immutable",
    "check_routings",
    "check_steps",
    "check_traffic_routing",
    "forbidden",
    "invalid",
    "is_percent_type",
    "is_supported_workload",
    "is_v1alpha1",
    "name_of",
    "present",
    "render_errors",
    "scaled_percent",
    "status_phase",
    "strategy_of",
    "valid_replicas",
]

Raw = Mapping[str, Any]


class FieldErrorType(StrEnum):
    """k8s ``field.ErrorType``; the values are what a Status cause's ``reason`` carries."""

    NOT_FOUND = "FieldValueNotFound"
    REQUIRED = "FieldValueRequired"
    DUPLICATE = "FieldValueDuplicate"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    INTERNAL = "InternalError"
    TYPE_INVALID = "FieldValueTypeInvalid"

    @property
    def label(self) -> str:
        """apimachinery's ``ErrorType.String()``, e.g. "Invalid value"."""
        return _LABELS[self]


_LABELS = MappingProxyType(
    {
        FieldErrorType.NOT_FOUND: "Not found",
        FieldErrorType.REQUIRED: "Required value",
        FieldErrorType.DUPLICATE: "Duplicate value",
        FieldErrorType.INVALID: "Invalid value",
        FieldErrorType.NOT_SUPPORTED: "Unsupported value",
        FieldErrorType.FORBIDDEN: "Forbidden",
        FieldErrorType.TOO_LONG: "Too long",
        FieldErrorType.TOO_MANY: "Too many",
        FieldErrorType.INTERNAL: "Internal error",
        FieldErrorType.TYPE_INVALID: "Invalid value",
    }
)
# apimachinery never prints the bad value for these types.
_VALUELESS = frozenset(
    {FieldErrorType.REQUIRED, FieldErrorType.FORBIDDEN, FieldErrorType.TOO_LONG, FieldErrorType.INTERNAL}
)


@dataclass(frozen=True)
class FieldError:
    """One validation failure, as upstream's ``*field.Error``.

    ``value`` is the offending part of the submitted JSON; ``go_type`` says which upstream Go type carried
    it, so ``render()`` can print it as upstream does (it is a printing hint, not part of the identity).
    """

    path: str
    type: FieldErrorType
    value: object
    message: str
    go_type: GoType | None = field(default=None, compare=False, repr=False)

    def render(self) -> str:
        """``field.Error.Error()``: ``<path>: <type label>[: <value>][: <message>]``.

        Byte-for-byte upstream's text, except that Go pointers nested inside a printed value show a fixed
        placeholder address where Go shows a real (per-call) one.
        """
        body = self.type.label
        if self.type not in _VALUELESS:
            body += ": " + render_bad_value(self.go_type, self.value)
        if self.message:
            body += ": " + self.message
        return f"{self.path}: {body}"


def invalid(path: str, value: object, message: str, go_type: GoType | None = None) -> FieldError:
    return FieldError(path, FieldErrorType.INVALID, value, message, go_type)


def forbidden(path: str, message: str) -> FieldError:
    # field.Forbidden records "" as the bad value.
    return FieldError(path, FieldErrorType.FORBIDDEN, "", message)


def render_errors(errors: Sequence[FieldError]) -> str:
    """``ErrorList.ToAggregate().Error()``: duplicates dropped, one error plain, several as "[a, b]"."""
    messages = list(dict.fromkeys(error.render() for error in errors))
    if len(messages) == 1:
        return messages[0]
    return "[" + ", ".join(messages) + "]" if messages else ""


@dataclass(frozen=True)
class ValidationOptions:
    """Upstream's flags that change validation."""

    filter_workload_type: bool = True  # --filter-workload-type
    partition_percent_limit: int = 50  # --partition-percent-limit


DEFAULT_OPTIONS = ValidationOptions()


# --- IntOrString -------------------------------------------------------------------------------------

_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


def scaled_percent(raw: object) -> int | None:
    """``intstr.GetScaledValueFromIntOrPercent(v, 100, true)``; None where upstream returns an error.

    An int is taken as is; a string must be "<Atoi-valid integer>%" (no spaces, one "%"); nil and
    anything else is an error.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str) or not raw.endswith("%"):
        return None
    digits = raw[:-1]
    if not _ATOI.fullmatch(digits) or int(digits) not in _INT64:
        return None
    # Scaling by 100% and rounding up leaves an integer percentage unchanged.
    return int(digits)


def is_percent_type(raw: object) -> bool:
    """Upstream's IsPercentageCanaryReplicasType: nil counts as a percentage, like a string."""
    return raw is None or isinstance(raw, str)


def valid_replicas(raw: object) -> int | None:
    """A step's replicas if upstream accepts them: a positive int, or a percentage in (0%, 100%]."""
    value = scaled_percent(raw)
    if value is None or value <= 0 or (value > 100 and isinstance(raw, str)):
        return None
    return value


# --- Version-neutral accessors over raw Rollouts -----------------------------------------------------


def as_dict(raw: object) -> Raw:
    return raw if isinstance(raw, Mapping) else {}


def as_list(raw: object) -> list[Any]:
    return raw if isinstance(raw, list) else []


def is_v1alpha1(rollout: Raw) -> bool:
    # Upstream dispatches on the request's kind version: v1alpha1, or v1beta1 for anything else.
    return str(rollout.get("apiVersion", "")).endswith("/v1alpha1")


def name_of(rollout: Raw) -> str:
    return str(as_dict(rollout.get("metadata")).get("name", ""))


def annotations_of(rollout: Raw) -> Raw:
    return as_dict(as_dict(rollout.get("metadata")).get("annotations"))


def strategy_of(rollout: Raw) -> Raw:
    return as_dict(as_dict(rollout.get("spec")).get("strategy"))


def canary_of(rollout: Raw) -> Raw | None:
    """``spec.strategy.canary``, or None where upstream's pointer would be nil."""
    return present(strategy_of(rollout), "canary")


def blue_green_of(rollout: Raw) -> Raw | None:
    return present(strategy_of(rollout), "blueGreen")


def present(parent: Raw, key: str) -> Raw | None:
    # JSON null and an absent key both decode to a nil pointer; anything else to a struct.
    value = parent.get(key)
    return None if value is None else as_dict(value)


# Phases of the stored Rollout in which upstream freezes the workload, routing, style and step count.
FROZEN_PHASES: frozenset[str] = frozenset({"Progressing", "Terminating"})


def status_phase(rollout: Raw) -> str:
    return str(as_dict(rollout.get("status")).get("phase", ""))


# --- Checks shared by both versions ------------------------------------------------------------------

# (API group, kind) pairs graylane releases (graylane.api.workloads); the version is deliberately not
# compared, as upstream. Upstream also admits ReplicaSets, which it then cannot release: refused here.
_KNOWN_WORKLOADS = frozenset((kind.group, kind.kind) for kind in KINDS)
# Upstream's message, followed by what is supported (its Invalid value names the kind given).
UNSUPPORTED_WORKLOAD = f"WorkloadRef kind is not supported; supported: {SUPPORTED}"


def api_group(api_version: str) -> str:
    """The group ``schema.FromAPIVersionAndKind`` derives: "" unless there is exactly one "/"."""
    parts = api_version.split("/")
    return parts[0] if len(parts) == 2 else ""


def is_supported_workload(ref: Raw, options: ValidationOptions) -> bool:
    if not options.filter_workload_type:
        return True
    return (api_group(str(ref.get("apiVersion", ""))), ref.get("kind", "")) in _KNOWN_WORKLOADS


def check_traffic_routing(ref: Raw, path: str, schemas: VersionSchemas) -> list[FieldError]:
    """Every problem of one trafficRoutings element (upstream reports them all, not just the first)."""
    checks: list[Callable[[Raw, str, VersionSchemas], FieldError | None]] = [
        _grace_period,
        _service,
        _provider_set,
        _ingress_name,
        _gateway_route,
    ]
    return [error for check in checks if (error := check(ref, path, schemas)) is not None]


def _grace_period(ref: Raw, path: str, _: VersionSchemas) -> FieldError | None:
    grace = ref.get("gracePeriodSeconds")
    if not isinstance(grace, int) or grace >= 0:
        return None
    # Upstream reports the service name here, not the grace period.
    return invalid(
        f"{path}.GracePeriodSeconds",
        _service_name(ref),
        "TrafficRouting.GracePeriodSeconds cannot be negative",
    )


def _service(ref: Raw, path: str, _: VersionSchemas) -> FieldError | None:
    if _service_name(ref):
        return None
    return invalid(f"{path}.Service", _service_name(ref), "TrafficRouting.Service cannot be empty")


def _service_name(ref: Raw) -> str:
    service = ref.get("service")
    return service if isinstance(service, str) else ""


def _provider_set(ref: Raw, path: str, schemas: VersionSchemas) -> FieldError | None:
    # An explicit empty customNetworkRefs list is a non-nil slice upstream, so it counts as set.
    if any(ref.get(key) is not None for key in ("gateway", "ingress", "customNetworkRefs")):
        return None
    return invalid(f"{path}.TrafficRoutings", None, "TrafficRoutings are not set", Ptr(schemas.ingress))


def _ingress_name(ref: Raw, path: str, schemas: VersionSchemas) -> FieldError | None:
    ingress = ref.get("ingress")
    if ingress is None or as_dict(ingress).get("name"):
        return None
    return invalid(
        f"{path}.Ingress", ingress, "TrafficRouting.Ingress.Ingress cannot be empty", Ptr(schemas.ingress)
    )


def _gateway_route(ref: Raw, path: str, schemas: VersionSchemas) -> FieldError | None:
    gateway = ref.get("gateway")
    if gateway is None or as_dict(gateway).get("httpRouteName"):
        return None
    return invalid(
        f"{path}.Gateway",
        gateway,
        "TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute",
        Ptr(schemas.gateway),
    )


def check_conflict(
    rollout: Raw,
    siblings: Sequence[Raw],
    workload_key: Callable[[Raw], object | None],
) -> list[FieldError]:
    """First other Rollout of the namespace that targets the same workload (disabled ones included).

    ``workload_key`` gives the comparable workload reference as the request's API version sees each
    Rollout, or None where upstream would see a nil reference (which never conflicts).
    """
    own_key = workload_key(rollout)
    if own_key is None:
        return []
    for sibling in siblings:
        if name_of(sibling) != name_of(rollout) and workload_key(sibling) == own_key:
            return [_conflict(rollout, sibling)]
    return []


def _conflict(rollout: Raw, sibling: Raw) -> FieldError:
    # Upstream prints the sibling's namespace/name key; the list came from the Rollout's own namespace.
    namespace = _namespace(sibling) or _namespace(rollout)
    message = (
        f"This rollout conflict with Rollout({namespace}/{name_of(sibling)}), "
        "one workload only have less than one Rollout"
    )
    return invalid("Conflict Checker", name_of(rollout), message)


def _namespace(rollout: Raw) -> str:
    return str(as_dict(rollout.get("metadata")).get("namespace") or "")


def check_routings(routings: object, path: str, schemas: VersionSchemas) -> list[FieldError]:
    """The trafficRoutings list of a canary or blue-green strategy at ``path``."""
    items = as_list(routings)
    errors: list[FieldError] = []
    if len(items) > 1:
        message = "Rollout currently only support single TrafficRouting."
        errors.append(invalid(path, routings, message, Slice(schemas.traffic_routing)))
    for ref in items:
        errors += check_traffic_routing(as_dict(ref), f"{path}.TrafficRouting", schemas)
    return errors


REPLICAS_MESSAGE = 'replicas must be positive number, or a percentage with "0%" < canaryReplicas <= "100%"'


@dataclass(frozen=True)
class StepsContext:
    """What every step rule needs: the raw list (upstream's usual bad value), its path, the style."""

    steps: object
    path: str
    style: str  # "Canary", "Partition", "BlueGreen" or "" as upstream's validateContext
    limit: int  # --partition-percent-limit
    steps_type: GoType
    has_routing: bool = False

    def items(self) -> list[Raw]:
        return [as_dict(step) for step in as_list(self.steps)]

    def step_error(self, index: int, message: str) -> FieldError:
        return invalid(f"{self.path}[{index}].steps", self.steps, message, self.steps_type)

    def list_error(self, child: str, message: str) -> FieldError:
        return invalid(f"{self.path}.{child}", self.steps, message, self.steps_type)

    def replicas_error(self, index: int, replicas: object) -> FieldError:
        return invalid(f"{self.path}[{index}].Replicas", replicas, REPLICAS_MESSAGE, Ptr(INT_OR_STRING))


StepCheck = Callable[[StepsContext, int, Raw], FieldError | None]
SequenceCheck = Callable[[StepsContext, list[Raw]], FieldError | None]


def check_steps(ctx: StepsContext, step_check: StepCheck, sequence_check: SequenceCheck) -> list[FieldError]:
    """Upstream's step validation shape: the first failing step wins, then the ordering rule."""
    items = ctx.items()
    if not items:
        return [invalid(ctx.path, ctx.steps, "The number of Canary.Steps cannot be empty", ctx.steps_type)]
    for index, step in enumerate(items):
        if (error := step_check(ctx, index, step)) is not None:
            return [error]
    error = sequence_check(ctx, items)
    return [] if error is None else [error]


ImmutableRule = tuple[Callable[[Raw], object], str, str]  # (key of a Rollout, path, message)


def check_immutable(old: Raw, new: Raw, rules: Sequence[ImmutableRule]) -> list[FieldError]:
    """While the stored Rollout is Progressing or Terminating, the first changed key is Forbidden."""
    if status_phase(old) not in FROZEN_PHASES:
        return []
    for key, path, message in rules:
        if key(old) != key(new):
            return [forbidden(path, message)]
    return []
