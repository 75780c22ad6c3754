"""The judge's verdict at one look: the tests combined, with p-values, intervals and effect sizes.

Decision rules (``alpha`` is the false-alarm rate: the chance of failing a canary that is no worse than
the margin allows; J is the number of tests of the metric, 1 for counts and 2 for samples):
- sequential (``earlyStop``, the default): a test fails the canary at the first look where its mixture
  likelihood ratio reaches J/alpha (always valid, so looking at every measurement is free); the canary
  passes early when every test's "no worse than the margin" ratio reaches 1/alpha (needs a margin > 0);
- fixed sample: only the last look decides, with each test's fixed-sample p-value against alpha/J;
- at the last look without a failure the verdict is Pass when there is enough data, else NoData; an
  earlier look without a decision is Undecided;
- samples: no verdict at all while either version has fewer than ``min_samples`` samples (the rank and
  spread tests lean on normal approximations); counts: a failure needs no minimum (the test is exact),
  a pass needs ``min_samples`` requests on both sides.
The reported p-value of a sequential test is its always-valid p-value, exp(-largest log ratio so far);
intervals are 1-alpha confidence sequences when sequential and fixed-sample intervals otherwise.

What it must not do: fetch data or keep state between looks (the caller passes ``max_log_lr`` back in).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from graylane.analysis.judge.counts import (
    CountLook,
    CountTotals,
    exact_p_value,
    fixed_ratio_interval,
    mixture_log_lr,
    sequential_ratio_interval,
    totals,
)
from graylane.analysis.judge.distributions import normal_ppf
from graylane.analysis.judge.samples import brown_forsythe, hodges_lehmann, mann_whitney
from graylane.analysis.judge.sequential import one_sided_log_lr, two_sided_z_boundary
from graylane.api.analysis import Direction, JudgeEffect, JudgeSide, JudgeTest, JudgeVerdict

__all__ = ["Judgement", "Settings", "judge_counts", "judge_samples"]

CONDITIONAL_BINOMIAL: Final = "conditional-binomial"
MANN_WHITNEY: Final = "mann-whitney"
BROWN_FORSYTHE: Final = "brown-forsythe"
# Prior scales of the normal mixtures, in each statistic's effect units: P(canary > stable) - 1/2 for
# the rank test (regressions of 0.05-0.3 matter), a standardized mean difference of absolute deviations
# for the spread test (0.2-1). Chosen on the simulation (graylane.analysis.bench): 0.1 / 0.3 had a few
# points more power for small shifts than 0.15-0.25 / 0.5, with the same false-alarm rate.
_TAU_RANK: Final = 0.1
_TAU_SPREAD: Final = 0.3


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    margin: float = 0.0
    sequential: bool = True
    min_samples: int = 20
    direction: Direction = Direction.INCREASE


@dataclass(frozen=True)
class Judgement:
    verdict: JudgeVerdict
    tests: tuple[JudgeTest, ...]
    canary: JudgeSide
    stable: JudgeSide
    effects: tuple[JudgeEffect, ...] = ()
    max_log_lr: Mapping[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for a measurement's value: the data, the headline effect and the tests' p-values."""
        tests = ", ".join(
            f"{t.name} p={_fmt(t.p_value)}{' < ' + _fmt(t.threshold) if t.rejected else ''}"
            for t in self.tests
        )
        parts = [f"{self.verdict}: {_side('canary', self.canary)}, {_side('stable', self.stable)}"]
        effect = self.effects[0] if self.effects else None
        if effect is not None and (effect.estimate is not None or effect.lower is not None):
            interval = f" [{_fmt(effect.lower)}, {_fmt(effect.upper)}]" if effect.lower is not None else ""
            parts.append(f"{effect.name} {_fmt(effect.estimate)}{interval}")
        parts.append(tests)
        return "; ".join(parts)


def _side(name: str, side: JudgeSide) -> str:
    if side.total is not None:
        rate = f" ({side.rate:.3%})" if side.rate is not None else ""
        return f"{name} {side.events}/{side.total}{rate}"
    median = f" median {side.median:.4g}" if side.median is not None else ""
    return f"{name} {side.samples or 0} samples{median}"


def _fmt(value: float | None) -> str:
    return "inf" if value is None else f"{value:.4g}"


def _finite(value: float) -> float | None:
    """Status fields carry no infinities: an unbounded interval end is left out."""
    return value if math.isfinite(value) else None


def _running_max(prior: Mapping[str, float], name: str, value: float) -> float:
    return max(prior.get(name, -math.inf), value)


def _verdict(rejected: bool, early_pass: bool, enough: bool, final: bool) -> JudgeVerdict:
    if rejected:
        return JudgeVerdict.FAIL
    if early_pass and enough:
        return JudgeVerdict.PASS
    if final:
        return JudgeVerdict.PASS if enough else JudgeVerdict.NO_DATA
    return JudgeVerdict.UNDECIDED


# --- counts ----------------------------------------------------------------------------------------------


def judge_counts(
    looks: Sequence[CountLook],
    settings: Settings,
    *,
    final: bool,
    max_log_lr: Mapping[str, float] | None = None,
    intervals: bool = True,
) -> Judgement:
    """The conditional binomial test on every look so far (see ``counts``)."""
    null = 1.0 + settings.margin
    pooled = totals(looks)
    enough = min(pooled.canary_total, pooled.stable_total) >= max(settings.min_samples, 1)
    carried = dict(max_log_lr or {})
    if settings.sequential:
        worst = _running_max(carried, CONDITIONAL_BINOMIAL, mixture_log_lr(looks, null, worse=True))
        carried[CONDITIONAL_BINOMIAL] = worst
        threshold = settings.alpha
        p_value = min(1.0, math.exp(-worst))
        rejected = worst >= math.log(1.0 / settings.alpha)
        ok = settings.margin > 0 and mixture_log_lr(looks, null, worse=False) >= math.log(
            1.0 / settings.alpha
        )
    else:
        threshold, p_value, ok = settings.alpha, exact_p_value(looks, null), False
        rejected = final and p_value < threshold
    test = JudgeTest(name=CONDITIONAL_BINOMIAL, p_value=p_value, threshold=threshold, rejected=rejected)
    verdict = _verdict(rejected, ok and settings.sequential, enough, final)
    effects = _count_effects(looks, settings) if intervals else ()
    return Judgement(
        verdict, (test,), _count_side(pooled, True), _count_side(pooled, False), effects, carried
    )


def _count_side(pooled: CountTotals, canary: bool) -> JudgeSide:
    events = pooled.canary_events if canary else pooled.stable_events
    total = pooled.canary_total if canary else pooled.stable_total
    return JudgeSide(events=events, total=total, rate=events / total if total else None)


def _count_effects(looks: Sequence[CountLook], settings: Settings) -> tuple[JudgeEffect, ...]:
    pooled = totals(looks)
    interval = sequential_ratio_interval if settings.sequential else fixed_ratio_interval
    low, high = interval(looks, settings.alpha)
    ratio = JudgeEffect(
        name="rate ratio (canary / stable)",
        estimate=pooled.ratio,
        lower=_finite(low),
        upper=_finite(high),
        confidence=1.0 - settings.alpha,
    )
    if pooled.canary_total == 0 or pooled.stable_total == 0:
        return (ratio,)
    difference = pooled.canary_events / pooled.canary_total - pooled.stable_events / pooled.stable_total
    return ratio, JudgeEffect(name="rate difference (canary - stable)", estimate=difference)


# --- samples ---------------------------------------------------------------------------------------------


def judge_samples(
    canary: Sequence[float],
    stable: Sequence[float],
    settings: Settings,
    *,
    final: bool,
    max_log_lr: Mapping[str, float] | None = None,
    intervals: bool = True,
) -> Judgement:
    """Mann-Whitney for location and Brown-Forsythe for spread, each at alpha/2, on all samples so far."""
    scale = 1.0 + settings.margin
    increase = settings.direction is Direction.INCREASE
    # "Worse" is canary > stable * scale for Increase, stable > canary * scale for Decrease.
    rank = (
        mann_whitney(canary, [v * scale for v in stable])
        if increase
        else mann_whitney(stable, [v * scale for v in canary])
    )
    spread = brown_forsythe(canary, stable, scale)
    enough = min(len(canary), len(stable)) >= max(settings.min_samples, 2)
    carried = dict(max_log_lr or {})
    tests, ok = _sample_tests(
        rank.z,
        rank.info,
        rank.p_fixed,
        spread.t,
        spread.info,
        spread.p_fixed,
        settings,
        enough=enough,
        final=final,
        carried=carried,
    )
    rejected = any(test.rejected for test in tests)
    verdict = _verdict(rejected, ok and settings.sequential and settings.margin > 0, enough, final)
    if intervals:
        plain = rank if increase and scale == 1.0 else mann_whitney(canary, stable)
        effects = _sample_effects(canary, stable, settings, plain.superiority, spread.ratio, rank.info)
    else:
        effects = ()
    side = (_sample_side(canary), _sample_side(stable))
    return Judgement(verdict, tests, side[0], side[1], effects, carried)


def _sample_tests(
    rank_z: float,
    rank_info: float,
    rank_p: float,
    spread_t: float,
    spread_info: float,
    spread_p: float,
    settings: Settings,
    *,
    enough: bool,
    final: bool,
    carried: dict[str, float],
) -> tuple[tuple[JudgeTest, ...], bool]:
    share = settings.alpha / 2.0
    specs = (
        (MANN_WHITNEY, rank_z, rank_info, rank_p, _TAU_RANK),
        (BROWN_FORSYTHE, spread_t, spread_info, spread_p, _TAU_SPREAD),
    )
    tests: list[JudgeTest] = []
    ok = True
    for name, z, info, p_fixed, tau in specs:
        if settings.sequential:
            worst = _running_max(carried, name, one_sided_log_lr(z, info, tau))
            carried[name] = worst
            p_value = min(1.0, math.exp(-worst))
            rejected = enough and worst >= math.log(1.0 / share)
            ok = ok and one_sided_log_lr(-z, info, tau) >= math.log(1.0 / settings.alpha)
        else:
            p_value, rejected = p_fixed, enough and final and p_fixed < share
        statistic = round(z, 6)
        tests.append(
            JudgeTest(name=name, p_value=p_value, threshold=share, statistic=statistic, rejected=rejected)
        )
    return tuple(tests), ok


def _sample_side(values: Sequence[float]) -> JudgeSide:
    if not values:
        return JudgeSide(samples=0)
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    return JudgeSide(samples=len(values), median=median)


def _sample_effects(
    canary: Sequence[float],
    stable: Sequence[float],
    settings: Settings,
    superiority: float,
    spread_ratio: float | None,
    info: float,
) -> tuple[JudgeEffect, ...]:
    confidence = 1.0 - settings.alpha
    z = (
        two_sided_z_boundary(info, _TAU_RANK, settings.alpha)
        if settings.sequential
        else normal_ppf(1.0 - settings.alpha / 2.0)
    )
    effects: list[JudgeEffect] = []
    shift = hodges_lehmann(canary, stable, z)
    if shift is not None:
        estimate, low, high, as_ratio = shift
        name = (
            "median ratio (Hodges-Lehmann, canary / stable)" if as_ratio else "median shift (canary - stable)"
        )
        effects.append(
            JudgeEffect(
                name=name, estimate=estimate, lower=_finite(low), upper=_finite(high), confidence=confidence
            )
        )
    effects.append(JudgeEffect(name="P(canary > stable)", estimate=superiority))
    if spread_ratio is not None:
        effects.append(
            JudgeEffect(name="spread ratio (canary / stable, mean absolute deviation)", estimate=spread_ratio)
        )
    return tuple(effects)
