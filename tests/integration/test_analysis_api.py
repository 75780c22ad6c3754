"""analysis.graylane.io on the real API server: CRDs, objects, kubectl explain, the Rollout's fields."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from graylane.api.analysis import AnalysisRun, AnalysisTemplate
from graylane.cluster.build import Versions, binaries
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.resources import Resource
from tests.integration.webhook_fixtures import (  # noqa: F401
    InstalledGraylane,
    webhook_mutator,
    webhook_server,
    webhooks_in_process,
)

pytestmark = pytest.mark.usefixtures("controller_stopped", "webhooks_in_process")

GROUP = "analysis.graylane.io"
TEMPLATE = Resource(GROUP, "v1alpha1", "analysistemplates", "AnalysisTemplate")
CLUSTER_TEMPLATE = Resource(
    GROUP, "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", namespaced=False
)
RUN = Resource(GROUP, "v1alpha1", "analysisruns", "AnalysisRun")
Obj = dict[str, Any]

METRICS = [
    {
        "name": "error-rate",
        "interval": "30s",
        "count": 5,
        "successCondition": "result[0] < 0.05",
        "failureLimit": 1,
        "provider": {"prometheus": {"address": "http://127.0.0.1:9090", "query": "sum(rate(e[1m]))"}},
    },
    {
        "name": "judge",
        "interval": "1m",
        "count": "{{args.looks}}",
        "provider": {
            "judge": {
                "address": "http://127.0.0.1:9090",
                "counts": {
                    "canary": {"events": "e2", "total": "t2"},
                    "stable": {"events": "e1", "total": "t1"},
                },
                "margin": "0.1",
                "earlyStop": False,
            }
        },
    },
]
ANALYSIS = {
    "templates": [{"templateName": "error-rate"}],
    "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
}


def template(kind: str, name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "args": [{"name": "looks", "value": "10"}],
            "metrics": METRICS,
            "dryRun": [{"metricName": "judge"}],
        },
    }


def rollout(version: str) -> Obj:
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    if version == "v1beta1":
        steps: list[Obj] = [
            {"replicas": 1, "pause": {}, "analysis": ANALYSIS},
            {"replicas": "100%", "pause": {}},
        ]
        spec: Obj = {
            "workloadRef": workload,
            "strategy": {"canary": {"steps": steps, "analysis": {**ANALYSIS, "startingStep": 1}}},
        }
    else:
        steps = [{"weight": 20, "pause": {}, "analysis": ANALYSIS}, {"weight": 100, "pause": {}}]
        spec = {
            "objectRef": {"workloadRef": workload},
            "strategy": {"canary": {"steps": steps, "analysis": ANALYSIS}},
        }
    return {
        "apiVersion": f"rollouts.kruise.io/{version}",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": spec,
    }


async def kubectl(kubeconfig: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(binaries(Versions())["kubectl"]),
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_the_three_crds_are_established(kube: KubeClient) -> None:
    for plural, scope in (
        ("analysistemplates", "Namespaced"),
        ("clusteranalysistemplates", "Cluster"),
        ("analysisruns", "Namespaced"),
    ):
        crd = await kube.get(r.CRD, f"{plural}.{GROUP}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert crd["spec"]["scope"] == scope


async def test_templates_are_stored_as_written(kube: KubeClient, namespace: str) -> None:
    cluster_name = f"cat-{uuid.uuid4().hex[:8]}"
    created = await kube.create(TEMPLATE, template("AnalysisTemplate", "error-rate"), namespace)
    await kube.create(CLUSTER_TEMPLATE, template("ClusterAnalysisTemplate", cluster_name))
    try:
        cluster = await kube.get(CLUSTER_TEMPLATE, cluster_name)

        expected = template("AnalysisTemplate", "error-rate")["spec"]
        expected["metrics"][1]["provider"]["judge"]["alpha"] = "0.05"  # the CRD's default
        assert created["spec"] == expected
        assert cluster["spec"] == created["spec"]
        assert AnalysisTemplate.from_obj(created).spec.metrics[1].provider.judge is not None
    finally:
        await kube.delete(CLUSTER_TEMPLATE, cluster_name)


async def test_the_schema_refuses_a_bad_duration_naming_the_field(kube: KubeClient, namespace: str) -> None:
    bad = template("AnalysisTemplate", "bad")
    bad["spec"]["metrics"] = [{**METRICS[0], "interval": "30"}]

    with pytest.raises(ApiError) as caught:
        await kube.create(TEMPLATE, bad, namespace)

    assert caught.value.code == 422
    assert "spec.metrics[0].interval" in str(caught.value)


async def test_a_run_keeps_every_measurement_and_the_judges_numbers(kube: KubeClient, namespace: str) -> None:
    spec = {"metrics": METRICS[:1]}
    await kube.create(
        RUN,
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": "run-1"},
            "spec": spec,
        },
        namespace,
    )
    measurement = {
        "phase": "Inconclusive",
        "startedAt": "2026-12-04T10:00:00Z",
        "finishedAt": "2026-12-04T10:00:01Z",
        "value": "Undecided: canary 3/500 (0.600%)",
        "metadata": {"query": "sum(rate(e[1m]))", "window": "2026-12-04T09:59:00Z/2026-12-04T10:00:00Z"},
        "judge": {
            "verdict": "Undecided",
            "look": 1,
            "canary": {"events": 3, "total": 500, "rate": 0.006},
            "stable": {"events": 0, "total": 2000, "rate": 0.0},
            "tests": [{"name": "conditional-binomial", "pValue": 0.8125, "threshold": 0.05}],
            "effects": [{"name": "rate ratio (canary / stable)", "lower": 0.41, "confidence": 0.95}],
        },
    }
    status = {
        "phase": "Running",
        "startedAt": "2026-12-04T09:59:00Z",
        "metricResults": [
            {
                "name": "error-rate",
                "phase": "Running",
                "measurements": [measurement],
                "count": 1,
                "inconclusive": 1,
            }
        ],
    }

    await kube.patch(RUN, "run-1", {"status": status}, namespace, subresource="status")
    stored = await kube.get(RUN, "run-1", namespace)

    assert stored["status"] == status
    assert AnalysisRun.from_obj(stored).to_obj()["status"] == status
    out = await kube.get(RUN, "run-1", namespace)
    assert out["status"]["metricResults"][0]["measurements"][0]["judge"]["tests"][0]["pValue"] == 0.8125


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("analysistemplates.spec.metrics.provider.judge.alpha", "False-alarm rate"),
        ("analysistemplates.spec.metrics.failureLimit", "Failed measurements tolerated"),
        ("analysisruns.status.metricResults.measurements", "The latest measurements"),
        ("clusteranalysistemplates", "usable from every namespace"),
        ("rollouts.spec.strategy.canary.steps.analysis", "metric analysis this step waits for"),
    ],
)
async def test_kubectl_explain_documents_the_fields(kubeconfig: Path, field: str, words: str) -> None:
    out = await kubectl(kubeconfig, "explain", field)

    assert words in " ".join(out.split())


@pytest.mark.parametrize(("write", "read"), [("v1beta1", "v1alpha1"), ("v1alpha1", "v1beta1")])
async def test_the_rollout_analysis_survives_conversion(
    kube: KubeClient, namespace: str, write: str, read: str
) -> None:
    resources = {"v1beta1": r.ROLLOUT, "v1alpha1": r.ROLLOUT_V1ALPHA1}

    await kube.create(resources[write], rollout(write), namespace)
    other = await kube.get(resources[read], "demo", namespace)

    canary = other["spec"]["strategy"]["canary"]
    assert canary["steps"][0]["analysis"] == ANALYSIS
    assert {k: v for k, v in canary["analysis"].items() if k != "startingStep"} == ANALYSIS


async def test_the_webhook_refuses_a_bad_analysis_with_field_paths(kube: KubeClient, namespace: str) -> None:
    bad = rollout("v1beta1")
    # The schema accepts an empty list and a repeated name; graylane's webhook does not.
    bad["spec"]["strategy"]["canary"]["steps"][0]["analysis"] = {
        "templates": [],
        "args": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
    }
    bad["spec"]["strategy"]["canary"]["analysis"] = {**ANALYSIS, "startingStep": 7}

    with pytest.raises(ApiError) as caught:
        await kube.create(r.ROLLOUT, bad, namespace)

    message = str(caught.value)
    assert 'admission webhook "vrollout.kb.io" denied the request' in message
    assert "Spec.Strategy.Canary.Steps[0].Analysis.Templates: Required value" in message
    assert 'Spec.Strategy.Canary.Steps[0].Analysis.Args[1].Name: Duplicate value: "a"' in message
    assert "Spec.Strategy.Canary.Analysis.StartingStep: Invalid value: 7" in message
