"""Rollout validating webhook: every upstream rule, message, path and "first error wins" point.

Where upstream admits what its other version's rules refuse, graylane refuses too: those cases are in
test_validation_cross.py, with upstream's own verdict checked there against the per-version rules.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.webhook.validation import (
    FieldError,
    FieldErrorType,
    ValidationOptions,
    render_errors,
    validate_rollout,
)
from graylane.webhook.validation_common import UNSUPPORTED_WORKLOAD

Obj = dict[str, Any]
_DELETE = object()

REPLICAS_MSG = 'replicas must be positive number, or a percentage with "0%" < canaryReplicas <= "100%"'
PARTITION_MSG = (
    "For partition style rollout: step[x].replicas must not greater than partition-percent-limit"
    " if traffic specified"
)
CANARY_TRAFFIC_MSG = 'traffic must be percentage with "0%" < traffic <= "100%" in canary strategy'
BLUE_GREEN_TRAFFIC_MSG = 'traffic must be percentage with "0%" <= traffic <= "100%" in blueGreen strategy'
ALPHA_REPLICAS_LIMIT_MSG = (
    "For patition style rollout: step[x].replicas must not greater than replicasLimitWithTraffic"
    " if traffic or matches specified"
)
ALPHA_WEIGHT_LIMIT_MSG = (
    "For patition style rollout: step[x].weight must not greater than replicasLimitWithTraffic"
    " if replicas is not specified"
)
WEIGHT_RANGE_MSG = (
    "weight must be positive number, and less than or equal to replicasLimitWithTraffic (defaults to 30)"
)
STEPS = "Spec.Strategy.Canary.Steps"
ROUTING = "Spec.Strategy.Canary.TrafficRouting"
INVALID, FORBIDDEN = FieldErrorType.INVALID, FieldErrorType.FORBIDDEN
API_VERSIONS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "CloneSet": "apps.kruise.io/v1alpha1"}


# --- Builders ----------------------------------------------------------------------------------------------


def alpha(name: str = "rollouts-demo", kind: str = "Deployment") -> Obj:
    """The seed v1alpha1 Rollout."""
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": API_VERSIONS[kind], "kind": kind, "name": "demo"}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"weight": 10, "replicas": 1, "pause": {}},
                        {"weight": 30, "replicas": 2, "pause": {}},
                    ],
                    "trafficRoutings": [
                        {"service": "demo", "ingress": {"classType": "nginx", "name": "demo"}}
                    ],
                }
            },
        },
    }


def beta(name: str = "rollouts-demo", kind: str = "Deployment") -> Obj:
    """The seed Rollout in v1beta1 (as conversion would produce it, minus the percent replicas)."""
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "workloadRef": {"apiVersion": API_VERSIONS[kind], "kind": kind, "name": "demo"},
            "strategy": {
                "canary": {
                    "steps": [
                        {"traffic": "10%", "replicas": 1, "pause": {}},
                        {"traffic": "30%", "replicas": 2, "pause": {}},
                    ],
                    "trafficRoutings": [
                        {
                            "service": "demo",
                            "gracePeriodSeconds": 3,
                            "ingress": {"classType": "nginx", "name": "demo"},
                        }
                    ],
                    "enableExtraWorkloadForCanary": True,
                }
            },
        },
    }


def blue_green(kind: str = "Deployment") -> Obj:
    rollout = beta(kind=kind)
    canary = rollout["spec"]["strategy"].pop("canary")
    del canary["enableExtraWorkloadForCanary"]
    rollout["spec"]["strategy"]["blueGreen"] = canary
    return rollout


def edit(rollout: Obj, *changes: tuple[str, Any]) -> Obj:
    """A copy with each dotted path ("spec.strategy.canary.steps.0.replicas") set, appended or deleted."""
    result = copy.deepcopy(rollout)
    for path, value in changes:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        node: Any = result
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list) and last == len(node):
            node.append(value)
        else:
            node[last] = value
    return result


def canary_steps(*steps: Obj) -> tuple[str, Any]:
    return ("spec.strategy.canary.steps", list(steps))


def partition(rollout: Obj) -> Obj:
    """v1beta1 without the extra canary workload, i.e. a real partition-style release."""
    return edit(rollout, ("spec.strategy.canary.enableExtraWorkloadForCanary", _DELETE))


def alpha_partition(rollout: Obj) -> Obj:
    return edit(rollout, ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "partition"}))


def summary(errors: list[FieldError]) -> list[tuple[str, FieldErrorType, str]]:
    return [(error.path, error.type, error.message) for error in errors]


# --- Accepted ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "options"),
    [
        pytest.param(alpha(), ValidationOptions(), id="seed-v1alpha1"),
        pytest.param(beta(), ValidationOptions(), id="seed-v1beta1"),
        pytest.param(partition(beta()), ValidationOptions(), id="v1beta1-partition-int-replicas"),
        pytest.param(blue_green(), ValidationOptions(), id="v1beta1-blue-green"),
        pytest.param(blue_green("CloneSet"), ValidationOptions(), id="v1beta1-blue-green-cloneset"),
        pytest.param(
            edit(blue_green(), ("spec.strategy.blueGreen.steps.0.traffic", "0%")),
            ValidationOptions(),
            id="blue-green-traffic-0%",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": "60%", "traffic": "10%"}, {"replicas": "100%"})),
            ValidationOptions(),
            id="canary-style-deployment-has-no-partition-limit",
        ),
        pytest.param(
            edit(
                partition(beta()), canary_steps({"replicas": "50%", "traffic": "10%"}, {"replicas": "100%"})
            ),
            ValidationOptions(),
            id="partition-at-limit",
        ),
        pytest.param(
            edit(partition(beta()), canary_steps({"replicas": "60%", "traffic": "10%"})),
            ValidationOptions(partition_percent_limit=60),
            id="partition-limit-flag",
        ),
        pytest.param(
            edit(partition(beta()), canary_steps({"replicas": "80%"}, {"replicas": 100, "traffic": "100%"})),
            ValidationOptions(),
            id="partition-limit-needs-traffic",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": 5}, {"replicas": "20%"}, {"replicas": 3})),
            ValidationOptions(),
            id="mixed-replica-kinds-not-compared",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": 500})), ValidationOptions(), id="int-replicas-over-100"
        ),
        pytest.param(
            edit(
                beta(),
                canary_steps({"replicas": "+10%", "matches": [{"headers": [{"name": "a", "value": "b"}]}]}),
            ),
            ValidationOptions(),
            id="matches-only-step-and-signed-percent",
        ),
        pytest.param(
            edit(beta(), ("spec.workloadRef.apiVersion", "apps/v2")),
            ValidationOptions(),
            id="version-ignored",
        ),
        pytest.param(
            edit(beta(), ("spec.workloadRef", {"apiVersion": "example.com/v1", "kind": "Foo", "name": "x"})),
            ValidationOptions(filter_workload_type=False),
            id="filter-workload-type-off",
        ),
        pytest.param(
            edit(
                beta(),
                (
                    "spec.strategy.canary.trafficRoutings.0",
                    {"service": "s", "gateway": {"httpRouteName": "r"}},
                ),
            ),
            ValidationOptions(),
            id="gateway",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings", _DELETE)),
            ValidationOptions(),
            id="no-routing",
        ),
        pytest.param(
            edit(alpha(), ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "Partition"})),
            ValidationOptions(),
            id="v1alpha1-style-case-insensitive",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"weight": 20}, {"weight": 60}, {"replicas": "100%"})),
            ValidationOptions(),
            id="v1alpha1-weight-only-steps",
        ),
        pytest.param(
            edit(
                alpha_partition(alpha()),
                canary_steps({"replicas": "60%"}, {"replicas": "100%", "weight": 50}),
            ),
            ValidationOptions(partition_percent_limit=100),
            id="v1alpha1-partition-limit-flag",
        ),
    ],
)
def test_valid_rollouts_are_admitted(rollout: Obj, options: ValidationOptions) -> None:
    assert validate_rollout(rollout, None, [], options) == []


# --- v1beta1 rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        pytest.param(
            edit(beta(), ("spec.workloadRef.kind", "Foo")),
            [("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD)],
            id="kind-not-supported",
        ),
        pytest.param(
            edit(beta(), ("spec.workloadRef", _DELETE)),
            [("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD)],
            id="missing-workload-ref-is-an-empty-struct-upstream",
        ),
        pytest.param(
            blue_green("StatefulSet"),
            [
                (
                    "Spec.ObjectRef.WorkloadRef",
                    INVALID,
                    "WorkloadRef kind is not supported for bluegreen style",
                )
            ],
            id="blue-green-kind",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy", {})),
            [("Spec.Strategy", INVALID, "Canary and BlueGreen cannot both be empty")],
            id="no-strategy",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.blueGreen", {"steps": [{"replicas": 1}]})),
            [("Spec.Strategy", INVALID, "Canary and BlueGreen cannot both be set")],
            id="both-strategies",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.steps", [])),
            [(STEPS, INVALID, "The number of Canary.Steps cannot be empty")],
            id="no-steps",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.steps.1.replicas", _DELETE)),
            [(f"{STEPS}[1].steps", INVALID, "replicas cannot be empty")],
            id="replicas-empty",
        ),
        pytest.param(
            edit(partition(beta()), canary_steps({"replicas": "60%", "traffic": "10%"})),
            [(f"{STEPS}[0].steps", INVALID, PARTITION_MSG)],
            id="partition-limit-traffic",
        ),
        pytest.param(
            edit(partition(beta()), canary_steps({"replicas": "60%", "matches": [{"headers": []}]})),
            [(f"{STEPS}[0].steps", INVALID, PARTITION_MSG)],
            id="partition-limit-matches",
        ),
        pytest.param(
            edit(beta(kind="CloneSet"), canary_steps({"replicas": "60%", "traffic": "10%"})),
            [(f"{STEPS}[0].steps", INVALID, PARTITION_MSG)],
            id="extra-workload-ignored-for-cloneset-real-partition",
        ),
        pytest.param(
            edit(blue_green(), ("spec.strategy.blueGreen.steps.0.traffic", "101%")),
            [("Spec.Strategy.BlueGreen.Steps[0].steps", INVALID, BLUE_GREEN_TRAFFIC_MSG)],
            id="blue-green-traffic-range",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": 2}, {"replicas": 1})),
            [(f"{STEPS}.CanaryReplicas", INVALID, "Steps.CanaryReplicas must be a non decreasing sequence")],
            id="replicas-decrease",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": "50%"}, {"replicas": "20%"})),
            [(f"{STEPS}.CanaryReplicas", INVALID, "Steps.CanaryReplicas must be a non decreasing sequence")],
            id="percent-replicas-decrease",
        ),
        pytest.param(
            edit(beta(), canary_steps({"replicas": "0%"}, {"replicas": "abc"})),
            [(f"{STEPS}[0].Replicas", INVALID, REPLICAS_MSG)],
            id="first-failing-step-wins",
        ),
        pytest.param(
            edit(
                beta(),
                ("spec.strategy.canary.trafficRoutings.1", {"service": "other", "ingress": {"name": "x"}}),
            ),
            [("Spec.Strategy.Canary", INVALID, "Rollout currently only support single TrafficRouting.")],
            id="two-routings",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.gracePeriodSeconds", -1)),
            [
                (
                    f"{ROUTING}.GracePeriodSeconds",
                    INVALID,
                    "TrafficRouting.GracePeriodSeconds cannot be negative",
                )
            ],
            id="grace-period",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.service", "")),
            [(f"{ROUTING}.Service", INVALID, "TrafficRouting.Service cannot be empty")],
            id="service",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.ingress", _DELETE)),
            [(f"{ROUTING}.TrafficRoutings", INVALID, "TrafficRoutings are not set")],
            id="no-provider",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.ingress.name", "")),
            [(f"{ROUTING}.Ingress", INVALID, "TrafficRouting.Ingress.Ingress cannot be empty")],
            id="ingress-name",
        ),
        pytest.param(
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.gateway", {})),
            [
                (
                    f"{ROUTING}.Gateway",
                    INVALID,
                    "TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute",
                )
            ],
            id="gateway-route",
        ),
        pytest.param(
            edit(
                beta(),
                ("spec.workloadRef.kind", "Foo"),
                ("spec.strategy.canary.steps.0.replicas", 0),
                ("spec.strategy.canary.trafficRoutings.0", {"service": "", "gracePeriodSeconds": -2}),
            ),
            [
                ("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD),
                (f"{STEPS}[0].Replicas", INVALID, REPLICAS_MSG),
                (
                    f"{ROUTING}.GracePeriodSeconds",
                    INVALID,
                    "TrafficRouting.GracePeriodSeconds cannot be negative",
                ),
                (f"{ROUTING}.Service", INVALID, "TrafficRouting.Service cannot be empty"),
                (f"{ROUTING}.TrafficRoutings", INVALID, "TrafficRoutings are not set"),
            ],
            id="independent-checks-accumulate-in-upstream-order",
        ),
    ],
)
def test_v1beta1_rules(rollout: Obj, expected: list[tuple[str, FieldErrorType, str]]) -> None:
    assert summary(validate_rollout(rollout, None, [])) == expected


@pytest.mark.parametrize(
    "replicas", [0, -1, "0%", "101%", "5", "abc", "10.5%", " 10%", "10%%", "", "-5%", 1.5, True, {"x": 1}]
)
def test_replicas_must_be_positive_count_or_percentage(replicas: object) -> None:
    rollout = edit(beta(), ("spec.strategy.canary.steps.0.replicas", replicas))
    assert summary(validate_rollout(rollout, None, [])) == [(f"{STEPS}[0].Replicas", INVALID, REPLICAS_MSG)]


@pytest.mark.parametrize("traffic", ["0%", "101%", "10", "abc", "", "-1%", 10])
def test_canary_traffic_must_be_a_positive_percentage(traffic: object) -> None:
    rollout = edit(beta(), ("spec.strategy.canary.steps.0.traffic", traffic))
    assert summary(validate_rollout(rollout, None, [])) == [
        (f"{STEPS}[0].steps", INVALID, CANARY_TRAFFIC_MSG)
    ]


# --- v1alpha1 rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        pytest.param(
            edit(alpha(), ("spec.objectRef.workloadRef", _DELETE)),
            [("Spec.ObjectRef.WorkloadRef", INVALID, "WorkloadRef is required")],
            id="workload-required",
        ),
        pytest.param(
            edit(alpha(), ("spec.objectRef.workloadRef.apiVersion", "example.com/v1")),
            [("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD)],
            id="kind-not-supported",
        ),
        pytest.param(
            edit(alpha(), ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "bluegreen"})),
            [("RollingStyle", INVALID, "Rolling style must be 'Canary', 'Partition' or empty")],
            id="rolling-style",
        ),
        pytest.param(
            edit(alpha(), ("spec.strategy.canary", _DELETE)),
            [("Spec.Strategy.Canary", INVALID, "Canary cannot be empty")],
            id="canary-required",
        ),
        pytest.param(
            edit(alpha(), ("spec.strategy.canary.steps", _DELETE)),
            [(STEPS, INVALID, "The number of Canary.Steps cannot be empty")],
            id="no-steps",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"weight": 10}, {"pause": {}})),
            [(f"{STEPS}[1].steps", INVALID, "weight and replicas cannot be empty at the same time")],
            id="weight-and-replicas-empty",
        ),
        pytest.param(
            edit(alpha(), ("spec.strategy.canary.steps.0.replicas", "0%")),
            [(f"{STEPS}[0].Replicas", INVALID, REPLICAS_MSG)],
            id="replicas",
        ),
        pytest.param(
            edit(alpha_partition(alpha()), canary_steps({"replicas": "60%", "weight": 10})),
            [(f"{STEPS}[0].steps", INVALID, ALPHA_REPLICAS_LIMIT_MSG)],
            id="partition-replicas-limit",
        ),
        pytest.param(
            edit(alpha(kind="CloneSet"), canary_steps({"replicas": "60%", "matches": []})),
            [(f"{STEPS}[0].steps", INVALID, ALPHA_REPLICAS_LIMIT_MSG)],
            id="non-deployment-is-partition-and-empty-matches-count",
        ),
        pytest.param(
            edit(alpha_partition(alpha()), canary_steps({"weight": 60})),
            [(f"{STEPS}[0].steps", INVALID, ALPHA_WEIGHT_LIMIT_MSG)],
            id="partition-weight-limit",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"weight": 0})),
            [(f"{STEPS}[0].Weight", INVALID, WEIGHT_RANGE_MSG)],
            id="weight-zero",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"weight": 101})),
            [(f"{STEPS}[0].Weight", INVALID, WEIGHT_RANGE_MSG)],
            id="weight-over-100",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"weight": 30, "replicas": 1}, {"weight": 10, "replicas": 2})),
            [(f"{STEPS}.Weight", INVALID, "Steps.Weight must be a non decreasing sequence")],
            id="weight-decrease-with-routing",
        ),
        pytest.param(
            edit(
                alpha(),
                ("spec.strategy.canary.trafficRoutings", _DELETE),
                canary_steps({"weight": 30}, {"weight": 10}),
            ),
            [(f"{STEPS}.CanaryReplicas", INVALID, "Steps.CanaryReplicas must be a non decreasing sequence")],
            id="weight-only-steps-compared-as-replicas",
        ),
        pytest.param(
            edit(alpha(), canary_steps({"replicas": 2}, {"replicas": 1})),
            [(f"{STEPS}.CanaryReplicas", INVALID, "Steps.CanaryReplicas must be a non decreasing sequence")],
            id="replicas-decrease",
        ),
        pytest.param(
            edit(alpha(), ("spec.strategy.canary.trafficRoutings.0.service", "")),
            [(f"{ROUTING}.Service", INVALID, "TrafficRouting.Service cannot be empty")],
            id="routing",
        ),
        pytest.param(
            edit(
                alpha(),
                ("spec.objectRef.workloadRef.kind", "Foo"),
                ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "x"}),
                ("spec.strategy.canary", _DELETE),
            ),
            [
                ("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD),
                ("RollingStyle", INVALID, "Rolling style must be 'Canary', 'Partition' or empty"),
                ("Spec.Strategy.Canary", INVALID, "Canary cannot be empty"),
            ],
            id="independent-checks-accumulate",
        ),
    ],
)
def test_v1alpha1_rules(rollout: Obj, expected: list[tuple[str, FieldErrorType, str]]) -> None:
    assert summary(validate_rollout(rollout, None, [])) == expected


# --- Conflict checker ---------------------------------------------------------------------------------------


def conflict(other: str) -> list[tuple[str, FieldErrorType, str]]:
    message = (
        f"This rollout conflict with Rollout(default/{other}), one workload only have less than one Rollout"
    )
    return [("Conflict Checker", INVALID, message)]


@pytest.mark.parametrize(
    ("rollout", "siblings", "expected"),
    [
        pytest.param(beta(), [beta("other")], conflict("other"), id="v1beta1-sibling"),
        pytest.param(beta(), [alpha("other")], conflict("other"), id="v1alpha1-sibling-of-v1beta1"),
        pytest.param(alpha(), [beta("other")], conflict("other"), id="v1beta1-sibling-of-v1alpha1"),
        pytest.param(alpha(), [alpha("a"), alpha("b")], conflict("a"), id="first-sibling-only"),
        pytest.param(
            beta(),
            [edit(beta("off"), ("spec.disabled", True))],
            conflict("off"),
            id="disabled-still-conflicts",
        ),
        pytest.param(beta(), [beta()], [], id="itself-by-name"),
        pytest.param(beta(), [beta("other", kind="CloneSet")], [], id="other-workload"),
        pytest.param(
            beta(), [edit(beta("other"), ("spec.workloadRef.apiVersion", "apps/v2"))], [], id="exact-ref"
        ),
        pytest.param(
            edit(beta(), ("spec.workloadRef.kind", "Foo")),
            [edit(beta("other"), ("spec.workloadRef.kind", "Foo"))],
            [
                ("Spec.ObjectRef.WorkloadRef", INVALID, UNSUPPORTED_WORKLOAD),
                *conflict("other"),
            ],
            id="appended-after-spec-errors",
        ),
    ],
)
def test_conflict_checker(
    rollout: Obj, siblings: list[Obj], expected: list[tuple[str, FieldErrorType, str]]
) -> None:
    assert summary(validate_rollout(rollout, None, siblings)) == expected


def test_conflict_message_renders_like_upstream() -> None:
    errors = validate_rollout(beta(), None, [beta("other")])
    assert render_errors(errors) == (
        'Conflict Checker: Invalid value: "rollouts-demo": This rollout conflict with Rollout(default/other),'
        " one workload only have less than one Rollout"
    )


# --- UPDATE immutability ------------------------------------------------------------------------------------


def stored(rollout: Obj, phase: str = "Progressing") -> Obj:
    return edit(rollout, ("status", {"phase": phase}))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            stored(beta()),
            edit(beta(), ("spec.workloadRef.name", "other")),
            [("Spec.ObjectRef", FORBIDDEN, "Rollout 'ObjectRef' field is immutable")],
            id="workload",
        ),
        pytest.param(
            stored(beta()),
            edit(beta(), ("spec.strategy.canary.trafficRoutings.0.ingress.name", "other")),
            [
                (
                    "Spec.Strategy.Canary|BlueGreen.TrafficRoutings",
                    FORBIDDEN,
                    "Rollout 'Strategy.Canary|BlueGreen.TrafficRoutings' field is immutable",
                )
            ],
            id="traffic-routings",
        ),
        pytest.param(
            stored(beta()),
            partition(beta()),
            [
                (
                    "Spec.Strategy.Canary|BlueGreen",
                    FORBIDDEN,
                    "Rollout style and enableExtraWorkloadForCanary are immutable",
                )
            ],
            id="rolling-style",
        ),
        pytest.param(
            stored(beta(), "Terminating"),
            edit(beta(), ("spec.strategy.canary.steps.2", {"replicas": "100%"})),
            [("Spec.Strategy.Canary|BlueGreen", FORBIDDEN, "Amount of Rollout steps are immutable")],
            id="step-count-terminating",
        ),
        pytest.param(
            stored(beta()),
            edit(
                beta(), ("spec.workloadRef.name", "other"), ("spec.strategy.canary.trafficRoutings", _DELETE)
            ),
            [("Spec.ObjectRef", FORBIDDEN, "Rollout 'ObjectRef' field is immutable")],
            id="first-change-only",
        ),
        pytest.param(
            stored(beta()),
            edit(
                beta(),
                ("spec.strategy.canary.steps.0.replicas", 2),
                ("spec.strategy.canary.steps.0.pause", {}),
            ),
            [],
            id="step-contents-may-change",
        ),
        pytest.param(
            stored(beta(), "Healthy"),
            edit(
                beta(), ("spec.workloadRef.name", "other"), ("spec.strategy.canary.steps", [{"replicas": 1}])
            ),
            [],
            id="healthy-not-frozen",
        ),
        pytest.param(
            stored(beta()),
            edit(beta(), ("spec.workloadRef.name", "other"), ("spec.strategy.canary.steps", [])),
            [(STEPS, INVALID, "The number of Canary.Steps cannot be empty")],
            id="spec-errors-first",
        ),
        pytest.param(
            stored(alpha()),
            edit(alpha(), ("spec.objectRef.workloadRef.name", "other")),
            [("Spec.ObjectRef", FORBIDDEN, "Rollout 'ObjectRef' field is immutable")],
            id="v1alpha1-workload",
        ),
        pytest.param(
            stored(alpha()),
            edit(alpha(), ("spec.strategy.canary.trafficRoutings.0.gracePeriodSeconds", 5)),
            [
                (
                    "Spec.Strategy.Canary.TrafficRoutings",
                    FORBIDDEN,
                    "Rollout 'Strategy.Canary.TrafficRoutings' field is immutable",
                )
            ],
            id="v1alpha1-traffic-routings",
        ),
        pytest.param(
            stored(alpha()),
            alpha_partition(alpha()),
            [("Metadata.Annotation", FORBIDDEN, "Rollout 'Rolling-Style' annotation is immutable")],
            id="v1alpha1-rolling-style",
        ),
        pytest.param(
            stored(alpha()),
            edit(
                beta(),
                (
                    "spec.strategy.canary.trafficRoutings.0",
                    {"service": "demo", "ingress": {"classType": "nginx", "name": "demo"}},
                ),
            ),
            [],
            id="stored-object-in-the-other-version",
        ),
    ],
)
def test_update_while_progressing(
    old: Obj, new: Obj, expected: list[tuple[str, FieldErrorType, str]]
) -> None:
    assert summary(validate_rollout(new, old, [])) == expected


def test_forbidden_renders_without_value() -> None:
    errors = validate_rollout(edit(beta(), ("spec.workloadRef.name", "x")), stored(beta()), [])
    assert render_errors(errors) == "Spec.ObjectRef: Forbidden: Rollout 'ObjectRef' field is immutable"


# --- Rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "rendered"),
    [
        pytest.param(
            FieldError("spec.x", FieldErrorType.INVALID, "10%", REPLICAS_MSG),
            f'spec.x: Invalid value: "10%": {REPLICAS_MSG}',
            id="string",
        ),
        pytest.param(
            FieldError("X", FieldErrorType.REQUIRED, "", "msg"), "X: Required value: msg", id="required"
        ),
        pytest.param(
            FieldError("X", FieldErrorType.FORBIDDEN, "", "msg"), "X: Forbidden: msg", id="forbidden"
        ),
        pytest.param(
            FieldError("X", FieldErrorType.INTERNAL, None, "boom"), "X: Internal error: boom", id="internal"
        ),
        pytest.param(
            FieldError("X", FieldErrorType.INVALID, None, "m"), 'X: Invalid value: "null": m', id="nil"
        ),
        pytest.param(FieldError("X", FieldErrorType.INVALID, 5, "m"), "X: Invalid value: 5: m", id="int"),
        pytest.param(
            FieldError("X", FieldErrorType.INVALID, True, "m"), "X: Invalid value: true: m", id="bool"
        ),
        pytest.param(FieldError("X", FieldErrorType.INVALID, 5, ""), "X: Invalid value: 5", id="no-message"),
        pytest.param(
            FieldError("X", FieldErrorType.NOT_SUPPORTED, "a", "m"),
            'X: Unsupported value: "a": m',
            id="unsupported",
        ),
        pytest.param(
            FieldError("X", FieldErrorType.INVALID, 'a"b\\c\n\x01\x7féü', "m"),
            'X: Invalid value: "a\\"b\\\\c\\n\\x01\\x7féü": m',
            id="go-quoting",
        ),
        pytest.param(
            FieldError("X", FieldErrorType.INVALID, "\u200b\U000e0001", "m"),
            'X: Invalid value: "\\u200b\\U000e0001": m',
            id="go-quoting-non-printable-unicode",
        ),
    ],
)
def test_field_error_render(error: FieldError, rendered: str) -> None:
    assert error.render() == rendered


def test_values_print_as_upstream_go_values() -> None:
    rollout = edit(
        beta(),
        ("spec.workloadRef.kind", "Foo"),
        ("spec.strategy.canary.steps", [{"replicas": 5}, {"replicas": "101%"}]),
        ("spec.strategy.canary.trafficRoutings.0.ingress.name", ""),
    )
    assert [error.render() for error in validate_rollout(rollout, None, [])] == [
        "Spec.ObjectRef.WorkloadRef: Invalid value: "
        'v1beta1.ObjectRef{APIVersion:"apps/v1", Kind:"Foo", Name:"demo"}: ' + UNSUPPORTED_WORKLOAD,
        "Spec.Strategy.Canary.Steps[1].Replicas: Invalid value: "
        f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:"101%"}}: {REPLICAS_MSG}',
        "Spec.Strategy.Canary.TrafficRouting.Ingress: Invalid value: "
        'v1beta1.IngressTrafficRouting{ClassType:"nginx", Name:""}: '
        "TrafficRouting.Ingress.Ingress cannot be empty",
    ]


def test_step_list_values_print_as_go_slices() -> None:
    # Go prints nested pointers as addresses; we print a fixed placeholder in the same shape.
    rollout = edit(
        alpha(),
        canary_steps(
            {"replicas": 1, "matches": [{"headers": [{"type": "Exact", "name": "a", "value": "b"}]}]}, {}
        ),
    )
    (error,) = validate_rollout(rollout, None, [])
    assert error.render() == (
        "Spec.Strategy.Canary.Steps[1].steps: Invalid value: []v1alpha1.CanaryStep{"
        "v1alpha1.CanaryStep{TrafficRoutingStrategy:v1alpha1.TrafficRoutingStrategy{Weight:(*int32)(nil), "
        "RequestHeaderModifier:(*v1.HTTPHeaderFilter)(nil), Matches:[]v1alpha1.HttpRouteMatch{"
        "v1alpha1.HttpRouteMatch{Headers:[]v1.HTTPHeaderMatch{v1.HTTPHeaderMatch{Type:(*v1.HeaderMatchType)"
        '(0xc000000000), Name:"a", Value:"b"}}}}}, Replicas:(*intstr.IntOrString)(0xc000000000), '
        "Pause:v1alpha1.RolloutPause{Duration:(*int32)(nil)}}, "
        "v1alpha1.CanaryStep{TrafficRoutingStrategy:v1alpha1.TrafficRoutingStrategy{Weight:(*int32)(nil), "
        "RequestHeaderModifier:(*v1.HTTPHeaderFilter)(nil), Matches:[]v1alpha1.HttpRouteMatch(nil)}, "
        "Replicas:(*intstr.IntOrString)(nil), Pause:v1alpha1.RolloutPause{Duration:(*int32)(nil)}}}: "
        "weight and replicas cannot be empty at the same time"
    )


def test_empty_and_nil_step_lists_differ_like_go() -> None:
    nil_steps = validate_rollout(edit(beta(), ("spec.strategy.canary.steps", _DELETE)), None, [])
    empty_steps = validate_rollout(edit(beta(), ("spec.strategy.canary.steps", [])), None, [])
    assert "Invalid value: []v1beta1.CanaryStep(nil): " in nil_steps[0].render()
    assert "Invalid value: []v1beta1.CanaryStep{}: " in empty_steps[0].render()


def test_weight_and_missing_workload_values() -> None:
    weight = validate_rollout(edit(alpha(), canary_steps({"weight": 0})), None, [])
    missing = validate_rollout(edit(alpha(), ("spec.objectRef", {})), None, [])
    assert weight[0].render() == f"{STEPS}[0].Weight: Invalid value: 0: {WEIGHT_RANGE_MSG}"
    assert missing[0].render() == 'Spec.ObjectRef.WorkloadRef: Invalid value: "null": WorkloadRef is required'


@pytest.mark.parametrize(
    ("errors", "message"),
    [
        pytest.param([], "", id="none"),
        pytest.param([FieldError("a", INVALID, 1, "x")], "a: Invalid value: 1: x", id="one-plain"),
        pytest.param(
            [FieldError("a", INVALID, 1, "x"), FieldError("b", FORBIDDEN, "", "y")],
            "[a: Invalid value: 1: x, b: Forbidden: y]",
            id="several-bracketed",
        ),
        pytest.param(
            [FieldError("a", INVALID, 1, "x"), FieldError("a", INVALID, 1, "x")],
            "a: Invalid value: 1: x",
            id="duplicates-dropped",
        ),
    ],
)
def test_render_errors_aggregates_like_apimachinery(errors: list[FieldError], message: str) -> None:
    assert render_errors(errors) == message


def test_two_identical_routings_report_each_problem_once() -> None:
    routing = {"service": "", "ingress": {"name": "demo"}}
    rollout = edit(beta(), ("spec.strategy.canary.trafficRoutings", [routing, routing]))
    rendered = render_errors(validate_rollout(rollout, None, []))
    assert rendered.count("TrafficRouting.Service cannot be empty") == 1
    assert rendered.startswith("[Spec.Strategy.Canary: Invalid value: []v1beta1.TrafficRoutingRef{")
