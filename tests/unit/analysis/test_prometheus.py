"""The Prometheus provider against a real Prometheus 2.42.0 on 127.0.0.1 (see prometheus_fixtures)."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graylane.analysis import assess
from graylane.analysis.contract import (
    CountsQuery,
    InstantQuery,
    MeasurementRequest,
    Samples,
    SamplesQuery,
    Share,
    ShareQuery,
)
from graylane.analysis.planner import plan_run, with_status
from graylane.analysis.providers import ErrorKind, PrometheusClient, PrometheusError, PrometheusProvider
from graylane.api.analysis import AnalysisPhase, AnalysisRun, JudgeVerdict

from .builders import prometheus_metric
from .prometheus_fixtures import Exporter, FakeApp, Prometheus, free_port, running

V1_ERRORS = 'sum(increase(http_requests_total{version="v1",code="500"}[{{window}}]))'
V1_TOTAL = 'sum(increase(http_requests_total{version="v1"}[{{window}}]))'
V2_ERRORS = 'sum(increase(http_requests_total{version="v2",code="500"}[{{window}}]))'
V2_TOTAL = 'sum(increase(http_requests_total{version="v2"}[{{window}}]))'
VERDICT_DEADLINE = 120.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, Exporter]]:
    # v2 answers 10% errors, v1 none: the acceptance scenario's data.
    app = FakeApp(error_share={"v1": 0.0, "v2": 0.1}, latency_median={"v1": 0.1, "v2": 0.1})
    # 8 scrapes stored before the first test, so 6-second windows have data.
    yield from running(tmp_path_factory.mktemp("prometheus"), app, history=8)


@pytest.fixture
async def client() -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient() as prometheus_client:
        yield prometheus_client


def now() -> datetime:
    return datetime.now(UTC)


def instant(address: str, query: str, timeout: float = 10.0) -> MeasurementRequest:
    return MeasurementRequest("m", InstantQuery(address, query, now(), timeout), shown_query=query)


async def test_an_instant_vector_and_a_scalar(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack

    vector = await client.query(
        prometheus.address, "sum by (version) (http_requests_total)", time=now(), timeout=10
    )
    scalar = await client.query(
        prometheus.address, 'scalar(sum(http_requests_total{version="v1"}))', time=now(), timeout=10
    )

    assert sorted(series.labels["version"] for series in vector.vector) == ["v1", "v2"]
    assert all(value > 0 for value in vector.values)  # type: ignore[union-attr]
    assert scalar.scalar is not None
    assert scalar.scalar > 0


async def test_a_threshold_measurement_end_to_end(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack
    provider = PrometheusProvider(client)
    query = (
        'sum(rate(http_requests_total{version="v2",code="500"}[5s]))'
        ' / sum(rate(http_requests_total{version="v2"}[5s]))'
    )
    metric = prometheus_metric(successCondition="result[0] < 0.05")

    outcome = await provider.measure(instant(prometheus.address, query))
    measurement = assess.threshold_measurement(metric, outcome)

    assert outcome.error == ""
    assert isinstance(outcome.value, tuple)
    assert outcome.value[0] == pytest.approx(0.1, abs=0.02)
    assert measurement.phase is AnalysisPhase.FAILED
    condition = "successCondition 'result[0] < 0.05'"
    assert measurement.message == f"value [{outcome.value[0]!r}] does not meet {condition}"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('http_requests_total{version="nope"}', "no data"),
        ("vector(0) / vector(0)", "NaN or infinite"),
    ],
)
async def test_missing_data_from_a_real_prometheus_is_an_error(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient, query: str, message: str
) -> None:
    prometheus, _ = stack

    outcome = await PrometheusProvider(client).measure(instant(prometheus.address, query))
    measurement = assess.threshold_measurement(
        prometheus_metric(successCondition="len(result) == 0 || result[0] < 1"), outcome
    )

    assert measurement.phase is AnalysisPhase.ERROR
    assert message in measurement.message


@pytest.mark.parametrize(
    ("query", "message"),
    [("sum(", "Prometheus query error (bad_data)"), ("http_requests_total[1m]", "range vector")],
)
async def test_query_errors_are_typed(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient, query: str, message: str
) -> None:
    prometheus, _ = stack

    with pytest.raises(PrometheusError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        await client.query(prometheus.address, query, time=now(), timeout=10)

    assert caught.value.kind is ErrorKind.QUERY


async def test_a_range_query_returns_every_point(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack
    end = now()

    series = await client.query_range(
        prometheus.address,
        "request_latency_seconds",
        start=end - timedelta(seconds=5),
        end=end,
        step=1,
        timeout=10,
    )

    assert {s.labels["version"] for s in series} == {"v1", "v2"}
    assert all(len(s.values) >= 2 for s in series)


async def test_the_judge_fetch_reads_both_versions_over_one_window(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack
    provider = PrometheusProvider(client)
    window = "6s"
    counts = CountsQuery(
        prometheus.address,
        V2_ERRORS.replace("{{window}}", window),
        V2_TOTAL.replace("{{window}}", window),
        V1_ERRORS.replace("{{window}}", window),
        V1_TOTAL.replace("{{window}}", window),
        now(),
        10.0,
    )
    end = now()
    samples = SamplesQuery(
        prometheus.address,
        'request_latency_seconds{version="v2"}',
        'request_latency_seconds{version="v1"}',
        end - timedelta(seconds=6),
        end,
        1.0,
        10.0,
    )

    count_outcome = await provider.measure(MeasurementRequest("judge", counts, look=1))
    sample_outcome = await provider.measure(MeasurementRequest("judge", samples, look=1))

    value = count_outcome.value
    assert count_outcome.error == ""
    assert value is not None
    assert not isinstance(value, float | tuple | Samples)
    assert value.canary_total > 100
    assert value.canary_events / value.canary_total == pytest.approx(0.1, abs=0.03)
    assert value.stable_events == 0
    assert isinstance(sample_outcome.value, Samples)
    assert len(sample_outcome.value.canary) >= 4
    assert len(sample_outcome.value.stable) >= 4


async def test_the_exposure_fetch_reads_the_split_over_one_window(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    """Both versions get the same rate: the canary (v2) is half of the total, as a 50% step would be."""
    prometheus, _ = stack
    share = ShareQuery(
        prometheus.address,
        V2_TOTAL.replace("{{window}}", "6s"),
        "sum(increase(http_requests_total[6s]))",
        now(),
        10.0,
    )
    outcome = await PrometheusProvider(client).measure(MeasurementRequest("exposure", share))
    assert outcome.error == ""
    assert isinstance(outcome.value, Share)
    assert outcome.value.total > 100
    assert outcome.value.canary / outcome.value.total == pytest.approx(0.5, abs=0.05)
    missing = ShareQuery(
        prometheus.address, 'sum(http_requests_total{version="v9"})', "vector(1)", now(), 10.0
    )
    gone = await PrometheusProvider(client).measure(MeasurementRequest("exposure", missing))
    assert "canary requests query returned no data" in gone.error


async def test_a_counts_query_without_series_is_an_error_not_a_zero(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack
    missing = 'sum(increase(http_requests_total{version="v3"}[10s]))'
    counts = CountsQuery(prometheus.address, missing, missing, missing, missing, now(), 10.0)

    outcome = await PrometheusProvider(client).measure(MeasurementRequest("judge", counts, look=1))

    assert "canary events query returned no data" in outcome.error


async def test_a_release_with_ten_percent_errors_is_failed_by_the_judge_on_real_data(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    prometheus, _ = stack
    run = AnalysisRun.model_validate(
        {
            "metadata": {"name": "judge"},
            "spec": {
                "metrics": [
                    {
                        "name": "errors",
                        "interval": "3s",
                        "count": 5,
                        "provider": {
                            "judge": {
                                "address": prometheus.address,
                                "minSamples": 50,
                                "counts": {
                                    "canary": {"events": V2_ERRORS, "total": V2_TOTAL},
                                    "stable": {"events": V1_ERRORS, "total": V1_TOTAL},
                                },
                            }
                        },
                    }
                ]
            },
        }
    )
    provider = PrometheusProvider(client)
    started = time.monotonic()
    deadline = started + VERDICT_DEADLINE
    while not (run.status.phase and AnalysisPhase(run.status.phase).completed):
        assert time.monotonic() < deadline, f"no verdict within {VERDICT_DEADLINE:.0f} s: {run.status}"
        plan = plan_run(run, [], now())
        outcomes = [await provider.measure(request) for request in plan.requests]
        plan = plan_run(with_status(run, plan.status), outcomes, now())
        run = with_status(run, plan.status)
        if plan.requeue_after:
            await asyncio.sleep(min(plan.requeue_after, 1.0))

    elapsed = time.monotonic() - started
    print(f"judge verdict {run.status.phase} after {elapsed:.1f} s: {run.status.message}")
    assert run.status.phase == AnalysisPhase.FAILED
    report = run.status.metric_results[0].measurements[-1].judge
    assert report is not None
    assert report.verdict is JudgeVerdict.FAIL
    assert report.canary.rate == pytest.approx(0.1, abs=0.03)


# --- failures of the connection --------------------------------------------------------------------------


async def test_an_address_nobody_listens_on_is_unreachable(client: PrometheusClient) -> None:
    address = f"http://127.0.0.1:{free_port()}"

    outcome = await PrometheusProvider(client).measure(instant(address, "up"))

    assert "unreachable" in outcome.error


async def test_a_server_that_never_answers_times_out(client: PrometheusClient) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # accept and say nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        address = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(PrometheusError, match=r"did not answer within 0\.5s") as caught:
            await client.query(address, "up", time=now(), timeout=0.5)
        assert caught.value.kind is ErrorKind.TIMEOUT
    finally:
        stop.set()
        thread.join(timeout=10)
        for connection in accepted:
            connection.close()
        listener.close()


async def test_something_that_is_not_prometheus_is_an_http_error(
    stack: tuple[Prometheus, Exporter], client: PrometheusClient
) -> None:
    _, exporter = stack

    with pytest.raises(PrometheusError, match="answered HTTP 503") as caught:
        await client.query(exporter.address, "up", time=now(), timeout=5)

    assert caught.value.kind is ErrorKind.HTTP


async def test_prometheus_stopped_mid_analysis_turns_into_errors_never_a_success(
    tmp_path: Path, client: PrometheusClient
) -> None:
    app = FakeApp()
    generator = running(tmp_path, app)
    prometheus, _ = next(generator)
    provider = PrometheusProvider(client)
    query = 'sum(http_requests_total{version="v1"})'
    try:
        before = await provider.measure(instant(prometheus.address, query))
        prometheus.stop()
        after = await provider.measure(instant(prometheus.address, query))
    finally:
        generator.close()

    assert before.error == ""
    assert isinstance(before.value, tuple)
    assert math.isfinite(before.value[0])
    assert "unreachable" in after.error
    measurement = assess.threshold_measurement(prometheus_metric(successCondition="result[0] >= 0"), after)
    assert measurement.phase is AnalysisPhase.ERROR
