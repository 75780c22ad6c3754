"""Templates + a Rollout's arguments -> a run spec; template and run validation with field paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graylane.analysis.templates import ResolutionError, build_run_spec, read_field, resolve_rollout_args
from graylane.analysis.validation import validate_run_spec, validate_template_spec
from graylane.api.analysis import AnalysisRunSpec, AnalysisTemplateSpec, Argument

ROLLOUT = {
    "metadata": {"name": "echo", "namespace": "demo", "labels": {"app": "echo", "tier": "web"}},
    "spec": {"strategy": {"canary": {"steps": [{"replicas": 1}], "enableExtraWorkloadForCanary": True}}},
}


def template(**overrides: Any) -> AnalysisTemplateSpec:
    body: dict[str, Any] = {
        "args": [{"name": "service"}, {"name": "threshold", "value": "0.05"}],
        "metrics": [
            {
                "name": "error-rate",
                "interval": "30s",
                "count": 3,
                "successCondition": "result[0] < {{args.threshold}}",
                "provider": {
                    "prometheus": {"address": "http://prom:9090", "query": 'errors{svc="{{args.service}}"}'}
                },
            }
        ],
    }
    body.update(overrides)
    return AnalysisTemplateSpec.model_validate(body)


# --- arguments from the Rollout --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "echo"),
        ("metadata.labels['app']", "echo"),
        ('metadata.labels["tier"]', "web"),
        ("spec.strategy.canary.steps[0].replicas", "1"),
        ("spec.strategy.canary.enableExtraWorkloadForCanary", "true"),
    ],
)
def test_field_refs_read_the_rollout(path: str, value: str) -> None:
    assert read_field(ROLLOUT, path) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("metadata.labels['missing']", "'missing' not found"),
        ("metadata.labels", "points at an object"),
        ("metadata.$x", "cannot parse"),
    ],
)
def test_bad_field_refs_say_why(path: str, message: str) -> None:
    with pytest.raises(ResolutionError, match=message):
        read_field(ROLLOUT, path)


def test_rollout_args_resolve_hashes_and_fields() -> None:
    args = [
        Argument.model_validate({"name": "a", "value": "x"}),
        Argument.model_validate({"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}}),
        Argument.model_validate({"name": "canary", "valueFrom": {"podTemplateHashValue": "Latest"}}),
        Argument.model_validate(
            {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
        ),
    ]

    resolved = resolve_rollout_args(args, ROLLOUT, stable_hash="5d9f", latest_hash="7c4b")

    assert [(a.name, a.value) for a in resolved] == [
        ("a", "x"),
        ("stable", "5d9f"),
        ("canary", "7c4b"),
        ("app", "echo"),
    ]


def test_an_unknown_hash_is_an_error() -> None:
    arg = Argument.model_validate({"name": "canary", "valueFrom": {"podTemplateHashValue": "Latest"}})

    with pytest.raises(ResolutionError, match="Latest pod-template-hash is not known"):
        resolve_rollout_args([arg], ROLLOUT, stable_hash="5d9f", latest_hash="")


# --- building the run ------------------------------------------------------------------------------------


def test_args_are_substituted_and_defaults_overridden() -> None:
    spec = build_run_spec(
        [template()], [Argument(name="service", value="echo"), Argument(name="unused", value="1")]
    )

    metric = spec.metrics[0]
    assert metric.provider.prometheus is not None
    assert metric.provider.prometheus.query == 'errors{svc="echo"}'
    assert metric.success_condition == "result[0] < 0.05"
    assert {a.name: a.value for a in spec.args} == {"service": "echo", "threshold": "0.05"}
    assert validate_run_spec(spec) == []


def test_a_missing_argument_value_is_named() -> None:
    with pytest.raises(ResolutionError, match="argument 'service' needs a value"):
        build_run_spec([template()], [])


def test_secret_arguments_stay_references() -> None:
    spec = template(
        args=[
            {"name": "service", "value": "echo"},
            {"name": "threshold", "value": "0.05"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}},
        ]
    )
    spec.metrics[0].provider.prometheus.query = 'errors{t="{{args.token}}"}'  # type: ignore[union-attr]

    built = build_run_spec([spec], [])

    assert built.metrics[0].provider.prometheus.query == 'errors{t="{{args.token}}"}'  # type: ignore[union-attr]
    assert validate_run_spec(built) == []


def test_templates_merge_and_refuse_duplicates() -> None:
    other = template(args=[{"name": "threshold", "value": "0.05"}])
    other.metrics[0].name = "second"

    merged = build_run_spec([template(), other], [Argument(name="service", value="echo")])
    assert [m.name for m in merged.metrics] == ["error-rate", "second"]

    with pytest.raises(ResolutionError, match="metric 'error-rate' is defined by more than one template"):
        build_run_spec([template(), template()], [Argument(name="service", value="echo")])
    conflicting = template(args=[{"name": "threshold", "value": "0.1"}])
    conflicting.metrics[0].name = "third"
    with pytest.raises(ResolutionError, match="two different default values"):
        build_run_spec([template(), conflicting], [Argument(name="service", value="echo")])


# --- validation ------------------------------------------------------------------------------------------


def issues(spec: AnalysisTemplateSpec) -> list[str]:
    return [str(issue) for issue in validate_template_spec(spec)]


def metric_with(**fields: Any) -> AnalysisTemplateSpec:
    spec = template()
    body = spec.model_dump(by_alias=True, exclude_none=True)
    body["metrics"][0].update(fields)
    return AnalysisTemplateSpec.model_validate(body)


def judge_metric(**judge: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "address": "http://prom:9090",
        "counts": {"canary": {"events": "e2", "total": "t2"}, "stable": {"events": "e1", "total": "t1"}},
    }
    body.update(judge)
    return {"name": "judge", "interval": "1m", "count": 10, "provider": {"judge": body}}


def test_a_good_template_has_no_issues() -> None:
    assert issues(template()) == []
    assert issues(AnalysisTemplateSpec.model_validate({"metrics": [judge_metric()]})) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"interval": ""}, "spec.metrics[0].interval: required when count is greater than 1"),
        ({"count": "three"}, "spec.metrics[0].count: must be a whole number, got 'three'"),
        ({"failureLimit": -2}, "spec.metrics[0].failureLimit: must be at least -1, got -2"),
        ({"successCondition": "result[0] <"}, "spec.metrics[0].successCondition: unexpected 'the end'"),
        (
            {"provider": {}},
            "spec.metrics[0].provider: exactly one of prometheus, judge and exposure is required",
        ),
        (
            {"provider": {"prometheus": {"address": "prom:9090", "query": "up"}}},
            "spec.metrics[0].provider.prometheus.address: must be an http:// or https:// URL",
        ),
        (
            {"provider": {"prometheus": {"address": "http://p", "query": "up", "timeout": 0}}},
            "spec.metrics[0].provider.prometheus.timeout: must be between 1 and 300 seconds",
        ),
    ],
)
def test_metric_issues_name_the_field(fields: dict[str, Any], expected: str) -> None:
    assert any(issue.startswith(expected) for issue in issues(metric_with(**fields))), issues(
        metric_with(**fields)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"samples": {"canary": "a", "stable": "b"}},
            "spec.metrics[0].provider.judge: exactly one of counts and samples",
        ),
        ({"alpha": "0.7"}, "spec.metrics[0].provider.judge.alpha: alpha must be between 1e-06 and 0.5"),
        ({"margin": "11"}, "spec.metrics[0].provider.judge.margin: margin must be between 0 and 10"),
        ({"minSamples": 0}, "spec.metrics[0].provider.judge.minSamples: must be at least 1"),
    ],
)
def test_judge_issues_name_the_field(change: dict[str, Any], expected: str) -> None:
    spec = AnalysisTemplateSpec.model_validate({"metrics": [judge_metric(**change)]})

    assert any(issue.startswith(expected) for issue in issues(spec)), issues(spec)


def test_the_judge_refuses_what_it_would_ignore_and_needs_interval_and_count() -> None:
    metric = judge_metric()
    metric.update(successCondition="result < 1", failureLimit=2, interval="")
    del metric["count"]

    found = issues(AnalysisTemplateSpec.model_validate({"metrics": [metric]}))

    assert "spec.metrics[0].interval: required for the judge: each look reads one interval" in found
    assert "spec.metrics[0].count: required for the judge: the number of looks (1-200)" in found
    assert (
        "spec.metrics[0].successCondition: not used by the judge (it decides by its tests): remove it"
        in found
    )
    assert "spec.metrics[0].failureLimit: not used by the judge (it decides by its tests): remove it" in found


def test_argument_rules() -> None:
    spec = template(
        args=[
            {"name": "a", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "a"},
            {"name": "b", "valueFrom": {"podTemplateHashValue": "Stable"}},
        ]
    )

    found = issues(spec)

    assert "spec.args[0]: value and valueFrom are mutually exclusive" in found
    assert "spec.args[1].name: duplicate argument 'a'" in found
    assert "spec.args[2].valueFrom.podTemplateHashValue: not allowed here; use secretKeyRef" in found


def test_duplicate_metrics_and_bad_patterns() -> None:
    body = template().model_dump(by_alias=True, exclude_none=True)
    body["metrics"].append(copy.deepcopy(body["metrics"][0]))
    body["dryRun"] = [{"metricName": "("}]

    found = issues(AnalysisTemplateSpec.model_validate(body))

    assert "spec.metrics[1].name: duplicate metric name 'error-rate'" in found
    assert any(issue.startswith("spec.dryRun[0].metricName: invalid regular expression") for issue in found)


def test_a_run_with_an_unresolved_argument_is_invalid() -> None:
    spec = AnalysisRunSpec.model_validate(template().model_dump(by_alias=True, exclude_none=True))

    found = [str(issue) for issue in validate_run_spec(spec)]

    assert "spec.metrics[0].successCondition: argument 'threshold' was not given a value" in found
    assert "spec.metrics[0].provider.prometheus.query: argument 'service' was not given a value" in found
