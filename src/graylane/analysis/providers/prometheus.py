"""Prometheus HTTP API client: instant and range queries, with timeouts and typed errors.

What this module does: ``PrometheusClient.query`` (``/api/v1/query``) and ``query_range``
(``/api/v1/query_range``) on one shared aiohttp session, POSTing the form so long PromQL fits. Every
call is ONE request, bounded by its timeout (client side, and passed to Prometheus so the server stops
evaluating too) and by a cap on the answer's size; retries are the planner's business (a failed
measurement is retried at the next interval, up to ``consecutiveErrorLimit``). Every failure raises
``PrometheusError`` with a ``kind`` (unreachable, timeout, HTTP status, query error, bad answer) and a
message a person can act on; values arrive as Prometheus writes them (strings, "NaN" and "+Inf"
included) and leave as floats.

What it must not do: decide what a value means (the assessor does), or retry.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import aiohttp

__all__ = ["MAX_ANSWER_BYTES", "ErrorKind", "InstantResult", "PrometheusClient", "PrometheusError", "Series"]

MAX_ANSWER_BYTES: Final = 16 * 2**20
# Answers larger than this are decoded in a worker thread: a range query's megabytes of JSON would
# otherwise hold the controller's event loop (probes, webhooks, every other reconcile) for a while.
DECODE_IN_THREAD_BYTES: Final = 256 * 2**10
# Prometheus refuses a range query with more than 11,000 points per series.
MAX_POINTS: Final = 11_000


class ErrorKind(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    HTTP = "http"
    QUERY = "query"
    BAD_ANSWER = "bad-answer"


class PrometheusError(Exception):
    """A query that produced no usable answer; ``str()`` is the message recorded in the measurement."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    values: tuple[float, ...]


@dataclass(frozen=True)
class InstantResult:
    """A scalar (``scalar`` set) or an instant vector (``vector``: one value per series)."""

    scalar: float | None = None
    vector: tuple[Series, ...] = ()

    @property
    def values(self) -> float | tuple[float, ...]:
        if self.scalar is not None:
            return self.scalar
        return tuple(value for series in self.vector for value in series.values)


def _float(text: object, address: str) -> float:
    try:
        return float(str(text))  # "NaN", "+Inf" and "-Inf" parse too
    except ValueError:
        raise PrometheusError(
            ErrorKind.BAD_ANSWER, f"Prometheus at {address} sent a value that is not a number: {text!r}"
        ) from None


class PrometheusClient:
    """Queries any Prometheus by address over one session; close it with ``aclose``."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "graylane-analysis"})
        return self._session

    async def query(self, address: str, query: str, *, time: datetime, timeout: float) -> InstantResult:
        """Evaluate an instant query at ``time``."""
        form = {"query": query, "time": f"{time.timestamp():.3f}", "timeout": f"{timeout:g}s"}
        data = await self._post(address, "/api/v1/query", form, timeout)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return InstantResult(scalar=_float(result[1], address))
        if kind == "vector" and isinstance(result, list):
            return InstantResult(vector=tuple(self._sample(item, address) for item in result))
        if kind == "matrix":
            raise PrometheusError(
                ErrorKind.QUERY,
                "the query returned a range vector: use an instant query (e.g. wrap the selector in rate())",
            )
        raise PrometheusError(
            ErrorKind.BAD_ANSWER, f"Prometheus at {address} answered an unexpected {kind!r} result"
        )

    async def query_range(
        self, address: str, query: str, *, start: datetime, end: datetime, step: float, timeout: float
    ) -> tuple[Series, ...]:
        """Evaluate a range query; the step grows if needed to stay under Prometheus' points limit."""
        span = max(0.0, (end - start).total_seconds())
        step = max(step, math.ceil(span / (MAX_POINTS - 1)) if span else step, 0.001)
        form = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step:g}",
            "timeout": f"{timeout:g}s",
        }
        data = await self._post(address, "/api/v1/query_range", form, timeout)
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise PrometheusError(
                ErrorKind.BAD_ANSWER, f"Prometheus at {address} answered a range query without a matrix"
            )
        return tuple(self._series(item, address) for item in result)

    @staticmethod
    def _sample(item: Any, address: str) -> Series:
        if not isinstance(item, dict) or not isinstance(item.get("value"), list) or len(item["value"]) != 2:
            raise PrometheusError(ErrorKind.BAD_ANSWER, f"Prometheus at {address} sent a malformed sample")
        return Series(dict(item.get("metric") or {}), (_float(item["value"][1], address),))

    @staticmethod
    def _series(item: Any, address: str) -> Series:
        points = item.get("values") if isinstance(item, dict) else None
        if not isinstance(points, list):
            raise PrometheusError(ErrorKind.BAD_ANSWER, f"Prometheus at {address} sent a malformed series")
        values = tuple(
            _float(point[1], address) for point in points if isinstance(point, list) and len(point) == 2
        )
        return Series(dict(item.get("metric") or {}), values)

    async def _post(self, address: str, path: str, form: Mapping[str, str], timeout: float) -> dict[str, Any]:
        url = address.rstrip("/") + path
        try:
            async with self._client().post(
                url, data=dict(form), timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
            ) as response:
                body = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise PrometheusError(
                ErrorKind.TIMEOUT, f"Prometheus at {address} did not answer within {timeout:g}s"
            ) from None
        except aiohttp.InvalidURL:
            raise PrometheusError(ErrorKind.UNREACHABLE, f"invalid Prometheus address {address!r}") from None
        except aiohttp.ClientError as err:
            raise PrometheusError(
                ErrorKind.UNREACHABLE, f"Prometheus at {address} unreachable: {err}"
            ) from None
        if len(body) > MAX_ANSWER_BYTES:
            raise PrometheusError(
                ErrorKind.BAD_ANSWER, f"Prometheus at {address} answered more than {MAX_ANSWER_BYTES} bytes"
            )
        if len(body) > DECODE_IN_THREAD_BYTES:
            return await asyncio.to_thread(self._decode, address, status, body)
        return self._decode(address, status, body)

    @staticmethod
    def _decode(address: str, status: int, body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("status") == "error":
            # Prometheus' own error: bad_data (a PromQL error), timeout, canceled, execution, ...
            error_type = payload.get("errorType", "error")
            kind = ErrorKind.TIMEOUT if error_type == "timeout" else ErrorKind.QUERY
            raise PrometheusError(kind, f"Prometheus query error ({error_type}): {payload.get('error', '')}")
        if status != 200:
            snippet = body[:200].decode("utf-8", "replace")
            raise PrometheusError(
                ErrorKind.HTTP, f"Prometheus at {address} answered HTTP {status}: {snippet}"
            )
        if (
            not isinstance(payload, dict)
            or payload.get("status") != "success"
            or not isinstance(payload.get("data"), dict)
        ):
            raise PrometheusError(
                ErrorKind.BAD_ANSWER, f"Prometheus at {address} sent an answer that is not Prometheus JSON"
            )
        data: dict[str, Any] = payload["data"]
        return data
