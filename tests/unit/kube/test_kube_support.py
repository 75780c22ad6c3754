"""retry_on_conflict and Backoff, JSON logs, the probe/metrics server, and the event recorder's
de-duplication (against a fake API)."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from graylane.kube.client import ApiError, Obj
from graylane.kube.events import CORE_EVENT, EventKind, EventRecorder
from graylane.kube.leader import KRUISE_LEASE_NAME, LeaderElectionConfig, default_identity, lease_name
from graylane.kube.logs import setup_logging
from graylane.kube.observability import ObservabilityServer
from graylane.kube.resources import Resource
from graylane.kube.retry import Backoff, retry_on_conflict

CONFLICT = ApiError(409, "Conflict", "the object has been modified")

# -- retry -------------------------------------------------------------------------------------


class Flaky:
    def __init__(self, errors: list[ApiError]) -> None:
        self.errors = errors
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def no_sleep(_: float) -> None:
    return None


async def test_retry_on_conflict_retries_until_success() -> None:
    fn = Flaky([CONFLICT, CONFLICT])
    assert await retry_on_conflict(fn, sleep=no_sleep) == "done"
    assert fn.calls == 3


async def test_retry_on_conflict_gives_up_after_attempts() -> None:
    fn = Flaky([CONFLICT] * 5)
    with pytest.raises(ApiError) as err:
        await retry_on_conflict(fn, attempts=3, sleep=no_sleep)
    assert err.value.conflict
    assert fn.calls == 3


@pytest.mark.parametrize(
    "error",
    [ApiError(404, "NotFound", "gone"), ApiError(409, "AlreadyExists", "exists"), ApiError(500, "", "")],
)
async def test_retry_on_conflict_does_not_retry_other_errors(error: ApiError) -> None:
    fn = Flaky([error])
    with pytest.raises(ApiError):
        await retry_on_conflict(fn, sleep=no_sleep)
    assert fn.calls == 1


async def test_retry_on_conflict_sleeps_a_jittered_growing_backoff() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    backoff = Backoff(initial=0.01, factor=2, jitter=0.5, rng=lambda: 1.0)
    await retry_on_conflict(Flaky([CONFLICT] * 3), backoff=backoff, sleep=sleep)
    assert slept == pytest.approx([0.015, 0.03, 0.06])


def test_backoff_caps_and_resets() -> None:
    backoff = Backoff(initial=1, factor=10, cap=50, jitter=0)
    assert [backoff.next() for _ in range(4)] == [1, 10, 50, 50]
    backoff.reset()
    assert backoff.next() == 1


async def test_retry_on_conflict_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await retry_on_conflict(Flaky([]), attempts=0)


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    handler = setup_logging(logging.DEBUG, stream=stream)
    yield stream
    root.removeHandler(handler)
    root.handlers[:] = before
    root.setLevel(level)


def test_json_logs_one_object_per_line_with_extra_fields(json_log: io.StringIO) -> None:
    log = logging.getLogger("graylane.test")
    log.info("reconciled %s", "x", extra={"rollout": "ns/name", "step": 2})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["msg"] == "reconciled x"
    assert first["level"] == "info"
    assert first["logger"] == "graylane.test"
    assert first["rollout"] == "ns/name"
    assert first["step"] == 2
    assert first["ts"].endswith("Z")
    assert "ValueError: boom" in second["error"]


def test_setup_logging_twice_keeps_one_handler(json_log: io.StringIO) -> None:
    root = logging.getLogger()
    count = len(root.handlers)
    handler = setup_logging(logging.INFO, stream=json_log)
    assert len(root.handlers) == count
    assert handler in root.handlers


# -- probes and metrics ---------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[tuple[ObservabilityServer, dict[str, bool]]]:
    registry = CollectorRegistry()
    Counter("demo_things", "Demo", registry=registry).inc(3)
    state = {"ready": False}
    server = ObservabilityServer(registry, lambda: state["ready"], port=0)
    async with server:
        yield server, state


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text(), resp.headers.get("Content-Type", "")


async def test_probes_and_metrics(server: tuple[ObservabilityServer, dict[str, bool]]) -> None:
    srv, state = server
    assert srv.port > 0
    assert srv.host == "127.0.0.1"
    assert (await get(f"{srv.url}/healthz"))[:2] == (200, "ok")
    assert (await get(f"{srv.url}/readyz"))[:2] == (503, "not ready")
    state["ready"] = True
    assert (await get(f"{srv.url}/readyz"))[:2] == (200, "ok")
    status, body, content_type = await get(f"{srv.url}/metrics")
    assert status == 200
    assert "demo_things_total 3.0" in body
    assert content_type.startswith("text/plain")


async def test_a_raising_readiness_check_is_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("check failed")

    async with ObservabilityServer(CollectorRegistry(), broken, port=0) as srv:
        assert (await get(f"{srv.url}/readyz"))[0] == 503


def test_port_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = ObservabilityServer(CollectorRegistry(), lambda: True).port


# -- leader election config -------------------------------------------------------------------------


def test_lease_names_and_identity() -> None:
    assert lease_name(kruise_compat=True) == KRUISE_LEASE_NAME == "71ddec2c.kruise.io"
    assert lease_name(kruise_compat=False) == "graylane-controller"
    host, _, uid = default_identity().rpartition("_")
    assert host
    assert len(uid) == 36
    config = LeaderElectionConfig(namespace="x")
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)


def test_inconsistent_timings_are_rejected() -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        LeaderElectionConfig(namespace="x", lease_duration=5, renew_deadline=10)


# -- event recorder -----------------------------------------------------------------------------------


class FakeEvents:
    def __init__(self) -> None:
        self.events: dict[str, Obj] = {}
        self.calls: list[str] = []

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        assert res == CORE_EVENT
        self.calls.append("create")
        self.events[obj["metadata"]["name"]] = obj
        return obj

    async def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None) -> Obj:
        self.calls.append("patch")
        if name not in self.events:
            raise ApiError(404, "NotFound", "expired")
        self.events[name].update(body)
        return self.events[name]


class Ticker:
    def __init__(self) -> None:
        self.now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


ROLLOUT: Obj = {
    "apiVersion": "rollouts.kruise.io/v1beta1",
    "kind": "Rollout",
    "metadata": {"name": "demo", "namespace": "apps", "uid": "u-1", "resourceVersion": "5"},
}


@pytest.fixture
def fake() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
def recorder(fake: FakeEvents) -> EventRecorder:
    return EventRecorder(fake, host="node-a", now=Ticker())


async def test_first_event_is_a_core_v1_event_kubectl_describe_shows(
    recorder: EventRecorder, fake: FakeEvents
) -> None:
    await recorder.event(ROLLOUT, EventKind.NORMAL, "Progressing", "upgrade step 1")
    (event,) = fake.events.values()
    assert event["involvedObject"] == {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "namespace": "apps",
        "name": "demo",
        "uid": "u-1",
        "resourceVersion": "5",
    }
    assert event["metadata"]["namespace"] == "apps"
    assert event["metadata"]["name"].startswith("demo.")
    assert event["source"] == {"component": "rollout-controller", "host": "node-a"}
    assert event["reportingComponent"] == "rollout-controller"
    assert (event["type"], event["reason"], event["count"]) == ("Normal", "Progressing", 1)


async def test_repeats_bump_count_and_last_timestamp(recorder: EventRecorder, fake: FakeEvents) -> None:
    for _ in range(3):
        await recorder.event(ROLLOUT, EventKind.NORMAL, "Progressing", "same")
    (event,) = fake.events.values()
    assert fake.calls == ["create", "patch", "patch"]
    assert event["count"] == 3
    assert event["lastTimestamp"] > event["firstTimestamp"]


async def test_expired_event_is_recreated(recorder: EventRecorder, fake: FakeEvents) -> None:
    await recorder.event(ROLLOUT, EventKind.WARNING, "Failed", "x")
    fake.events.clear()
    await recorder.event(ROLLOUT, EventKind.WARNING, "Failed", "x")
    assert fake.calls == ["create", "patch", "create"]
    assert len(fake.events) == 1


async def test_many_different_messages_are_combined(fake: FakeEvents) -> None:
    recorder = EventRecorder(fake, aggregate_after=3, now=Ticker())
    for i in range(6):
        await recorder.event(ROLLOUT, EventKind.NORMAL, "Scaled", f"replicas {i}")
    messages = sorted(e["message"] for e in fake.events.values())
    assert len(messages) == 4  # three distinct, then one combined event counted up
    assert messages[0].startswith("(combined from similar events)")


async def test_the_lru_is_bounded(fake: FakeEvents) -> None:
    recorder = EventRecorder(fake, cache_size=2, now=Ticker())
    for name in ("a", "b", "c", "a"):
        obj = {**ROLLOUT, "metadata": {**ROLLOUT["metadata"], "name": name}}
        await recorder.event(obj, EventKind.NORMAL, "R", "m")
    assert fake.calls == ["create"] * 4  # "a" was evicted before it repeated


async def test_write_failures_are_swallowed(recorder: EventRecorder, fake: FakeEvents) -> None:
    async def broken(*_: object, **__: object) -> Obj:
        raise ApiError(500, "InternalError", "etcd down")

    fake.create = broken  # type: ignore[method-assign]
    await recorder.event(ROLLOUT, EventKind.NORMAL, "R", "m")  # does not raise
    await recorder.event({"metadata": {}}, EventKind.NORMAL, "R", "no name")  # dropped
