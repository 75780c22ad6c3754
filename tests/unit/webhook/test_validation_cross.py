"""Admission never admits what a later write in the other version would refuse (issue 10 item 4).

Each case first pins upstream's own verdict (the request version's rules alone admit it), then shows
graylane's: refused, in the terms of the version the user sent.
"""

from __future__ import annotations

import pytest
from tests.unit.webhook.test_validation import (
    FORBIDDEN,
    INVALID,
    Obj,
    alpha,
    beta,
    blue_green,
    canary_steps,
    edit,
    stored,
    summary,
)

from graylane.api.conversion import convert
from graylane.webhook.validation import DEFAULT_OPTIONS, FieldError, render_errors, validate_rollout
from graylane.webhook.validation_v1alpha1 import validate_v1alpha1
from graylane.webhook.validation_v1beta1 import validate_v1beta1

WEIGHT_MSG = (
    'weight must be from 1 to 100: this Rollout is stored as v1beta1, where the weight is traffic "{w}%" '
    'and must be "0%" < traffic <= "100%", so every later write of it (yours, other tools\', the '
    "controller's own) would be refused"
)


def own_rules(new: Obj, old: Obj | None = None, siblings: list[Obj] | None = None) -> list[FieldError]:
    """Upstream's verdict: only the rules of the version the request is in."""
    validate = validate_v1alpha1 if new["apiVersion"].endswith("v1alpha1") else validate_v1beta1
    return validate(new, old, siblings or [], DEFAULT_OPTIONS)


@pytest.mark.parametrize("weight", [-1, 0, 150, 500])
def test_v1alpha1_weight_beside_replicas_must_be_a_percentage(weight: int) -> None:
    rollout = edit(alpha(), canary_steps({"replicas": 1, "weight": weight}, {"replicas": "100%"}))
    assert own_rules(rollout) == [], "Kruise's v1alpha1 rules do not look at weight when replicas is set"
    assert validate_v1beta1(convert(rollout, "rollouts.kruise.io/v1beta1"), None, [], DEFAULT_OPTIONS)

    errors = validate_rollout(rollout, None, [])

    assert summary(errors) == [("Spec.Strategy.Canary.Steps[0].Weight", INVALID, WEIGHT_MSG.format(w=weight))]
    assert render_errors(errors).startswith(
        f"Spec.Strategy.Canary.Steps[0].Weight: Invalid value: {weight}: "
    )


def test_v1alpha1_weight_150_on_the_last_step_of_the_issue() -> None:
    rollout = edit(alpha(), canary_steps({"replicas": 1, "weight": 20}, {"replicas": "100%", "weight": 150}))
    assert summary(validate_rollout(rollout, None, [])) == [
        ("Spec.Strategy.Canary.Steps[1].Weight", INVALID, WEIGHT_MSG.format(w=150))
    ]


def test_a_fix_of_a_stuck_rollout_is_admitted_and_untouched_specs_are_not_rechecked() -> None:
    stuck = stored(edit(alpha(), canary_steps({"replicas": 1, "weight": -1})), phase="Healthy")
    relabelled = edit(stuck, ("metadata.labels", {"team": "a"}))
    assert validate_rollout(relabelled, stuck, []) == [], "a label, a finalizer: the spec is unchanged"
    fixed = edit(stuck, canary_steps({"replicas": 1, "weight": 20}))
    assert validate_rollout(fixed, stuck, []) == []
    still_bad = edit(stuck, canary_steps({"replicas": 2, "weight": -1}))
    assert summary(validate_rollout(still_bad, stuck, []))[0][0] == "Spec.Strategy.Canary.Steps[0].Weight"


def test_v1alpha1_update_that_changes_the_step_count_while_progressing() -> None:
    """Issue 15 item 10: Kruise's v1beta1 rule, which every later v1beta1 write would meet."""
    old = stored(alpha())
    removed = edit(alpha(), canary_steps({"weight": 10, "replicas": 1, "pause": {}}))
    assert own_rules(removed, old) == [], "Kruise's v1alpha1 rules let steps be added or removed"

    assert summary(validate_rollout(removed, old, [])) == [
        ("Spec.Strategy.Canary", FORBIDDEN, "Amount of Rollout steps are immutable")
    ]
    added = edit(alpha(), ("spec.strategy.canary.steps.2", {"replicas": "100%"}))
    assert summary(validate_rollout(added, old, []))[0][2] == "Amount of Rollout steps are immutable"
    assert validate_rollout(removed, stored(alpha(), phase="Healthy"), []) == [], "free when not releasing"


def test_v1alpha1_style_annotation_case_still_may_change_while_progressing() -> None:
    old = stored(edit(alpha(), ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "Canary"})))
    new = edit(alpha(), ("metadata.annotations", {"rollouts.kruise.io/rolling-style": "canary"}))
    assert validate_rollout(new, old, []) == []


def test_a_v1alpha1_rollout_may_not_take_a_workload_a_blue_green_rollout_has() -> None:
    sibling = blue_green() | {"metadata": {"name": "bg", "namespace": "default"}}
    assert own_rules(alpha(), None, [sibling]) == [], "blue-green Rollouts are invisible to v1alpha1 rules"
    assert summary(validate_rollout(alpha(), None, [sibling])) == [
        (
            "Conflict Checker",
            INVALID,
            "This rollout conflict with Rollout(default/bg), one workload only have less than one Rollout",
        )
    ]


def test_an_empty_custom_network_refs_list_is_not_a_provider() -> None:
    rollout = edit(
        beta(), ("spec.strategy.canary.trafficRoutings.0", {"service": "demo", "customNetworkRefs": []})
    )
    assert own_rules(rollout) == [], "Kruise's v1beta1 rules count an empty list as set"
    assert summary(validate_rollout(rollout, None, [])) == [
        ("Spec.Strategy.Canary.TrafficRouting.TrafficRoutings", INVALID, "TrafficRoutings are not set")
    ]


def test_v1beta1_traffic_must_not_decrease_with_traffic_routings() -> None:
    rollout = edit(
        beta(),
        canary_steps(
            {"replicas": 1, "traffic": "50%"}, {"replicas": 2, "traffic": "20%"}, {"replicas": "100%"}
        ),
    )
    assert own_rules(rollout) == [], "Kruise's v1beta1 rules do not order traffic"

    errors = validate_rollout(rollout, None, [])

    message = (
        'traffic must not be less than the step before it ("50%") when trafficRoutings are set: '
        "Kruise's v1alpha1 rules refuse it, so no v1alpha1 client (kubectl-kruise, KubeVela) could write "
        "this Rollout again"
    )
    assert summary(errors) == [("Spec.Strategy.Canary.Steps[1].Traffic", INVALID, message)]
    assert render_errors(errors).startswith('Spec.Strategy.Canary.Steps[1].Traffic: Invalid value: "20%": ')
    without_routing = edit(rollout, ("spec.strategy.canary.trafficRoutings", []))
    assert validate_rollout(without_routing, None, []) == []


def test_blue_green_is_checked_by_the_v1beta1_rules_alone() -> None:
    """v1alpha1 cannot express blue-green: its view is an empty spec by design, not an error."""
    assert validate_rollout(blue_green(), None, []) == []


def test_the_seeds_of_both_versions_stay_admitted() -> None:
    assert validate_rollout(alpha(), None, []) == []
    assert validate_rollout(beta(), None, []) == []
    assert validate_rollout(beta(), stored(beta()), []) == []
    assert validate_rollout(alpha(), stored(alpha()), []) == []
