"""The metric provider behind the analysis contract: Prometheus queries and the judge's data fetch.

What this module does: ``PrometheusProvider.measure(request)`` answers any ``MeasurementRequest``:
- an ``InstantQuery``: one query; the value is the scalar or the vector's values;
- a ``CountsQuery`` (the judge's counts): the four counter queries concurrently, at the same evaluation
  time over the same window, each summed over its series; a query with no series is an error (a
  version that never failed has no error series unless the app exports zero counters, or the query
  adds ``or vector(0)``: either way the author says so, the judge never assumes a zero);
- a ``SamplesQuery`` (the judge's samples): the two range queries concurrently over the same window;
  every finite point is a sample, NaN and infinite points are counted and left out;
- a ``ShareQuery`` (measured exposure): the gateway's canary and total request counters concurrently, at
  the same evaluation time, each summed over its series (no series is an error, as for the judge).
Errors never escape: they become the outcome's ``error``, so the planner can count them.

What it must not do: judge, assess, or retry (the planner schedules retries).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from graylane.analysis.contract import (
    Counts,
    CountsQuery,
    InstantQuery,
    MeasurementRequest,
    Outcome,
    Samples,
    SamplesQuery,
    Share,
    ShareQuery,
    Value,
)
from graylane.analysis.providers.prometheus import ErrorKind, PrometheusClient, PrometheusError, Series

__all__ = ["PrometheusProvider"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PrometheusProvider:
    """Implements ``graylane.analysis.contract.MetricProvider`` on a ``PrometheusClient``."""

    def __init__(self, client: PrometheusClient, clock: Callable[[], datetime] = _utc_now) -> None:
        self._client = client
        self._clock = clock

    async def measure(self, request: MeasurementRequest) -> Outcome:
        started = self._clock()
        try:
            value = await self._fetch(request)
        except PrometheusError as err:
            return Outcome(request, started, self._clock(), error=str(err))
        return Outcome(request, started, self._clock(), value=value)

    async def _fetch(self, request: MeasurementRequest) -> Value:
        query = request.query
        if isinstance(query, InstantQuery):
            result = await self._client.query(
                query.address, query.query, time=query.time, timeout=query.timeout
            )
            return result.values
        if isinstance(query, CountsQuery):
            return await self._counts(query)
        if isinstance(query, ShareQuery):
            return await self._share(query)
        return await self._samples(query)

    async def _share(self, query: ShareQuery) -> Share:
        names = ("canary requests", "total requests")
        results = await asyncio.gather(
            *(
                self._client.query(query.address, text, time=query.time, timeout=query.timeout)
                for text in (query.canary, query.total)
            )
        )
        canary, total = (self._sum(name, result.values) for name, result in zip(names, results, strict=True))
        return Share(canary, total)

    async def _counts(self, query: CountsQuery) -> Counts:
        names = ("canary events", "canary total", "stable events", "stable total")
        texts = (query.canary_events, query.canary_total, query.stable_events, query.stable_total)
        results = await asyncio.gather(
            *(
                self._client.query(query.address, text, time=query.time, timeout=query.timeout)
                for text in texts
            )
        )
        sums = [self._sum(name, result.values) for name, result in zip(names, results, strict=True)]
        return Counts(*sums)

    @staticmethod
    def _sum(name: str, values: float | tuple[float, ...]) -> float:
        if isinstance(values, float):
            return values
        if not values:
            raise PrometheusError(
                ErrorKind.QUERY,
                f"the {name} query returned no data: export zero counters or add `or vector(0)`",
            )
        return math.fsum(values)

    async def _samples(self, query: SamplesQuery) -> Samples:
        canary, stable = await asyncio.gather(
            *(
                self._client.query_range(
                    query.address,
                    text,
                    start=query.start,
                    end=query.end,
                    step=query.step,
                    timeout=query.timeout,
                )
                for text in (query.canary, query.stable)
            )
        )
        kept_canary, dropped_canary = _finite(canary)
        kept_stable, dropped_stable = _finite(stable)
        return Samples(kept_canary, kept_stable, dropped_canary, dropped_stable)


def _finite(series: Sequence[Series]) -> tuple[tuple[float, ...], int]:
    values = [value for item in series for value in item.values]
    kept = tuple(value for value in values if math.isfinite(value))
    return kept, len(values) - len(kept)
