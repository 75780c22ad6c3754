"""Latency-like samples: a rank test for location, a dispersion test, and the Hodges-Lehmann effect.

What this module does:
- ``mann_whitney(first, second)``: is ``first`` stochastically larger? U with average ranks for ties and
  the tie-corrected variance; z without continuity correction (for the sequential mixture, whose
  "information" is ``(n1*n2)^2 / var(U)``, so that z = drift * sqrt(information)), and the fixed-sample
  one-sided p-value with the usual 0.5 continuity correction.
- ``brown_forsythe(first, second, scale)``: is ``first`` more spread out? Levene's test on absolute
  deviations from each group's median (Brown and Forsythe's robust form), as Welch's t with two groups;
  ``scale`` multiplies the second group's deviations (the practical margin). Catches what a rank test
  misses: a canary with the same median but a wider or bimodal spread (Kayenta's known blind spot).
- ``hodges_lehmann(canary, stable, z)``: the median of pairwise differences (of logs when every sample is
  positive, so the effect reads as a ratio) and its distribution-free interval at a given critical z.

What it must not do: decide anything (``verdict`` does) or fetch data.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from graylane.analysis.judge.distributions import normal_sf, t_sf

__all__ = ["RankTest", "SpreadTest", "brown_forsythe", "hodges_lehmann", "mann_whitney", "thin"]

# Pairwise differences grow as n1*n2: effects are estimated on at most this many order statistics
# per group (evenly spaced quantiles keep the distribution's shape).
_MAX_FOR_EFFECT: Final = 400
_T_CAP: Final = 40.0


@dataclass(frozen=True)
class RankTest:
    u: float
    z: float
    info: float
    p_fixed: float
    superiority: float  # P(first > second) + P(first == second) / 2


@dataclass(frozen=True)
class SpreadTest:
    t: float
    df: float
    info: float
    p_fixed: float
    ratio: float | None  # mean absolute deviation of first / of second (unscaled)


def mann_whitney(first: Sequence[float], second: Sequence[float]) -> RankTest:
    n1, n2 = len(first), len(second)
    if n1 == 0 or n2 == 0:
        return RankTest(0.0, 0.0, 0.0, 1.0, 0.5)
    labelled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    rank_sum, tie_term, index = 0.0, 0.0, 0
    while index < len(labelled):
        end = index
        while end + 1 < len(labelled) and labelled[end + 1][0] == labelled[index][0]:
            end += 1
        size = end - index + 1
        average_rank = (index + end) / 2.0 + 1.0
        rank_sum += average_rank * sum(1 for _, group in labelled[index : end + 1] if group == 0)
        tie_term += size**3 - size
        index = end + 1
    total = n1 + n2
    u = rank_sum - n1 * (n1 + 1) / 2.0
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    superiority = u / (n1 * n2)
    if variance <= 0.0:  # every value equal: no evidence either way
        return RankTest(u, 0.0, 0.0, 1.0, superiority)
    centred = u - n1 * n2 / 2.0
    sd = math.sqrt(variance)
    p_fixed = normal_sf((centred - 0.5) / sd)
    return RankTest(u, centred / sd, (n1 * n2) ** 2 / variance, p_fixed, superiority)


def brown_forsythe(first: Sequence[float], second: Sequence[float], scale: float = 1.0) -> SpreadTest:
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        return SpreadTest(0.0, 1.0, 0.0, 1.0, None)
    centre1, centre2 = statistics.median(first), statistics.median(second)
    dev1 = [abs(value - centre1) for value in first]
    dev2 = [abs(value - centre2) * scale for value in second]
    mean1, mean2 = statistics.fmean(dev1), statistics.fmean(dev2)
    part1, part2 = statistics.variance(dev1) / n1, statistics.variance(dev2) / n2
    se = math.sqrt(part1 + part2)
    ratio = mean1 / (mean2 / scale) if mean2 > 0 else None
    if se == 0.0:
        t = 0.0 if mean1 == mean2 else math.copysign(_T_CAP, mean1 - mean2)
        return SpreadTest(t, float(n1 + n2 - 2), n1 * n2 / (n1 + n2), 0.0 if t > 0 else 1.0, ratio)
    t = max(-_T_CAP, min(_T_CAP, (mean1 - mean2) / se))
    denominator = part1 * part1 / (n1 - 1) + part2 * part2 / (n2 - 1)
    df = (part1 + part2) ** 2 / denominator if denominator > 0 else float(n1 + n2 - 2)
    return SpreadTest(t, df, n1 * n2 / (n1 + n2), t_sf(t, df), ratio)


def thin(values: Sequence[float], limit: int = _MAX_FOR_EFFECT) -> list[float]:
    """At most ``limit`` evenly spaced order statistics of ``values`` (all of them when fewer)."""
    ordered = sorted(values)
    if len(ordered) <= limit:
        return ordered
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(i * step)] for i in range(limit)]


def hodges_lehmann(
    canary: Sequence[float], stable: Sequence[float], z: float
) -> tuple[float, float, float, bool] | None:
    """(estimate, lower, upper, as_ratio): the shift canary - stable, or the ratio when all are positive.

    The interval holds the pairwise differences between the order statistics at which the rank test at
    critical ``z`` would just reject (the classical inversion of Mann-Whitney); ``z = inf`` gives no bound.
    """
    first, second = thin(canary), thin(stable)
    if not first or not second:
        return None
    as_ratio = min(first) > 0 and min(second) > 0
    if as_ratio:
        first, second = [math.log(v) for v in first], [math.log(v) for v in second]
    differences = sorted(a - b for a in first for b in second)
    k = len(differences)
    n1, n2 = len(first), len(second)
    critical = math.floor(k / 2.0 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)) if math.isfinite(z) else -1
    estimate = statistics.median(differences)
    lower = differences[critical] if critical >= 0 else -math.inf
    upper = differences[k - 1 - critical] if critical >= 0 else math.inf
    if as_ratio:
        return math.exp(estimate), math.exp(lower), math.exp(upper), True
    return estimate, lower, upper, False
