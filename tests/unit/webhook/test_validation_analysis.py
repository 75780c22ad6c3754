"""The Rollout webhook's rules for graylane's analysis fields, with field paths, in both API versions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.webhook.validation import FieldErrorType, render_errors, validate_rollout

Obj = dict[str, Any]
STEP = "Spec.Strategy.Canary.Steps[1].Analysis"
NO_TEMPLATES = "Required value: at least one AnalysisTemplate is required"
GOOD = {
    "templates": [{"templateName": "error-rate"}],
    "args": [
        {"name": "service", "value": "echo"},
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ],
}


def beta(step_analysis: object = None, background: object = None) -> Obj:
    steps: list[Obj] = [{"replicas": 1, "pause": {}}, {"replicas": 2, "pause": {}}]
    if step_analysis is not None:
        steps[1]["analysis"] = step_analysis
    canary: Obj = {"steps": steps}
    if background is not None:
        canary["analysis"] = background
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }


def alpha(step_analysis: object = None) -> Obj:
    steps: list[Obj] = [{"weight": 10, "replicas": 1, "pause": {}}]
    if step_analysis is not None:
        steps[0]["analysis"] = step_analysis
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}},
            "strategy": {"canary": {"steps": steps}},
        },
    }


def errors_of(rollout: Obj, old: Obj | None = None) -> list[str]:
    return [error.render() for error in validate_rollout(rollout, old, [])]


def with_args(*args: Obj) -> Obj:
    return {"templates": [{"templateName": "t"}], "args": list(args)}


def test_good_analysis_is_admitted_in_both_versions() -> None:
    assert errors_of(beta(GOOD, {**GOOD, "startingStep": 2})) == []
    assert errors_of(alpha(GOOD)) == []
    assert errors_of(beta()) == []


@pytest.mark.parametrize(
    ("analysis", "expected"),
    [
        (
            {},
            f"{STEP}.Templates: Required value: at least one AnalysisTemplate is required",
        ),
        (
            {"templates": [{"templateName": "a"}, {"clusterScope": True}]},
            f"{STEP}.Templates[1].TemplateName: Required value: the name of an AnalysisTemplate is required",
        ),
        (
            with_args({"name": "a", "value": "1"}, {"name": "a", "value": "2"}),
            f'{STEP}.Args[1].Name: Duplicate value: "a"',
        ),
        (
            with_args({"name": "a"}),
            f"{STEP}.Args[0].Value: Required value: argument 'a' needs a value or valueFrom",
        ),
        (
            with_args({"name": "a", "value": "1", "valueFrom": {"podTemplateHashValue": "Stable"}}),
            f'{STEP}.Args[0]: Invalid value: "a": value and valueFrom are mutually exclusive',
        ),
        (
            with_args({"name": "a", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
            f"{STEP}.Args[0].ValueFrom.SecretKeyRef: Forbidden: a Rollout cannot "
            "name a Secret: declare the argument with secretKeyRef in the AnalysisTemplate",
        ),
        (
            with_args({"name": "a", "valueFrom": {}}),
            f'{STEP}.Args[0].ValueFrom: Invalid value: "null": '
            "exactly one of podTemplateHashValue and fieldRef is required",
        ),
        (
            with_args({"name": "a", "valueFrom": {"podTemplateHashValue": "Newest"}}),
            f"{STEP}.Args[0].ValueFrom.PodTemplateHashValue: Unsupported value: "
            '"Newest": supported values: "Stable", "Latest"',
        ),
        (
            with_args({"name": "a", "valueFrom": {"fieldRef": {}}}),
            f"{STEP}.Args[0].ValueFrom.FieldRef.FieldPath: Required value: "
            "a field path such as metadata.labels['app'] is required",
        ),
    ],
)
def test_step_analysis_errors_have_field_paths(analysis: Obj, expected: str) -> None:
    assert expected in errors_of(beta(analysis))


@pytest.mark.parametrize("starting", [0, 3, "2"])
def test_background_starting_step_must_be_a_step(starting: object) -> None:
    found = errors_of(beta(background={**GOOD, "startingStep": starting}))

    shown = f'"{starting}"' if isinstance(starting, str) else str(starting)
    message = f"Invalid value: {shown}: must be a step number from 1 to 2"
    assert found == [f"Spec.Strategy.Canary.Analysis.StartingStep: {message}"]


def test_blue_green_analysis_is_checked_at_its_own_path() -> None:
    rollout = beta()
    rollout["spec"]["strategy"] = {
        "blueGreen": {"steps": [{"replicas": "100%", "analysis": {}}], "analysis": GOOD}
    }

    assert errors_of(rollout) == [f"Spec.Strategy.BlueGreen.Steps[0].Analysis.Templates: {NO_TEMPLATES}"]


def test_v1alpha1_paths_match() -> None:
    assert errors_of(alpha({})) == [f"Spec.Strategy.Canary.Steps[0].Analysis.Templates: {NO_TEMPLATES}"]


def test_every_error_is_reported_at_once() -> None:
    analysis = {"templates": [{}], "args": [{"value": "x"}, {"name": "b"}]}

    found = validate_rollout(beta(analysis), None, [])

    assert [e.type for e in found] == [FieldErrorType.REQUIRED] * 3
    assert render_errors(found).startswith(
        "[Spec.Strategy.Canary.Steps[1].Analysis.Templates[0].TemplateName"
    )


def test_an_update_that_leaves_the_analysis_alone_is_not_refused() -> None:
    stored = beta({})  # admitted before this rule existed
    updated = copy.deepcopy(stored)
    updated["metadata"]["annotations"] = {"rollouts.kruise.io/hash": "x"}

    assert errors_of(updated, stored) == []
    changed = copy.deepcopy(stored)
    changed["spec"]["strategy"]["canary"]["steps"][1]["analysis"] = {"templates": []}
    assert errors_of(changed, stored) != []


def test_upstream_errors_come_first_and_alone() -> None:
    rollout = beta({})
    rollout["spec"]["strategy"]["canary"]["steps"][0]["replicas"] = 0

    found = errors_of(rollout)

    assert len(found) == 1
    assert found[0].startswith("Spec.Strategy.Canary.Steps[0].Replicas")
