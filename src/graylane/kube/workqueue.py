"""A rate-limited, delaying work queue of string keys with client-go's semantics, on the asyncio loop.

Guarantees: a key is queued at most once (de-duplication); a key being processed is never handed to a
second worker: re-adding it while it is processed marks it dirty and it is queued again on `done()`;
`add_after()` keeps the earliest of several pending deadlines; `add_rate_limited()` waits
5 ms * 2**failures (capped at 300 s) until `forget()` resets the count. Timers come from an injected
`Clock` so tests advance time instead of sleeping.

This module must not know what a key means or call the API server.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "Cancellable",
    "Clock",
    "ExponentialBackoffLimiter",
    "FakeClock",
    "QueueMetrics",
    "ShutDown",
    "SystemClock",
    "WorkQueue",
]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time plus one-shot timers; the only time source of the queue."""

    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class SystemClock:
    """Real time: `time.monotonic` and timers on the running event loop (which uses the same clock)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclasses.dataclass(order=True)
class _FakeTimer:
    deadline: float
    seq: int
    callback: Callable[[], None] = dataclasses.field(compare=False)
    cancelled: bool = dataclasses.field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock for tests: time stands still until `advance()`, which fires due timers in deadline order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        timer = _FakeTimer(self.now + max(delay, 0.0), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._timers and self._timers[0].deadline <= target:
            timer = heapq.heappop(self._timers)
            self.now = max(self.now, timer.deadline)
            if not timer.cancelled:
                timer.callback()
        self.now = target

    @property
    def pending(self) -> int:
        return sum(not t.cancelled for t in self._timers)


class ExponentialBackoffLimiter:
    """Per-key exponential back-off (client-go's ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = 0.005, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base overflows any cap; skip the float arithmetic
            return self.cap
        return min(self.base * float(2**failures), self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


class QueueMetrics:
    """The client-go/controller-runtime workqueue metric families, labelled by queue name.

    Build one per registry and share it between queues (a registry refuses duplicate names);
    with `registry=None` the metrics are kept but registered nowhere.
    """

    def __init__(self, registry: CollectorRegistry | None) -> None:
        labels = ["name"]
        self.depth = Gauge("workqueue_depth", "Current depth of the workqueue", labels, registry=registry)
        self.adds = Counter("workqueue_adds", "Keys added to the workqueue", labels, registry=registry)
        self.retries = Counter("workqueue_retries", "Rate-limited re-adds", labels, registry=registry)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "Time a key waits before a worker takes it",
            labels,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds", "Time a worker spends on a key", labels, registry=registry
        )


class ShutDown(Exception):
    """Raised by `WorkQueue.get()` once the queue has been shut down."""


class WorkQueue:
    """De-duplicating FIFO of keys with processing/dirty tracking, delays and per-key back-off."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        limiter: ExponentialBackoffLimiter | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or SystemClock()
        self._limiter = limiter or ExponentialBackoffLimiter()
        metrics = metrics or QueueMetrics(None)
        self._depth = metrics.depth.labels(name=name)
        self._adds = metrics.adds.labels(name=name)
        self._retries = metrics.retries.labels(name=name)
        self._queue_duration = metrics.queue_duration.labels(name=name)
        self._work_duration = metrics.work_duration.labels(name=name)
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._queued_at: dict[str, float] = {}
        self._processing: dict[str, float] = {}  # key -> when a worker took it
        self._waiting: dict[str, tuple[float, Cancellable]] = {}  # key -> (deadline, timer)
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done(); never handed to a second worker meanwhile
        self._push(key)

    def add_after(self, key: str, seconds: float) -> None:
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        deadline = self._clock.monotonic() + seconds
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return  # an earlier wake-up is already scheduled; it wins
            pending[1].cancel()
        timer = self._clock.call_later(seconds, lambda: self._fire(key))
        self._waiting[key] = (deadline, timer)

    def add_rate_limited(self, key: str) -> None:
        self._retries.inc()
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: str) -> None:
        self._limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self._limiter.num_requeues(key)

    async def get(self) -> str:
        """Wait for a key and mark it as processing; raises `ShutDown` once the queue is shut down."""
        while not self._queue or self._shutting_down:
            if self._shutting_down:
                raise ShutDown(self.name)
            await self._wait_for_key()
        key = self._queue.popleft()
        self._depth.dec()
        now = self._clock.monotonic()
        self._queue_duration.observe(now - self._queued_at.pop(key, now))
        self._processing[key] = now
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        started = self._processing.pop(key, None)
        if started is not None:
            self._work_duration.observe(self._clock.monotonic() - started)
        if key in self._dirty and not self._shutting_down:
            self._push(key)

    def shutdown(self) -> None:
        """Stop handing out keys: pending getters raise `ShutDown`, timers are cancelled.

        Unlike client-go the keys still queued are dropped rather than drained: reconciles are
        level-based, so whichever replica leads next will see the same state, and draining thousands
        of keys would only delay releasing the lease.
        """
        self._shutting_down = True
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def _fire(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def _push(self, key: str) -> None:
        self._queue.append(key)
        self._queued_at[key] = self._clock.monotonic()
        self._depth.inc()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def _wait_for_key(self) -> None:
        getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getters.append(getter)
        try:
            await getter
        except asyncio.CancelledError:
            if getter.done() and not getter.cancelled():
                self._wake_one()  # we were woken but will not take the key: pass the wake-up on
            raise
