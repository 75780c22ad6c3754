"""Jittered exponential back-off, and retry-on-conflict for read-modify-write updates.

A 409 Conflict on a stale resourceVersion means someone else wrote first; the fix is to read again
and re-apply, which is why the function passed to `retry_on_conflict` must do its own GET.
This module must not retry anything but conflicts: other errors go back to the caller, whose
workqueue rate limiter decides when to try again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from graylane.kube.client import ApiError

__all__ = ["Backoff", "retry_on_conflict"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class Backoff:
    """`initial * factor**n`, capped, each delay stretched by up to `jitter` (client-go's wait.Backoff)."""

    def __init__(
        self,
        initial: float = 0.01,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self._rng = rng
        self._current = initial

    def next(self) -> float:
        delay = self._current * (1.0 + self.jitter * self._rng())
        self._current = min(self._current * self.factor, self.cap)
        return delay

    def reset(self) -> None:
        self._current = self.initial


async def retry_on_conflict(
    fn: Callable[[], Awaitable[T]],
    attempts: int = 5,
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Call `fn` until it does not raise a conflict, at most `attempts` times; re-raise the last conflict."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    backoff = backoff or Backoff()
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except ApiError as err:
            if not err.conflict or attempt == attempts:
                raise
            log.debug("conflict, retrying", extra={"attempt": attempt, "error": str(err)})
        await sleep(backoff.next())
    raise AssertionError("unreachable: the last attempt returns or raises")
