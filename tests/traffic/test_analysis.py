"""Issue 12's acceptance on real traffic: releases that promote or roll back by themselves.

A real Prometheus (Debian's 2.42.0) runs inside the lab's namespace and scrapes the fake app's
per-version counters and Traefik's per-backend counters every second; a bounded background client sends
a request every 20 ms through Traefik's ingress-nginx entryPoint, so every answer (and every error the
new version returns) passes through the gateway graylane routes. Each scenario prints its timings:
- v2 returns 10% errors: the first analysed step fails and the release is rolled back by itself;
- v2 returns none: every analysed step passes and the release completes without a person;
- Prometheus stopped mid-analysis: bounded retries, then the step holds for a person, never promoted;
- the statistical judge on the 10%-errors release (canary against stable, sequential test);
- measured exposure: the canary Ingress removed by hand (the gateway then ignores the weight), the step
  holds with the observed split in status, and goes on once the Ingress is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.integration.release_dsl import Release
from tests.traffic.apps import NGINX_ONLY, V1, V2, deploy_app, nginx_host, rollout
from tests.traffic.figures import Figures
from tests.traffic.probes import nginx_door, only, until_traffic

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab import gateways as gw
from graylane.trafficlab.client import Stream, Tally
from graylane.trafficlab.lab import TrafficLab

TEST = "analysis"
PREFIX = "trafficlab.graylane.io/"
DEADLINE = 240.0  # seconds any one wait may take on a loaded machine


@pytest.fixture
def prometheus(lab: TrafficLab) -> Iterator[str]:
    address = lab.start_prometheus()
    try:
        yield address
    finally:
        lab.stop_child("prometheus")


# -- templates ---------------------------------------------------------------------------------------


CANARY, STABLE, WINDOW = "{{args.canary}}", "{{args.stable}}", "[{{window}}]"


def template(name: str, metrics: list[Obj], args: tuple[str, ...] = ()) -> Obj:
    return {
        "apiVersion": "analysis.graylane.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"args": [{"name": a} for a in args], "metrics": metrics},
    }


def requests(version: str, code: str = "") -> str:
    codes = f',code=~"{code}"' if code else ""
    return 'http_requests_total{namespace="{{args.namespace}}",version="' + version + '"' + codes + "}"


def error_rate(address: str) -> Obj:
    """Argo's classic: the canary's share of 5xx over the last 20 s below 5%."""
    errors, total = requests(CANARY, "5.."), requests(CANARY)
    query = f"sum(increase({errors}[20s])) / sum(increase({total}[20s]))"
    metric = {
        "name": "error-rate",
        "initialDelay": "10s",
        "interval": "5s",
        "count": 3,
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": address, "query": query}},
    }
    return template("error-rate", [metric], ("namespace", "canary"))


def judge(address: str) -> Obj:
    """The statistical judge: the canary's error rate against the stable's over the same windows."""

    def side(version: str) -> Obj:
        errors, total = requests(version, "5.."), requests(version)
        return {"events": f"sum(increase({errors}{WINDOW}))", "total": f"sum(increase({total}{WINDOW}))"}

    metric = {
        "name": "errors-judged",
        "interval": "5s",
        "count": 24,
        "provider": {
            "judge": {
                "address": address,
                "margin": "0.1",
                "counts": {"canary": side(CANARY), "stable": side(STABLE)},
            }
        },
    }
    return template("judge", [metric], ("namespace", "canary", "stable"))


def exposure(address: str, namespace: str) -> Obj:
    """Traefik's own count per backend: the production Ingress' Service and its canary twin."""
    backend = f"{namespace}-demo-demo-80"
    canary = f'traefik_service_requests_total{{service="{backend}-canary@kubernetesingressnginx"}}'
    total = f'traefik_service_requests_total{{service=~"{backend}(-canary)?@kubernetesingressnginx"}}'
    metric = {
        "name": "exposure",
        "interval": "5s",
        "count": 2,
        "provider": {
            "exposure": {
                "address": address,
                "canary": f"sum(increase({canary}{WINDOW})) or vector(0)",
                "total": f"sum(increase({total}{WINDOW}))",
                "window": "20s",
                "tolerance": "5",
                "minRequests": 100,
            }
        },
    }
    return template("exposure", [metric])


def analysis(name: str, namespace: str) -> Obj:
    args = {"namespace": namespace, "canary": "v2", "stable": "v1"}
    return {"templates": [{"templateName": name}], "args": [{"name": k, "value": v} for k, v in args.items()]}


# -- the release --------------------------------------------------------------------------------------


class Timeline:
    """Polls the Rollout every 100 ms (bounded) and remembers when each thing was first seen."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.seen: dict[str, float] = {}
        self.last: Obj = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Timeline:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self, max_seconds: float = 900) -> None:
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            ro = await self.kube.get(r.ROLLOUT, "demo", self.namespace)
            self.last = ro
            status = ro.get("status") or {}
            sub = status.get("canaryStatus") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            marks = [f"step {sub.get('currentStepIndex')} {sub.get('currentStepState')}"]
            marks += [f"Analysis {c['reason']}" for t, c in conditions.items() if t == "Analysis"]
            marks += (
                [f"Progressing {conditions['Progressing']['reason']}"] if "Progressing" in conditions else []
            )
            for mark in marks:
                self.seen.setdefault(mark, time.monotonic())
            await asyncio.sleep(0.1)

    async def until(self, mark: str, timeout: float = DEADLINE) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if mark in self.seen:
                return self.seen[mark]
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"the Rollout never showed {mark!r} in {timeout:.0f}s; last: {self.last.get('status')}"
        )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def given_app(lab: TrafficLab, namespace: str, steps: list[Obj], templates: list[Obj]) -> Release:
    assert lab.kube is not None
    kube = lab.kube
    for obj in templates:
        body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        await kube.create(r.ANALYSIS_TEMPLATE, body)
    await deploy_app(kube, namespace, nginx=True, route=False)
    rel = Release(kube, namespace)
    await rel.then_pods({V1: 5}, what="5 v1 pods")
    await until_traffic(nginx_door(host=nginx_host(namespace)), only(V1), what="v1 answering", timeout=90)
    await rel.given_rollout(rollout(steps, NGINX_ONLY))
    return rel


async def release_v2(kube: KubeClient, namespace: str, error_rate_share: str = "0") -> None:
    """v2, with the share of its answers that fail set on the pod template (it travels with v2)."""
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {PREFIX + "error-rate": error_rate_share}},
                "spec": {"containers": [{"name": "main", "image": V2}]},
            }
        }
    }
    await kube.patch(r.DEPLOYMENT, "demo", patch, namespace, patch_type="strategic")


def stream(namespace: str) -> Stream:
    client = Stream(gw.NGINX_PORT, headers={"Host": nginx_host(namespace)}, interval=0.02, max_seconds=900)
    client.start()
    return client


def after(tally: Tally, moment: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in tally.answers:
        if answer.at > moment:
            key = "HTTP 500" if answer.status == 500 else str(answer.body.get("image"))
            counts[key] = counts.get(key, 0) + 1
    return counts


async def runs(kube: KubeClient, namespace: str) -> list[Obj]:
    return list((await kube.list(r.ANALYSIS_RUN, namespace))["items"])


# -- the scenarios -----------------------------------------------------------------------------------


def scenario(lab: TrafficLab, body: Callable[..., Any], *args: Any) -> None:
    lab.run(body(lab, *args), timeout=1200)


def test_ten_percent_errors_roll_back_at_the_first_analysed_step(
    lab: TrafficLab, namespace: str, prometheus: str, figures: Figures
) -> None:
    scenario(lab, _rolled_back, namespace, figures, error_rate(prometheus), "error-rate", "threshold")


def test_the_judge_rolls_back_ten_percent_errors(
    lab: TrafficLab, namespace: str, prometheus: str, figures: Figures
) -> None:
    scenario(lab, _rolled_back, namespace, figures, judge(prometheus), "judge", "judge")


async def _rolled_back(
    lab: TrafficLab, namespace: str, figures: Figures, obj: Obj, name: str, kind: str
) -> None:
    assert lab.kube is not None
    kube = lab.kube
    steps = [
        {"traffic": "20%", "replicas": 1, "analysis": analysis(name, namespace)},
        {"traffic": "50%", "replicas": 2, "analysis": analysis(name, namespace)},
        {"replicas": "100%"},
    ]
    rel = await given_app(lab, namespace, steps, [obj])
    client = stream(namespace)
    timeline = Timeline(kube, namespace).start()
    try:
        await release_v2(kube, namespace, "0.1")
        began = await timeline.until("step 1 StepMetricsAnalysis")
        failed = await timeline.until("Analysis AnalysisRunFailed")
        done = await rel.then_completed(succeeded=False, timeout=DEADLINE)
        cancelled = time.monotonic()
        back = await until_traffic(
            nginx_door(host=nginx_host(namespace)), only(V1), what="v1 only", timeout=90
        )
        await rel.then_pods({V1: 5}, what="5 v1 pods after the rollback", timeout=120)
        await asyncio.sleep(2)
    finally:
        tally = await client.stop()
        timeline.stop()
    assert "step 2 StepMetricsAnalysis" not in timeline.seen, "the release went past the first analysed step"
    message = done["status"]["message"]
    assert message.startswith("Rollout progressing has been cancelled")
    assert "Failed" in message
    (run,) = await runs(kube, namespace)
    assert run["status"]["phase"] == "Failed"
    late = after(tally, back)
    assert late, "requests were answered after the rollback"
    assert set(late) == {V1}, f"only v1 answers after the rollback: {late}"
    errors = sum(1 for a in tally.answers if a.status == 500)
    assert errors > 0, "v2 returned errors through the gateway"
    last_v2 = max(a.at for a in tally.answers if a.status == 500 or a.body.get("image") == V2)
    marks = {mark: round(at - began, 1) for mark, at in sorted(timeline.seen.items(), key=lambda i: i[1])}
    figures.add(
        TEST,
        f"{kind}: 10% errors rolled back at step 1 - from the start of the step's analysis: verdict "
        f"Failed {failed - began:.1f} s, last answer from v2 {last_v2 - began:.1f} s, release cancelled "
        f"(Healthy, Succeeded=False) {cancelled - began:.1f} s; {len(tally):,} requests, {errors} HTTP 500 "
        f"(all from v2, before the rollback); evidence: {message[:160]}",
        kind=kind,
        verdict_seconds=round(failed - began, 2),
        last_v2_answer_seconds=round(last_v2 - began, 2),
        cancelled_seconds=round(cancelled - began, 2),
        traffic_back_seconds=round(back - began, 2),
        timeline=marks,
        requests=len(tally),
        errors=errors,
    )


def test_no_errors_complete_the_release_without_a_person(
    lab: TrafficLab, namespace: str, prometheus: str, figures: Figures
) -> None:
    scenario(lab, _completed, namespace, figures, prometheus)


async def _completed(lab: TrafficLab, namespace: str, figures: Figures, prometheus: str) -> None:
    assert lab.kube is not None
    kube = lab.kube
    steps = [
        {"traffic": "20%", "replicas": 1, "analysis": analysis("error-rate", namespace)},
        {"traffic": "50%", "replicas": 2, "analysis": analysis("error-rate", namespace)},
        {"replicas": "100%"},
    ]
    rel = await given_app(lab, namespace, steps, [error_rate(prometheus)])
    client = stream(namespace)
    timeline = Timeline(kube, namespace).start()
    try:
        started = time.monotonic()
        await release_v2(kube, namespace)
        await rel.then_completed(timeout=DEADLINE * 2)
        finished = time.monotonic()
        await until_traffic(nginx_door(host=nginx_host(namespace)), only(V2), what="v2 only", timeout=90)
    finally:
        tally = await client.stop()
        timeline.stop()
    found = await runs(kube, namespace)
    assert sorted(r_["status"]["phase"] for r_ in found) == ["Successful", "Successful"]
    assert not tally.failures, f"no request failed: {tally.failures[:3]}"
    figures.add(
        TEST,
        f"0% errors: completed without a person in {finished - started:.1f} s (2 analysed steps, "
        f"3 measurements each); {tally.describe()}",
        seconds=round(finished - started, 2),
        requests=len(tally),
    )


def test_prometheus_stopped_mid_analysis_holds_and_never_promotes(
    lab: TrafficLab, namespace: str, prometheus: str, figures: Figures
) -> None:
    scenario(lab, _prometheus_stopped, namespace, figures, prometheus)


async def _prometheus_stopped(lab: TrafficLab, namespace: str, figures: Figures, prometheus: str) -> None:
    assert lab.kube is not None
    kube = lab.kube
    metric = error_rate(prometheus)
    metric["spec"]["metrics"][0]["count"] = 6
    steps = [
        {"traffic": "20%", "replicas": 1, "analysis": analysis("error-rate", namespace)},
        {"replicas": "100%"},
    ]
    rel = await given_app(lab, namespace, steps, [metric])
    client = stream(namespace)
    timeline = Timeline(kube, namespace).start()
    try:
        await release_v2(kube, namespace)

        async def measured() -> bool:
            items = await runs(kube, namespace)
            results = [(i.get("status") or {}).get("metricResults") or [] for i in items]
            return any(int(m.get("successful") or 0) >= 1 for rs in results for m in rs)

        deadline = time.monotonic() + DEADLINE
        while not await measured():
            assert time.monotonic() < deadline, "no successful measurement"
            await asyncio.sleep(0.2)
        stopped = time.monotonic()
        lab.stop_child("prometheus")
        held = await rel.then_paused_at(1, timeout=DEADLINE)
        paused = time.monotonic()
        await asyncio.sleep(20)  # held: never promoted while nobody looks
        still = await rel.rollout()
        await rel.then_pods({V1: 5, V2: 1}, what="still one canary pod")
        approved = time.monotonic()
        await rel.when_approved()  # a person decides
        await rel.then_completed(timeout=DEADLINE)
    finally:
        await client.stop()
        timeline.stop()
    message = held["status"]["message"]
    assert "you need manually confirm to enter the next step" in message
    assert "unreachable" in message
    assert "consecutiveErrorLimit (4)" in message
    sub = still["status"]["canaryStatus"]
    assert (sub["currentStepIndex"], sub["currentStepState"]) == (1, "StepPaused")
    assert timeline.seen.get("step 2 StepUpgrade", approved) >= approved, "promoted before the approval"
    figures.add(
        TEST,
        f"Prometheus stopped mid-analysis: held for a person {paused - stopped:.1f} s later (5 errors in a "
        f"row, Error = inconclusive), still at step 1 20 s on; approved, then completed",
        held_seconds=round(paused - stopped, 2),
    )


def test_a_gateway_ignoring_the_weight_holds_the_step_with_the_observed_split(
    lab: TrafficLab, namespace: str, prometheus: str, figures: Figures
) -> None:
    scenario(lab, _exposure, namespace, figures, prometheus)


async def _exposure(lab: TrafficLab, namespace: str, figures: Figures, prometheus: str) -> None:
    assert lab.kube is not None
    kube = lab.kube
    steps = [
        {"traffic": "20%", "replicas": 1, "analysis": analysis("exposure", namespace)},
        {"replicas": "100%"},
    ]
    rel = await given_app(lab, namespace, steps, [exposure(prometheus, namespace)])
    client = stream(namespace)
    timeline = Timeline(kube, namespace).start()
    try:
        await release_v2(kube, namespace)
        began = await timeline.until("step 1 StepMetricsAnalysis")
        canary = await kube.get(r.INGRESS, "demo-canary", namespace)
        await kube.delete(r.INGRESS, "demo-canary", namespace)  # by hand: the gateway now ignores the weight
        removed = time.monotonic()
        held_at = await timeline.until("Analysis ExposureMismatch")
        # Held look after look, never promoted while the split is off.
        deadline = time.monotonic() + DEADLINE
        while True:
            items = await runs(kube, namespace)
            result = ((items[0].get("status") or {}).get("metricResults") or [{}])[0] if items else {}
            if int(result.get("inconclusive") or 0) >= 3:
                break
            assert time.monotonic() < deadline, f"fewer than 3 exposure looks: {result}"
            await asyncio.sleep(0.5)
        held = await rel.rollout()
        # The canary Ingress back as graylane wrote it: the split is right again and the step goes on.
        meta = canary["metadata"]
        restored = {
            **canary,
            "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta},
        }
        await kube.create(r.INGRESS, restored)
        back = time.monotonic()
        await rel.then_completed(timeout=DEADLINE)
        finished = time.monotonic()
    finally:
        tally = await client.stop()
        timeline.stop()
    status = held["status"]
    sub = status["canaryStatus"]
    assert (sub["currentStepIndex"], sub["currentStepState"]) == (1, "StepMetricsAnalysis")
    assert "observed split differs from the step's: canary 0.0%" in status["message"]
    assert "intended 20% +- 5" in status["message"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Analysis"]["reason"] == "ExposureMismatch"
    during = [a for a in tally.answers if removed + 3 < a.at < back]
    assert during, "requests were sent while the Ingress was gone"
    assert {str(a.body.get("image")) for a in during} == {V1}, "the gateway sent nothing to the canary"
    figures.add(
        TEST,
        f"exposure: canary Ingress removed {removed - began:.1f} s into the analysis; held "
        f"{held_at - removed:.1f} s later with the split in status ({status['message'][-110:]}); "
        f"{len(during)} requests meanwhile all v1: {sorted({str(a.body.get('image')) for a in during})}; "
        f"Ingress restored -> completed {finished - back:.1f} s later",
        held_seconds=round(held_at - removed, 2),
        resumed_seconds=round(finished - back, 2),
    )
