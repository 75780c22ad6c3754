"""analysis.graylane.io models, the Rollout's analysis fields, and their conversion between versions."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from graylane.api import keys
from graylane.api.analysis import (
    AnalysisRun,
    AnalysisTemplate,
    ClusterAnalysisTemplate,
    JudgeSide,
    parse_decimal,
    parse_duration,
)
from graylane.api.conversion import convert
from graylane.api.rollout_v1alpha1 import Rollout as RolloutV1alpha1
from graylane.api.rollout_v1beta1 import Rollout

WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echo"}
STEP_ANALYSIS = {
    "templates": [{"templateName": "error-rate"}, {"templateName": "latency", "clusterScope": True}],
    "args": [
        {"name": "service", "value": "echo"},
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ],
}
BACKGROUND = {"templates": [{"templateName": "judge"}], "startingStep": 2}

TEMPLATE = {
    "apiVersion": "analysis.graylane.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "error-rate", "namespace": "demo"},
    "spec": {
        "args": [
            {"name": "service"},
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}},
        ],
        "metrics": [
            {
                "name": "error-rate",
                "interval": "30s",
                "count": 5,
                "successCondition": "result[0] < 0.05",
                "failureLimit": 1,
                "provider": {
                    "prometheus": {
                        "address": "http://127.0.0.1:9090",
                        "query": 'sum(rate(errors{svc="{{args.service}}"}[1m]))',
                    }
                },
            },
            {
                "name": "judge",
                "interval": "1m",
                "count": "{{args.looks}}",
                "provider": {
                    "judge": {
                        "address": "http://127.0.0.1:9090",
                        "counts": {
                            "canary": {"events": "sum(e_c)", "total": "sum(t_c)"},
                            "stable": {"events": "sum(e_s)", "total": "sum(t_s)"},
                        },
                        "alpha": "0.01",
                        "margin": "0.1",
                        "earlyStop": False,
                    }
                },
            },
        ],
        "dryRun": [{"metricName": "judge"}],
    },
}


def beta(step: dict[str, Any] | None = None, **canary: Any) -> dict[str, Any]:
    return {
        "apiVersion": keys.V1BETA1,
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "workloadRef": dict(WORKLOAD),
            "strategy": {"canary": {"steps": [step or {"replicas": 1}], **canary}},
        },
    }


def alpha(step: dict[str, Any] | None = None, **canary: Any) -> dict[str, Any]:
    return {
        "apiVersion": keys.V1ALPHA1,
        "kind": "Rollout",
        "metadata": {
            "name": "demo",
            "namespace": "default",
            "annotations": {keys.ROLLING_STYLE_ANNOTATION: "partition"},
        },
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "strategy": {"canary": {"steps": [step or {"replicas": 1}], **canary}},
        },
    }


def test_a_rollout_without_analysis_has_no_new_keys() -> None:
    obj = beta({"traffic": "20%", "replicas": 1, "pause": {}})

    dumped = json.dumps(Rollout.from_obj(obj).to_obj())
    dumped_alpha = json.dumps(RolloutV1alpha1.from_obj(alpha({"weight": 20})).to_obj())

    assert "analysis" not in dumped
    assert "analysis" not in dumped_alpha
    assert "analysis" not in json.dumps(convert(obj, keys.V1ALPHA1))
    assert "analysis" not in json.dumps(convert(alpha({"weight": 20}), keys.V1BETA1))


def test_step_and_background_analysis_parse_and_dump_unchanged() -> None:
    obj = beta({"replicas": 1, "pause": {}, "analysis": STEP_ANALYSIS}, analysis=BACKGROUND)

    rollout = Rollout.from_obj(obj)
    canary = rollout.to_obj()["spec"]["strategy"]["canary"]

    assert rollout.spec.strategy.steps()[0].analysis is not None
    assert canary["steps"][0]["analysis"] == STEP_ANALYSIS
    assert canary["analysis"] == BACKGROUND


def test_blue_green_takes_a_background_analysis() -> None:
    obj = beta()
    obj["spec"]["strategy"] = {
        "blueGreen": {"steps": [{"replicas": "100%", "analysis": STEP_ANALYSIS}], "analysis": BACKGROUND}
    }

    blue_green = Rollout.from_obj(obj).to_obj()["spec"]["strategy"]["blueGreen"]

    assert blue_green["analysis"] == BACKGROUND
    assert blue_green["steps"][0]["analysis"] == STEP_ANALYSIS


def test_v1beta1_to_v1alpha1_and_back_keeps_the_analysis() -> None:
    obj = beta(
        {"traffic": "20%", "replicas": "20%", "pause": {}, "analysis": STEP_ANALYSIS}, analysis=BACKGROUND
    )

    down = convert(obj, keys.V1ALPHA1)
    back = convert(down, keys.V1BETA1)

    assert down["spec"]["strategy"]["canary"]["steps"][0]["analysis"] == STEP_ANALYSIS
    assert down["spec"]["strategy"]["canary"]["analysis"] == BACKGROUND
    assert back["spec"]["strategy"]["canary"] == convert(obj, keys.V1BETA1)["spec"]["strategy"]["canary"]
    RolloutV1alpha1.from_obj(down)  # the v1alpha1 model accepts the converted object


def test_v1alpha1_to_v1beta1_and_back_keeps_the_analysis() -> None:
    obj = alpha({"weight": 20, "pause": {}, "analysis": STEP_ANALYSIS}, analysis=BACKGROUND)

    up = convert(obj, keys.V1BETA1)
    back = convert(up, keys.V1ALPHA1)

    assert up["spec"]["strategy"]["canary"]["steps"][0]["analysis"] == STEP_ANALYSIS
    assert up["spec"]["strategy"]["canary"]["analysis"] == BACKGROUND
    assert back["spec"]["strategy"]["canary"]["steps"][0]["analysis"] == STEP_ANALYSIS
    assert back["spec"]["strategy"]["canary"]["analysis"] == BACKGROUND
    Rollout.from_obj(up)


def test_conversion_does_not_share_the_analysis_with_its_input() -> None:
    obj = beta({"replicas": 1, "analysis": STEP_ANALYSIS})
    before = copy.deepcopy(obj)

    out = convert(obj, keys.V1ALPHA1)
    out["spec"]["strategy"]["canary"]["steps"][0]["analysis"]["templates"].clear()

    assert obj == before


@pytest.mark.parametrize("model", [AnalysisTemplate, ClusterAnalysisTemplate])
def test_templates_round_trip(model: type[AnalysisTemplate] | type[ClusterAnalysisTemplate]) -> None:
    obj = copy.deepcopy(TEMPLATE)
    obj["kind"] = model.__name__

    assert model.from_obj(obj).to_obj() == obj


def test_a_template_with_a_bad_duration_or_direction_is_refused() -> None:
    obj = copy.deepcopy(TEMPLATE)
    obj["spec"]["metrics"][0]["interval"] = "30"

    with pytest.raises(ValidationError, match="interval"):
        AnalysisTemplate.from_obj(obj)


def test_zero_counts_of_the_judge_are_written() -> None:
    assert JudgeSide(events=0, total=0, rate=0.0).to_obj() == {"events": 0, "total": 0, "rate": 0.0}


def test_a_run_with_measurements_round_trips() -> None:
    run = {
        "apiVersion": "analysis.graylane.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "demo-1"},
        "spec": {"metrics": TEMPLATE["spec"]["metrics"][:1], "args": [{"name": "service", "value": "echo"}]},
        "status": {
            "phase": "Running",
            "metricResults": [
                {
                    "name": "error-rate",
                    "phase": "Running",
                    "measurements": [
                        {
                            "phase": "Successful",
                            "startedAt": "2026-12-04T10:00:00Z",
                            "finishedAt": "2026-12-04T10:00:01Z",
                            "value": "[0.01]",
                            "metadata": {"query": "sum(rate(errors[1m]))"},
                        }
                    ],
                    "count": 1,
                    "successful": 1,
                }
            ],
            "startedAt": "2026-12-04T10:00:00Z",
        },
    }

    assert AnalysisRun.from_obj(run).to_obj() == run


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0), ("1.5m", 90.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "-1s", "1d", "s", "1m 30s"])
def test_parse_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_duration(text)


def test_parse_decimal_names_the_field_and_range() -> None:
    assert parse_decimal("0.05", low=0, high=0.5, name="alpha") == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"alpha must be between 0 and 0\.5"):
        parse_decimal("0.7", low=0, high=0.5, name="alpha")
    with pytest.raises(ValueError, match="margin must be a decimal"):
        parse_decimal("ten", low=0, high=10, name="margin")
