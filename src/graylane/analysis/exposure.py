"""Measured exposure: the canary's share of the requests the gateway counted, against the intended share.

What this module does: ``exposure_request`` builds the two counter queries of one look (the gateway's
requests to the canary backend and to every backend, over ``window``); ``exposure_measurement`` turns
their answer into a measurement: Successful when the observed share is within ``tolerance`` percentage
points of ``expectedWeight``, Inconclusive ("mismatch") when it is not, Error when the data is missing,
inconsistent, or too thin (fewer than ``minRequests`` requests). A mismatch never fails the release: the
assessor keeps the metric Running and the step holds, with the observed split in the Rollout's status
(``graylane.planner.analysis``). A step without a weighted share (a header match, no traffic routing)
has nothing to compare: Successful, saying so.

Why a metric of its own rather than a threshold: the intended share is the step's, known only when the
Rollout creates the run (it writes ``expectedWeight``), and a mismatch must hold, not roll back.

What it must not do: query anything, read a clock, or decide what the Rollout does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from graylane.analysis.assess import measurement_of
from graylane.analysis.contract import MeasurementRequest, Outcome, Share, ShareQuery
from graylane.api.analysis import (
    DEFAULT_EXPOSURE_MIN_REQUESTS,
    AnalysisPhase,
    ExposureMetric,
    Measurement,
    Metric,
    parse_decimal,
    parse_duration,
)

__all__ = ["MISMATCH", "exposure_measurement", "exposure_request", "window_seconds"]

# The message of a measurement outside the tolerance starts with this (the Rollout quotes it).
MISMATCH: Final = "observed split differs from the step's"


def window_seconds(exposure: ExposureMetric) -> float:
    return max(1.0, parse_duration(exposure.window))


def exposure_request(
    metric: Metric, exposure: ExposureMetric, now: datetime, timeout: float, secrets: Mapping[str, str]
) -> MeasurementRequest:
    """The look at ``now``: both queries over the window ending now."""
    window = f"{round(window_seconds(exposure))}s"

    def text(query: str, values: Mapping[str, str]) -> str:
        for name, value in values.items():
            query = query.replace("{{args." + name + "}}", value)
        return query.replace("{{window}}", window)

    masked = dict.fromkeys(secrets, "*****")
    query = ShareQuery(
        text(exposure.address, secrets),
        text(exposure.canary, secrets),
        text(exposure.total, secrets),
        now,
        timeout,
    )
    shown = f"canary: {text(exposure.canary, masked)}; total: {text(exposure.total, masked)}"
    return MeasurementRequest(metric.name, query, shown_query=shown)


def exposure_measurement(metric: Metric, outcome: Outcome) -> Measurement:
    """One look at the split (see the module docstring)."""
    exposure = metric.provider.exposure
    if exposure is None:
        raise ValueError(f"metric {metric.name!r} has no exposure provider")
    if outcome.error:
        return measurement_of(outcome, AnalysisPhase.ERROR, message=outcome.error)
    share = outcome.value
    if not isinstance(share, Share):
        return measurement_of(outcome, AnalysisPhase.ERROR, message="the exposure queries returned no split")
    problem = _unusable(share, exposure)
    if problem:
        return measurement_of(outcome, AnalysisPhase.ERROR, message=problem)
    canary, total = round(share.canary), round(share.total)
    observed = min(100.0, 100.0 * share.canary / share.total)
    seen = f"canary {observed:.1f}% ({canary} of {total} requests in {exposure.window})"
    expected = exposure.expected_weight
    if expected is None:
        return measurement_of(
            outcome, AnalysisPhase.SUCCESSFUL, seen, "the step sends no weighted share: nothing to compare"
        )
    tolerance = parse_decimal(exposure.tolerance, low=0.0, high=100.0, name="tolerance")
    value = f"{seen}, intended {expected}% +- {tolerance:g}"
    if abs(observed - expected) <= tolerance:
        return measurement_of(outcome, AnalysisPhase.SUCCESSFUL, value)
    message = f"{MISMATCH}: {value}"
    return measurement_of(outcome, AnalysisPhase.INCONCLUSIVE, value, message)


def _unusable(share: Share, exposure: ExposureMetric) -> str:
    if not (math.isfinite(share.canary) and math.isfinite(share.total)):
        return "a request counter query returned NaN or an infinite value: missing data"
    if share.canary < 0 or share.total < 0:
        return "negative request counts: check the queries"
    least = exposure.min_requests if exposure.min_requests is not None else DEFAULT_EXPOSURE_MIN_REQUESTS
    if share.total < max(least, 1):
        return (
            f"only {round(share.total)} requests through the gateway in {exposure.window}: too few to "
            f"see the split (minRequests {least})"
        )
    if share.canary > share.total * 1.001 + 1:  # increase() extrapolates each series a little differently
        return (
            f"more canary requests ({round(share.canary)}) than in total ({round(share.total)}): the total "
            "query must count the canary's requests too"
        )
    return ""
