"""WorkQueue: client-go semantics under a fake clock (no test sleeps)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from graylane.kube.workqueue import (
    ExponentialBackoffLimiter,
    FakeClock,
    QueueMetrics,
    ShutDown,
    WorkQueue,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> WorkQueue:
    return WorkQueue("test", clock=clock)


async def drain(queue: WorkQueue) -> list[str]:
    """Take every ready key (marking each done) without blocking."""
    keys = []
    while len(queue):
        key = await queue.get()
        keys.append(key)
        queue.done(key)
    return keys


async def test_adds_are_deduplicated_and_fifo(queue: WorkQueue) -> None:
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert await drain(queue) == ["a", "b", "c"]


async def test_key_being_processed_is_not_handed_out_again(queue: WorkQueue) -> None:
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")  # re-added while processing: dirty, not queued
    assert len(queue) == 0
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not second.done()
    queue.done("a")  # now it is queued again, once
    assert await second == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_dirty_key_is_requeued_once_however_often_readded(queue: WorkQueue) -> None:
    queue.add("a")
    key = await queue.get()
    for _ in range(5):
        queue.add(key)
    queue.done(key)
    assert await drain(queue) == ["a"]


async def test_no_key_is_processed_concurrently_by_many_workers(queue: WorkQueue) -> None:
    active: set[str] = set()
    overlaps = 0
    handled = 0

    async def worker() -> None:
        nonlocal overlaps, handled
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            overlaps += key in active
            active.add(key)
            if handled < 200:
                queue.add(key)  # an event arrives mid-reconcile
            await asyncio.sleep(0)
            handled += 1
            active.discard(key)
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for i in range(20):
        queue.add(f"k{i % 4}")
    while handled < 200 or len(queue):  # noqa: ASYNC110 - lets the workers run, one loop turn at a time
        await asyncio.sleep(0)
    queue.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == 0
    assert handled >= 200


async def test_get_waits_until_a_key_arrives(queue: WorkQueue) -> None:
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await getter == "x"


async def test_add_after_waits_for_the_clock(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("a", 10)
    clock.advance(9.9)
    assert len(queue) == 0
    clock.advance(0.1)
    assert await drain(queue) == ["a"]


async def test_add_after_orders_by_deadline_not_insertion(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("late", 30)
    queue.add_after("early", 5)
    queue.add_after("middle", 10)
    clock.advance(60)
    assert await drain(queue) == ["early", "middle", "late"]


async def test_add_after_earliest_deadline_wins(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("a", 10)
    queue.add_after("a", 30)  # later: ignored
    queue.add_after("a", 3)  # earlier: replaces
    clock.advance(3)
    assert await drain(queue) == ["a"]
    clock.advance(100)
    assert len(queue) == 0  # the replaced timers did not fire again
    assert clock.pending == 0


async def test_add_after_zero_adds_now(queue: WorkQueue) -> None:
    queue.add_after("a", 0)
    assert len(queue) == 1


async def test_add_after_while_queued_deduplicates_on_fire(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add("a")
    queue.add_after("a", 1)
    clock.advance(1)
    assert await drain(queue) == ["a"]


def test_backoff_doubles_from_5ms_to_a_300s_cap() -> None:
    limiter = ExponentialBackoffLimiter()
    delays = [limiter.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[15] == 0.005 * 2**15  # 163.84 s
    assert delays[16:] == [300.0] * 4
    assert limiter.when("other") == 0.005  # per key
    assert limiter.num_requeues("k") == 20
    for _ in range(100):
        limiter.when("k")
    assert limiter.when("k") == 300.0  # no overflow however long it fails


async def test_rate_limited_adds_back_off_and_forget_resets(queue: WorkQueue, clock: FakeClock) -> None:
    for expected in (0.005, 0.01, 0.02):
        queue.add_rate_limited("a")
        clock.advance(expected * 0.99)
        assert len(queue) == 0
        clock.advance(expected * 0.02)
        assert await drain(queue) == ["a"]
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    queue.add_rate_limited("a")
    clock.advance(0.005)
    assert len(queue) == 1


async def test_shutdown_wakes_getters_and_drops_work(queue: WorkQueue, clock: FakeClock) -> None:
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.add_after("later", 5)
    queue.shutdown()
    for getter in getters:
        with pytest.raises(ShutDown):
            await getter
    queue.add("a")
    clock.advance(10)
    assert len(queue) == 0
    with pytest.raises(ShutDown):
        await queue.get()
    assert queue.shutting_down


async def test_done_after_shutdown_does_not_requeue(queue: WorkQueue) -> None:
    queue.add("a")
    key = await queue.get()
    queue.add(key)
    queue.shutdown()
    queue.done(key)
    assert len(queue) == 0


async def test_cancelled_getter_passes_its_wakeup_on(queue: WorkQueue) -> None:
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == "a"
    assert first.cancelled()


async def test_metrics_are_registered_in_the_given_registry(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    queue = WorkQueue("rollout", clock=clock, metrics=QueueMetrics(registry))
    queue.add("a")
    queue.add("b")
    clock.advance(2)
    key = await queue.get()
    clock.advance(3)
    queue.done(key)
    queue.add_rate_limited("a")

    def value(name: str) -> float | None:
        return registry.get_sample_value(name, {"name": "rollout"})

    assert value("workqueue_depth") == 1
    assert value("workqueue_adds_total") == 2
    assert value("workqueue_retries_total") == 1
    assert value("workqueue_queue_duration_seconds_sum") == 2
    assert value("workqueue_work_duration_seconds_sum") == 3


def test_fake_clock_fires_timers_in_deadline_order() -> None:
    clock = FakeClock(start=0)
    fired: list[tuple[str, float]] = []
    clock.call_later(2, lambda: fired.append(("b", clock.monotonic())))
    clock.call_later(1, lambda: fired.append(("a", clock.monotonic())))
    cancelled = clock.call_later(1.5, lambda: fired.append(("x", clock.monotonic())))
    cancelled.cancel()
    clock.advance(5)
    assert fired == [("a", 1), ("b", 2)]
    assert clock.monotonic() == 5
