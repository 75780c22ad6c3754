"""Releases driven by metric analysis on the real cluster: `graylane controller` as a process, a real
Prometheus (Debian's 2.42.0 on 127.0.0.1) scraping an exporter whose v1 answers no errors and v2 10%.

- a step whose analysis fails rolls the release back by itself: the Deployment back on the stable
  template (recorded for `graylane retry`), the release cancelled along Kruise's path, the failing
  metric, query, value and condition in status.message, the Analysis condition and a Warning Event;
- step analyses that pass, with a background analysis beside them, complete the release without a
  person, and the background run is terminated (Successful) at the end;
- a background analysis that fails rolls back while a step waits for a person's approval;
- an unreachable Prometheus errs a bounded number of times, then holds the step for a person (never a
  promotion); approving continues.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graylane.api.abort_record import ABORT_RECORD_ANNOTATION
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually
from tests.unit.analysis.prometheus_fixtures import Exporter, FakeApp, Prometheus, running

ERRORS = (
    'sum(rate(http_requests_total{version="{{args.version}}",code="500"}[5s])) / '
    'sum(rate(http_requests_total{version="{{args.version}}"}[5s]))'
)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    app = FakeApp(error_share={"v1": 0.0, "v2": 0.1})
    stack: Iterator[tuple[Prometheus, Exporter]] = running(tmp_path_factory.mktemp("prom"), app, history=6)
    for server, _ in stack:
        yield server


def template(address: str, *, interval: str = "2s", count: int | None = 2, name: str = "error-rate") -> Obj:
    """Without a count the metric measures until its run is terminated (a background analysis)."""
    metric: Obj = {
        "name": "error-rate",
        "interval": interval,
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": address, "query": ERRORS}},
    }
    if count is not None:
        metric["count"] = count
    return {
        "apiVersion": "analysis.graylane.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"args": [{"name": "version"}], "metrics": [metric]},
    }


def rollout(steps: list[Obj], background: Obj | None = None) -> Obj:
    canary: Obj = {"steps": steps}
    if background is not None:
        canary["analysis"] = background
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }


def analysis(version: str, name: str = "error-rate") -> Obj:
    return {"templates": [{"templateName": name}], "args": [{"name": "version", "value": version}]}


async def given(
    kube: KubeClient, namespace: str, templates: list[Obj], steps: list[Obj], **kw: Any
) -> Release:
    for obj in templates:
        await kube.create(
            r.ANALYSIS_TEMPLATE, {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        )
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=4)
    await rel.given_rollout(rollout(steps, **kw))
    return rel


async def runs(kube: KubeClient, namespace: str) -> list[Obj]:
    return list((await kube.list(r.ANALYSIS_RUN, namespace))["items"])


async def warnings(kube: KubeClient, namespace: str) -> dict[str, str]:
    listed = await kube.list(CORE_EVENT, namespace, field_selector="involvedObject.name=demo")
    return {e["reason"]: e.get("message", "") for e in listed["items"] if e.get("type") == "Warning"}


async def test_a_failing_step_analysis_rolls_the_release_back_with_the_evidence(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess, prometheus: Prometheus
) -> None:
    steps = [{"replicas": 1, "analysis": analysis("v2")}, {"replicas": "100%"}]
    rel = await given(kube, namespace, [template(prometheus.address)], steps)
    await rel.when_image(V2)
    done = await rel.then_completed(succeeded=False, timeout=180)
    await rel.then_pods({V1: 4}, what="every pod back on v1")
    dep = await rel.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    status = done["status"]
    message = status["message"]
    assert message.startswith("Rollout progressing has been cancelled")
    assert 'Metric "error-rate" assessed Failed' in message
    assert "does not meet successCondition 'result[0] < 0.05'" in message
    assert 'http_requests_total{version="v2",code="500"}' in message  # the query as run
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Analysis"]["reason"] == "AnalysisRunFailed"
    assert conditions["Analysis"]["status"] == "False"
    record = json.loads(done["metadata"]["annotations"][ABORT_RECORD_ANNOTATION])
    assert record["release"]["spec"]["containers"][0]["image"] == V2
    found = await eventually(
        lambda: warnings(kube, namespace), lambda w: "AnalysisRunFailed" in w, what="a Warning Event"
    )
    assert "rolling back to the stable revision" in found["AnalysisRunFailed"]
    (run,) = await runs(kube, namespace)
    assert run["status"]["phase"] == "Failed"
    (owner,) = run["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Rollout", "demo", done["metadata"]["uid"])
    measurements = run["status"]["metricResults"][0]["measurements"]
    assert measurements[-1]["phase"] == "Failed"
    assert float(measurements[-1]["value"].strip("[]")) == pytest.approx(0.1, abs=0.03)


async def test_passing_analyses_complete_the_release_without_a_person(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess, prometheus: Prometheus
) -> None:
    steps = [
        {"replicas": 1, "analysis": analysis("v1")},
        {"replicas": 2, "analysis": analysis("v1")},
        {"replicas": "100%"},
    ]
    background = {**analysis("v1", "until-terminated"), "startingStep": 1}
    templates = [
        template(prometheus.address),
        template(prometheus.address, count=None, name="until-terminated"),
    ]
    rel = await given(kube, namespace, templates, steps, background=background)
    await rel.when_image(V2)
    await rel.then_completed(timeout=180)
    await rel.then_pods({V2: 4}, what="every pod on v2")
    seen = await eventually(
        lambda: runs(kube, namespace),
        lambda items: (
            all(i.get("status", {}).get("phase") == "Successful" for i in items) and len(items) == 3
        ),
        what="two step runs and the background run Successful",
    )
    steps_seen = sorted(i["metadata"]["labels"]["analysis.graylane.io/step"] for i in seen)
    assert steps_seen == ["1", "2", "background"]
    (bg,) = [i for i in seen if i["metadata"]["labels"]["analysis.graylane.io/step"] == "background"]
    assert bg["spec"]["terminate"] is True  # stopped at the end of the release, not left measuring


async def test_an_unreachable_prometheus_holds_the_step_for_a_person(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess, tmp_path: Path
) -> None:
    nobody = "http://127.0.0.1:9"  # discard port: nothing listens there
    steps = [{"replicas": 1, "analysis": analysis("v1")}, {"replicas": "100%"}]
    rel = await given(kube, namespace, [template(nobody, interval="1s", count=3)], steps)
    await rel.when_image(V2)
    held = await rel.then_paused_at(1, timeout=120)
    message = held["status"]["message"]
    assert "you need manually confirm to enter the next step" in message
    assert "Error" in message
    assert "consecutiveErrorLimit (4)" in message
    assert "unreachable" in message
    (run,) = await runs(kube, namespace)
    result = run["status"]["metricResults"][0]
    assert (result["phase"], result["error"], result.get("count", 0)) == ("Error", 5, 0)
    await rel.then_pods({V1: 3, V2: 1}, what="still one new pod: never promoted")
    await rel.when_approved()
    await rel.then_completed(timeout=120)


async def test_a_failing_background_analysis_rolls_back_while_a_step_waits_for_approval(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess, prometheus: Prometheus
) -> None:
    steps = [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]
    background = {**analysis("v2", "until-terminated"), "startingStep": 1}
    templates = [template(prometheus.address, count=None, name="until-terminated")]
    rel = await given(kube, namespace, templates, steps, background=background)
    await rel.when_image(V2)
    # The verdict comes at step 1, which waits for a person: before or after its pause shows depends on
    # how fast the machine is, so the test does not wait for the pause, only checks it was never passed.
    done = await rel.then_completed(succeeded=False, timeout=180)
    await rel.then_pods({V1: 4}, what="every pod back on v1")
    assert 'Metric "error-rate" assessed Failed' in done["status"]["message"]
    assert done["status"]["canaryStatus"]["currentStepIndex"] == 1  # never approved past step 1
    (run,) = await runs(kube, namespace)
    assert run["metadata"]["labels"]["analysis.graylane.io/step"] == "background"
    assert run["status"]["phase"] == "Failed"
