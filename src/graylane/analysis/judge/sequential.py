"""Mixture likelihood ratios: the always-valid part of the judge (mSPRT, Robbins' normal mixture).

What this module does: for a statistic that behaves like a Brownian motion in "information" (a score
``s = z * sqrt(info)`` with drift ``theta * info``), the likelihood ratio of "drift theta > 0" against
"no drift", averaged over a prior on theta, is a nonnegative supermartingale under the null hypothesis.
By Ville's inequality it exceeds ``1/alpha`` at ANY look with probability at most alpha, so the judge may
look after every measurement, stop at the first crossing, and still keep its false-alarm rate: that is
the whole point (a fixed-sample test looked at ten times would false-alarm several times as often).
- ``one_sided_log_lr``: half-normal prior on theta > 0 (closed form), for "the canary is worse";
- ``two_sided_z_boundary``: the |z| at which the two-sided normal mixture reaches ``1/alpha``, used to
  turn the test into a confidence sequence (an interval valid at every look at once);
- ``log_mean_exp``: the average of discrete-mixture components, without overflow.

What it must not do: know which test produced the statistic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from graylane.analysis.judge.distributions import log_normal_cdf

__all__ = ["log_mean_exp", "one_sided_log_lr", "two_sided_z_boundary"]


def one_sided_log_lr(z: float, info: float, tau: float) -> float:
    """log of the half-normal(tau) mixture likelihood ratio for a z statistic at information ``info``.

    Derivation: integrating exp(theta*s - theta^2*info/2) against the half-normal density over theta > 0
    gives 2 / sqrt(v) * exp(tau^2 s^2 / (2v)) * Phi(tau*s / sqrt(v)) with v = 1 + tau^2 * info.
    """
    if info <= 0.0:
        return 0.0
    score = z * math.sqrt(info)
    v = 1.0 + tau * tau * info
    return (
        math.log(2.0)
        - 0.5 * math.log(v)
        + tau * tau * score * score / (2.0 * v)
        + log_normal_cdf(tau * score / math.sqrt(v))
    )


def two_sided_z_boundary(info: float, tau: float, alpha: float) -> float:
    """|z| where the two-sided normal(0, tau^2) mixture likelihood ratio reaches 1/alpha."""
    if info <= 0.0:
        return math.inf
    v = 1.0 + tau * tau * info
    return math.sqrt(v / (tau * tau * info) * (2.0 * math.log(1.0 / alpha) + math.log(v)))


def log_mean_exp(values: Iterable[float]) -> float:
    items = list(values)
    if not items:
        return -math.inf
    top = max(items)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(item - top) for item in items) / len(items))
