"""The values that cross between the pure analysis code and the metric providers.

What this module does: the planner asks for measurements with ``MeasurementRequest``s (what to query,
where, over which window); a provider answers each with an ``Outcome`` (a value, or an error message).
Four query shapes: an instant PromQL query (threshold metrics), four instant counter queries over one
window (the judge's counts), two range queries over the analysis window (the judge's samples), and two
instant counter queries over one window (measured exposure: the gateway's canary and total requests). The
``MetricProvider`` protocol is the whole contract a provider implements.

What it must not do: do I/O itself, or interpret values (``assess`` and ``judge`` do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "Counts",
    "CountsQuery",
    "InstantQuery",
    "MeasurementRequest",
    "MetricProvider",
    "Outcome",
    "Query",
    "Samples",
    "SamplesQuery",
    "Share",
    "ShareQuery",
    "Value",
]


@dataclass(frozen=True)
class InstantQuery:
    """One instant query evaluated at ``time``."""

    address: str
    query: str
    time: datetime
    timeout: float


@dataclass(frozen=True)
class CountsQuery:
    """The judge's four counter queries, ``{{window}}`` already replaced, all evaluated at ``time``."""

    address: str
    canary_events: str
    canary_total: str
    stable_events: str
    stable_total: str
    time: datetime
    timeout: float


@dataclass(frozen=True)
class SamplesQuery:
    """The judge's two range queries over ``[start, end]`` at ``step`` seconds."""

    address: str
    canary: str
    stable: str
    start: datetime
    end: datetime
    step: float
    timeout: float


@dataclass(frozen=True)
class ShareQuery:
    """Measured exposure: the gateway's requests to the canary and to all backends, ``{{window}}``
    replaced, both evaluated at ``time``."""

    address: str
    canary: str
    total: str
    time: datetime
    timeout: float


Query = InstantQuery | CountsQuery | SamplesQuery | ShareQuery


@dataclass(frozen=True)
class MeasurementRequest:
    """A measurement the planner wants now. ``look``/``final`` number the judge's looks (1-based)."""

    metric: str
    query: Query
    look: int = 0
    final: bool = False
    window_start: datetime | None = None
    # The query as recorded in status: secret argument values replaced by "*****".
    shown_query: str = ""


@dataclass(frozen=True)
class Counts:
    """Counter increases over a window (floats: Prometheus extrapolates ``increase``)."""

    canary_events: float
    canary_total: float
    stable_events: float
    stable_total: float


@dataclass(frozen=True)
class Samples:
    """Every finite point of every series, per version, and how many non-finite points were left out."""

    canary: tuple[float, ...]
    stable: tuple[float, ...]
    dropped_canary: int = 0
    dropped_stable: int = 0


@dataclass(frozen=True)
class Share:
    """Requests a gateway sent to the canary, and to every backend, in one window (floats: ``increase``)."""

    canary: float
    total: float


# A scalar, an instant vector's values, the judge's data, or the gateway's split.
Value = float | tuple[float, ...] | Counts | Samples | Share


@dataclass(frozen=True)
class Outcome:
    """A provider's answer: ``value``, or ``error`` (never both); times bracket the queries."""

    request: MeasurementRequest
    started_at: datetime
    finished_at: datetime
    value: Value | None = None
    error: str = ""


class MetricProvider(Protocol):
    """Answers a request; never raises for a failed query (the error goes into the outcome)."""

    async def measure(self, request: MeasurementRequest) -> Outcome: ...
