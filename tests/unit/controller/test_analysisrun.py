"""The AnalysisRun controller on the runtime, against the FakeApi with a scripted metric provider: each
pass measures what is due, stores every measurement and the verdict, records Argo's Events, counts the
verdict, and asks to be woken when the next measurement falls due; Secrets reach the queries only."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from prometheus_client import CollectorRegistry
from tests.unit.runtime.fakeapi import FakeApi
from tests.unit.runtime.harness import OPTIONS

from graylane.analysis.contract import InstantQuery, MeasurementRequest, Outcome
from graylane.controller.analysisrun import SECRET, AnalysisRunReconciler
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.runtime.loop import ReconcileLoop
from graylane.runtime.manager import Manager
from graylane.telemetry.analysis import AnalysisMetrics

T0 = dt.datetime(2026, 12, 4, 10, 0, 0, tzinfo=dt.UTC)
NS = "ns"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Provider:
    """Answers each request with the next scripted value (a string: an error), recording the queries."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    async def measure(self, request: MeasurementRequest) -> Outcome:
        assert isinstance(request.query, InstantQuery)
        self.queries.append(request.query.query)
        answer = self.answers.pop(0)
        at = request.query.time
        if isinstance(answer, str):
            return Outcome(request, at, at, error=answer)
        return Outcome(request, at, at, value=answer)


def analysis_run(name: str = "demo-1", args: list[Obj] | None = None, query: str = "errors") -> Obj:
    metric = {
        "name": "error-rate",
        "interval": "10s",
        "count": 2,
        "successCondition": "result[0] < 0.05",
        "provider": {"prometheus": {"address": "http://prometheus:9090", "query": query}},
    }
    return {
        "apiVersion": "analysis.graylane.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name, "namespace": NS, "labels": {"analysis.graylane.io/step": "1"}},
        "spec": {"metrics": [metric], "args": args or []},
    }


@asynccontextmanager
async def running(
    api: FakeApi, provider: Provider, clock: Clock
) -> AsyncIterator[tuple[ReconcileLoop[Any, Any], CollectorRegistry]]:
    registry = CollectorRegistry()
    manager = Manager(cast(KubeClient, api), OPTIONS, own_client=False, registry=registry)
    metrics = AnalysisMetrics(registry, manager.informer(r.ANALYSIS_RUN).list)
    loop: ReconcileLoop[Any, Any] = ReconcileLoop(
        AnalysisRunReconciler(provider, clock=clock, metrics=metrics)
    )
    manager.add(loop)
    async with manager.caches():
        yield loop, registry


async def settle(api: FakeApi, loop: ReconcileLoop[Any, Any]) -> None:
    informer = loop._primary
    assert informer is not None
    last = max((v for v, _, _ in api.log.get("analysisruns", [])), default=0)
    for _ in range(2000):
        if int(informer._version or 0) >= last:
            return
        await asyncio.sleep(0)
    raise AssertionError("the informer did not catch up")


def events(api: FakeApi) -> list[tuple[str, str]]:
    return [
        (o.get("reason", ""), o.get("note", "") or o.get("message", ""))
        for (plural, _, _), o in api.objects.items()
        if plural == "events"
    ]


async def test_measures_on_schedule_stores_every_measurement_and_the_verdict() -> None:
    api, clock = FakeApi(), Clock()
    api.put(r.ANALYSIS_RUN, analysis_run())
    provider = Provider([(0.01,), (0.2,)])
    async with running(api, provider, clock) as (loop, registry):
        await settle(api, loop)
        requeue = await loop.reconcile(f"{NS}/demo-1")
        assert requeue == 10.0  # the interval, from the measurement just taken
        stored = api.stored(r.ANALYSIS_RUN, "demo-1")
        assert stored is not None
        status = stored["status"]
        assert status["phase"] == "Running"
        assert [m["value"] for m in status["metricResults"][0]["measurements"]] == ["[0.01]"]
        # Nothing due before the interval: no query, no write.
        await settle(api, loop)
        clock.now = T0 + dt.timedelta(seconds=5)
        writes = len(api.calls)
        assert await loop.reconcile(f"{NS}/demo-1") == 5.0
        assert len(api.calls) == writes
        assert len(provider.queries) == 1
        clock.now = T0 + dt.timedelta(seconds=10)
        assert await loop.reconcile(f"{NS}/demo-1") is None
        stored = api.stored(r.ANALYSIS_RUN, "demo-1")
        assert stored is not None
        assert stored["status"]["phase"] == "Failed"
        assert "does not meet successCondition 'result[0] < 0.05'" in stored["status"]["message"]
        assert "query: errors" in stored["status"]["message"]
        reasons = [reason for reason, _ in events(api)]
        assert "Failed" in reasons
        sample = registry.get_sample_value(
            "graylane_analysis_run_verdicts_total", {"namespace": NS, "phase": "Failed", "kind": "step"}
        )
        assert sample == 1.0
        # A completed run is not measured again.
        await settle(api, loop)
        clock.now = T0 + dt.timedelta(seconds=60)
        assert await loop.reconcile(f"{NS}/demo-1") is None
        assert len(provider.queries) == 2
        assert (
            registry.get_sample_value("graylane_analysis_runs", {"namespace": NS, "phase": "Failed"}) == 1.0
        )


async def test_a_secret_argument_reaches_the_query_and_never_the_status() -> None:
    api, clock = FakeApi(), Clock()
    token = base64.b64encode(b"s3cret").decode()
    api.put(SECRET, {"metadata": {"name": "creds", "namespace": NS}, "data": {"token": token}})
    arg = {"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
    api.put(r.ANALYSIS_RUN, analysis_run(args=[arg], query='errors{t="{{args.token}}"}'))
    provider = Provider([(0.01,)])
    async with running(api, provider, clock) as (loop, _):
        await settle(api, loop)
        await loop.reconcile(f"{NS}/demo-1")
    assert provider.queries == ['errors{t="s3cret"}']
    stored = api.stored(r.ANALYSIS_RUN, "demo-1")
    assert stored is not None
    assert "s3cret" not in str(stored)
    assert stored["status"]["metricResults"][0]["measurements"][0]["metadata"]["query"] == 'errors{t="*****"}'


async def test_a_secret_that_cannot_be_read_is_an_error_measurement() -> None:
    api, clock = FakeApi(), Clock()
    arg = {"name": "token", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "token"}}}
    api.put(r.ANALYSIS_RUN, analysis_run(args=[arg], query='errors{t="{{args.token}}"}'))
    provider = Provider([])
    async with running(api, provider, clock) as (loop, _):
        await settle(api, loop)
        await loop.reconcile(f"{NS}/demo-1")
    assert provider.queries == []
    stored = api.stored(r.ANALYSIS_RUN, "demo-1")
    assert stored is not None
    (measurement,) = stored["status"]["metricResults"][0]["measurements"]
    assert measurement["phase"] == "Error"
    assert "Secret ns/gone key 'token' (argument 'token'): 404" in measurement["message"]
