"""The judge's verdicts on synthetic data with known answers, and its measured false-alarm rate (seeded)."""

from __future__ import annotations

import math
import random

import pytest

from graylane.analysis.judge.counts import CountLook
from graylane.analysis.judge.simulate import CountScenario, SampleScenario, simulate_counts, simulate_samples
from graylane.analysis.judge.verdict import Settings, judge_counts, judge_samples
from graylane.api.analysis import Direction, JudgeVerdict

ALPHA = 0.05


def lognormal(count: int, median: float, sigma: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(sigma * rng.gauss(0, 1)) for _ in range(count)]


# --- counts -----------------------------------------------------------------------------------------------


def test_ten_percent_errors_against_none_fail_at_the_first_look() -> None:
    # The acceptance scenario: the new version answers 10% errors, the stable none.
    judgement = judge_counts([CountLook(12, 120, 0, 480)], Settings(), final=False)

    assert judgement.verdict is JudgeVerdict.FAIL
    assert judgement.tests[0].rejected
    assert judgement.tests[0].p_value < ALPHA
    assert judgement.canary.rate == pytest.approx(0.1)
    assert judgement.effects[0].estimate is None  # the stable had no errors: no finite ratio
    assert judgement.effects[0].lower is not None
    assert judgement.effects[0].lower > 1.0


def test_equal_rates_stay_undecided_then_pass_at_the_last_look() -> None:
    looks = [CountLook(5, 500, 20, 2000)] * 3

    assert judge_counts(looks[:2], Settings(), final=False).verdict is JudgeVerdict.UNDECIDED
    final = judge_counts(looks, Settings(), final=True)
    assert final.verdict is JudgeVerdict.PASS
    assert final.effects[0].estimate == pytest.approx(1.0)
    assert final.effects[0].lower < 1.0 < final.effects[0].upper  # type: ignore[operator]


def test_too_little_traffic_at_the_last_look_is_no_data_never_a_pass() -> None:
    judgement = judge_counts([CountLook(0, 10, 0, 40)], Settings(min_samples=100), final=True)

    assert judgement.verdict is JudgeVerdict.NO_DATA


def test_no_traffic_at_all_is_no_data() -> None:
    assert judge_counts([CountLook(0, 0, 0, 0)], Settings(), final=True).verdict is JudgeVerdict.NO_DATA


def test_a_regression_inside_the_margin_is_not_failed_and_passes_early_with_enough_data() -> None:
    looks = [CountLook(110, 10_000, 400, 40_000)] * 8  # ratio 1.1 with a 0.5 margin
    settings = Settings(margin=0.5)

    judgement = judge_counts(looks, settings, final=False)

    assert judgement.verdict is JudgeVerdict.PASS
    assert judge_counts(looks, Settings(margin=0.0), final=False).verdict is not JudgeVerdict.PASS


def test_fixed_mode_decides_only_at_the_last_look() -> None:
    looks = [CountLook(40, 1000, 40, 4000)]  # ratio 4
    fixed = Settings(sequential=False)

    assert judge_counts(looks, fixed, final=False).verdict is JudgeVerdict.UNDECIDED
    assert judge_counts(looks, fixed, final=True).verdict is JudgeVerdict.FAIL


def test_the_always_valid_p_value_never_increases() -> None:
    looks = [CountLook(9, 500, 20, 2000), CountLook(3, 500, 20, 2000), CountLook(2, 500, 20, 2000)]
    carried: dict[str, float] = {}
    p_values = []
    for look in range(1, 4):
        judgement = judge_counts(looks[:look], Settings(), final=False, max_log_lr=carried)
        carried = dict(judgement.max_log_lr)
        p_values.append(judgement.tests[0].p_value)

    assert p_values == sorted(p_values, reverse=True)


def test_a_split_that_changes_between_looks_is_judged_per_look() -> None:
    # 20% then 50% canary traffic with equal error rates: no regression, whatever the pooled shares say.
    looks = [CountLook(20, 2000, 80, 8000), CountLook(50, 5000, 50, 5000)]

    judgement = judge_counts(looks, Settings(), final=True)

    assert judgement.verdict is JudgeVerdict.PASS
    assert judgement.tests[0].p_value > 0.5


# --- samples ----------------------------------------------------------------------------------------------


def test_a_slower_canary_fails_and_reports_the_ratio() -> None:
    canary = lognormal(200, 130.0, 0.2, 1)
    stable = lognormal(200, 100.0, 0.2, 2)

    judgement = judge_samples(canary, stable, Settings(), final=False)

    assert judgement.verdict is JudgeVerdict.FAIL
    assert judgement.tests[0].name == "mann-whitney"
    assert judgement.tests[0].rejected
    ratio = judgement.effects[0]
    assert ratio.lower is not None
    assert ratio.upper is not None
    assert ratio.lower < 1.3 < ratio.upper
    assert ratio.lower > 1.0


def test_a_wider_canary_with_the_same_median_fails_on_spread() -> None:
    # Kayenta's blind spot: same median, twice the spread. The rank test is blind, the spread test not.
    canary = lognormal(300, 100.0, 0.5, 3)
    stable = lognormal(300, 100.0, 0.25, 4)

    judgement = judge_samples(canary, stable, Settings(), final=False)
    rank, spread = judgement.tests

    assert judgement.verdict is JudgeVerdict.FAIL
    assert spread.name == "brown-forsythe"
    assert spread.rejected
    assert not rank.rejected


def test_a_faster_canary_passes_and_a_decrease_metric_fails_when_it_drops() -> None:
    faster = lognormal(200, 80.0, 0.2, 5)
    stable = lognormal(200, 100.0, 0.2, 6)

    assert judge_samples(faster, stable, Settings(), final=True).verdict is JudgeVerdict.PASS
    dropped = judge_samples(faster, stable, Settings(direction=Direction.DECREASE), final=False)
    assert dropped.verdict is JudgeVerdict.FAIL


def test_samples_need_the_minimum_before_any_verdict() -> None:
    canary = lognormal(15, 300.0, 0.2, 7)
    stable = lognormal(15, 100.0, 0.2, 8)

    assert (
        judge_samples(canary, stable, Settings(min_samples=20), final=False).verdict is JudgeVerdict.UNDECIDED
    )
    assert judge_samples(canary, stable, Settings(min_samples=20), final=True).verdict is JudgeVerdict.NO_DATA
    assert judge_samples(canary, stable, Settings(min_samples=5), final=False).verdict is JudgeVerdict.FAIL


def test_equal_latency_with_a_margin_passes_early() -> None:
    canary = lognormal(3000, 100.0, 0.1, 9)
    stable = lognormal(3000, 100.0, 0.1, 10)

    assert judge_samples(canary, stable, Settings(margin=0.1), final=False).verdict is JudgeVerdict.PASS


def test_summary_names_the_effect_and_the_tests() -> None:
    judgement = judge_counts([CountLook(30, 1000, 30, 4000)], Settings(), final=False)

    assert judgement.summary().startswith(
        "Fail: canary 30/1000 (3.000%), stable 30/4000 (0.750%); rate ratio (canary / stable) 4 ["
    )
    assert "conditional-binomial p=" in judgement.summary()


# --- measured false-alarm rate (seeded; the full table is `python -m graylane.analysis.bench`) -------------


def bound(trials: int) -> float:
    """alpha plus three binomial standard errors: a fixed-sample test at level alpha stays below it."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / trials)


def test_counts_false_alarms_stay_below_alpha_and_regressions_are_caught() -> None:
    null = simulate_counts(CountScenario("1x", 1.0), Settings(min_samples=100), looks=10, trials=600, seed=11)
    doubled = simulate_counts(
        CountScenario("2x", 2.0), Settings(min_samples=100), looks=10, trials=200, seed=12
    )

    # Sequential decisions are always valid: at most alpha whatever the seed (Ville's inequality).
    assert null.sequential.fail_rate <= ALPHA
    assert null.fixed.fail_rate <= bound(600)
    # Not a judge that never fails: a doubled error rate is found, mostly before the last look.
    assert doubled.sequential.fail_rate >= 0.9
    assert doubled.fixed.fail_rate >= 0.9
    assert doubled.sequential.mean_fail_look is not None
    assert doubled.sequential.mean_fail_look < 6


def test_samples_false_alarms_stay_below_alpha_and_shifts_are_caught() -> None:
    null = simulate_samples(SampleScenario("null"), Settings(), looks=6, trials=150, seed=13)
    slower = simulate_samples(SampleScenario("+15%", shift=1.15), Settings(), looks=6, trials=60, seed=14)

    assert null.sequential.fail_rate <= ALPHA
    assert null.fixed.fail_rate <= bound(150)
    assert slower.sequential.fail_rate >= 0.9
    assert slower.fixed.fail_rate >= 0.9
