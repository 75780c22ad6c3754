"""The judge's building blocks against answers computed independently (closed forms, brute force, tables)."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from graylane.analysis.judge.counts import (
    CountLook,
    exact_p_value,
    fixed_ratio_interval,
    mixture_log_lr,
    sequential_ratio_interval,
)
from graylane.analysis.judge.distributions import (
    beta_ppf,
    betainc,
    binom_cdf,
    binom_sf,
    log_normal_cdf,
    normal_cdf,
    normal_ppf,
    t_sf,
)
from graylane.analysis.judge.samples import brown_forsythe, hodges_lehmann, mann_whitney, thin
from graylane.analysis.judge.sequential import log_mean_exp, one_sided_log_lr, two_sided_z_boundary
from graylane.analysis.judge.simulate import binomial


def brute_binom_sf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


# --- distributions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "x"),
    [(0.975, 1.959963984540054), (0.95, 1.6448536269514722), (0.5, 0.0), (0.001, -3.090232306167813)],
)
def test_normal_quantiles_match_the_tables(p: float, x: float) -> None:
    assert normal_ppf(p) == pytest.approx(x, abs=1e-9)
    assert normal_cdf(normal_ppf(p)) == pytest.approx(p, rel=1e-12)


def test_log_normal_cdf_is_finite_and_continuous_in_the_far_tail() -> None:
    assert log_normal_cdf(-29.99) == pytest.approx(math.log(normal_cdf(-29.99)), rel=1e-6)
    assert log_normal_cdf(-30.01) == pytest.approx(log_normal_cdf(-29.99), rel=1e-2)
    assert math.isfinite(log_normal_cdf(-1e4))


@pytest.mark.parametrize(("a", "b", "x"), [(2, 3, 0.4), (0.5, 0.5, 0.3), (10, 40, 0.2), (1, 1, 0.77)])
def test_incomplete_beta_matches_closed_forms(a: float, b: float, x: float) -> None:
    if (a, b) == (0.5, 0.5):
        expected = 2 / math.pi * math.asin(math.sqrt(x))  # the arcsine distribution
    elif float(a).is_integer() and float(b).is_integer():
        n = int(a + b - 1)  # I_x(a, b) = P(Binomial(a+b-1, x) >= a)
        expected = brute_binom_sf(int(a), n, x)
    else:
        raise AssertionError("no closed form for this case")

    assert betainc(a, b, x) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("n", "p"), [(10, 0.2), (50, 0.01), (200, 0.3), (37, 0.9)])
def test_binomial_tails_match_brute_force_sums(n: int, p: float) -> None:
    for k in range(n + 1):
        assert binom_sf(k, n, p) == pytest.approx(brute_binom_sf(k, n, p), rel=1e-9, abs=1e-15)
        lower_tail = sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1))
        assert binom_cdf(k, n, p) == pytest.approx(lower_tail, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("t", [0.5, 2.0, 4.3, -1.2])
def test_student_t_with_two_degrees_of_freedom_has_a_closed_form(t: float) -> None:
    assert t_sf(t, 2.0) == pytest.approx(0.5 * (1 - t / math.sqrt(2 + t * t)), rel=1e-10)


def test_student_t_matches_the_table() -> None:
    assert t_sf(2.0, 10.0) == pytest.approx(0.036694017385370, rel=1e-9)
    assert t_sf(1.812461123, 10.0) == pytest.approx(0.05, rel=1e-7)


def test_clopper_pearson_bounds_of_5_in_20() -> None:
    assert beta_ppf(0.025, 5, 16) == pytest.approx(0.086571, abs=1e-6)
    assert beta_ppf(0.975, 6, 15) == pytest.approx(0.491046, abs=1e-6)


# --- sequential mixtures ----------------------------------------------------------------------------------


def numeric_half_normal_lr(z: float, info: float, tau: float) -> float:
    score, steps, top = z * math.sqrt(info), 200_000, 12 * tau
    width = top / steps
    total = 0.0
    for i in range(steps):
        theta = (i + 0.5) * width
        density = 2 / (tau * math.sqrt(2 * math.pi)) * math.exp(-0.5 * (theta / tau) ** 2)
        total += math.exp(theta * score - 0.5 * theta * theta * info) * density * width
    return total


@pytest.mark.parametrize(("z", "info", "tau"), [(2.5, 400.0, 0.1), (-1.0, 50.0, 0.3), (0.0, 10.0, 0.5)])
def test_one_sided_mixture_matches_numeric_integration(z: float, info: float, tau: float) -> None:
    assert math.exp(one_sided_log_lr(z, info, tau)) == pytest.approx(
        numeric_half_normal_lr(z, info, tau), rel=1e-5
    )


@pytest.mark.parametrize(("info", "tau", "alpha"), [(100.0, 0.1, 0.05), (3000.0, 0.3, 0.01)])
def test_two_sided_boundary_is_where_the_mixture_reaches_one_over_alpha(
    info: float, tau: float, alpha: float
) -> None:
    z = two_sided_z_boundary(info, tau, alpha)
    v = 1 + tau * tau * info
    score = z * math.sqrt(info)

    assert v**-0.5 * math.exp(tau * tau * score * score / (2 * v)) == pytest.approx(1 / alpha, rel=1e-9)


def test_log_mean_exp_is_stable() -> None:
    assert log_mean_exp([1000.0, 1000.0]) == pytest.approx(1000.0)
    assert log_mean_exp([0.0, math.log(3.0)]) == pytest.approx(math.log(2.0))
    assert log_mean_exp([]) == -math.inf


# --- counts -----------------------------------------------------------------------------------------------


def test_exact_p_value_is_the_binomial_tail() -> None:
    looks = [CountLook(10, 100, 10, 100)]

    assert exact_p_value(looks, 1.0) == pytest.approx(brute_binom_sf(10, 20, 0.5), rel=1e-10)
    # A margin moves the null share: r <= 1.5 means pi0 = 1.5*100 / (1.5*100 + 400).
    assert exact_p_value([CountLook(9, 100, 12, 400)], 1.5) == pytest.approx(
        brute_binom_sf(9, 21, 150 / 550), rel=1e-10
    )


@pytest.mark.parametrize(("worse", "null"), [(True, 1.0), (False, 1.0), (True, 1.3)])
def test_the_mixture_ratio_has_mean_one_under_its_null(worse: bool, null: float) -> None:
    # Exact expectation over the conditional binomial of one look: the defining martingale property.
    a, b, m = 300, 1200, 25
    p0 = null * a / (null * a + b)
    expectation = sum(
        math.comb(m, x)
        * p0**x
        * (1 - p0) ** (m - x)
        * math.exp(mixture_log_lr([CountLook(x, a, m - x, b)], null, worse=worse))
        for x in range(m + 1)
    )

    assert expectation == pytest.approx(1.0, rel=1e-9)


def test_the_mixture_ratio_has_mean_below_one_when_the_canary_is_better() -> None:
    a, b, m, null, true_ratio = 300, 1200, 25, 1.0, 0.7
    p = true_ratio * a / (true_ratio * a + b)
    expectation = sum(
        math.comb(m, x)
        * p**x
        * (1 - p) ** (m - x)
        * math.exp(mixture_log_lr([CountLook(x, a, m - x, b)], null, worse=True))
        for x in range(m + 1)
    )

    assert expectation < 1.0


def test_looks_without_traffic_or_events_carry_no_evidence() -> None:
    assert mixture_log_lr([CountLook(0, 0, 5, 100), CountLook(0, 100, 0, 100)], 1.0, worse=True) == 0.0


def test_ratio_intervals_contain_the_estimate_and_the_sequence_is_wider() -> None:
    looks = [CountLook(30, 1000, 60, 4000)]  # canary rate 3%, stable 1.5%: ratio 2

    fixed = fixed_ratio_interval(looks, 0.05)
    sequential = sequential_ratio_interval(looks, 0.05)

    assert fixed[0] < 2.0 < fixed[1]
    assert sequential[0] < 2.0 < sequential[1]
    assert sequential[0] < fixed[0]
    assert sequential[1] > fixed[1]


def test_ratio_interval_of_a_stable_without_errors_is_unbounded_above() -> None:
    assert fixed_ratio_interval([CountLook(5, 100, 0, 400)], 0.05)[1] == math.inf
    assert sequential_ratio_interval([CountLook(5, 100, 0, 400)], 0.05)[1] == math.inf


# --- samples ----------------------------------------------------------------------------------------------


def brute_u(first: list[float], second: list[float]) -> float:
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in first for b in second)


def permutation_variance_of_u(first: list[float], second: list[float]) -> float:
    pooled, n1 = first + second, len(first)
    values = [
        brute_u([pooled[i] for i in chosen], [pooled[i] for i in range(len(pooled)) if i not in chosen])
        for chosen in itertools.combinations(range(len(pooled)), n1)
    ]
    return statistics.pvariance(values)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([6.0, 7.0, 8.0, 9.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0]),
        ([1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 2.0, 4.0, 1.0]),  # ties within and across groups
        ([3.0, 3.0, 3.0], [3.0, 1.0, 4.0, 3.0]),
    ],
)
def test_mann_whitney_u_and_tie_corrected_variance_match_brute_force(
    first: list[float], second: list[float]
) -> None:
    result = mann_whitney(first, second)
    n1, n2 = len(first), len(second)
    variance = permutation_variance_of_u(first, second)

    assert result.u == pytest.approx(brute_u(first, second))
    assert result.z == pytest.approx((result.u - n1 * n2 / 2) / math.sqrt(variance), rel=1e-9)
    assert result.info == pytest.approx((n1 * n2) ** 2 / variance, rel=1e-9)


def test_mann_whitney_textbook_p_value() -> None:
    # Complete separation of 5 and 5: U = 25, sd = sqrt(25*11/12), continuity-corrected one-sided p.
    result = mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])

    assert result.p_fixed == pytest.approx(normal_cdf(-12.0 / math.sqrt(25 * 11 / 12)), rel=1e-12)
    assert result.superiority == 1.0


def test_mann_whitney_of_identical_values_is_no_evidence() -> None:
    result = mann_whitney([2.0, 2.0], [2.0, 2.0, 2.0])

    assert (result.z, result.p_fixed, result.superiority) == (0.0, 1.0, 0.5)


def test_brown_forsythe_small_example_by_hand() -> None:
    # Deviations from the medians: [1, 0, 1] and [0, 0, 0]; Welch t = (2/3) / sqrt(1/9) = 2 with df = 2.
    result = brown_forsythe([1.0, 2.0, 3.0], [2.0, 2.0, 2.0, 2.0])

    assert result.t == pytest.approx(2.0, rel=1e-12)
    assert result.df == pytest.approx(2.0, rel=1e-12)
    assert result.p_fixed == pytest.approx(0.5 * (1 - 2 / math.sqrt(6)), rel=1e-10)


def test_brown_forsythe_welch_t_by_hand() -> None:
    first, second = [1.0, 2.0, 3.0, 10.0], [4.0, 5.0, 5.0, 6.0, 7.0]
    d1 = [abs(v - statistics.median(first)) for v in first]
    d2 = [abs(v - statistics.median(second)) for v in second]
    part1, part2 = statistics.variance(d1) / 4, statistics.variance(d2) / 5
    t = (statistics.fmean(d1) - statistics.fmean(d2)) / math.sqrt(part1 + part2)
    df = (part1 + part2) ** 2 / (part1**2 / 3 + part2**2 / 4)

    result = brown_forsythe(first, second)

    assert (result.t, result.df) == (pytest.approx(t), pytest.approx(df))
    assert result.p_fixed == pytest.approx(t_sf(t, df))


def test_brown_forsythe_ignores_location_and_sees_spread() -> None:
    rng = random.Random(5)
    base = [rng.gauss(0, 1) for _ in range(200)]
    other = [rng.gauss(0, 1) for _ in range(200)]

    shifted = brown_forsythe([v + 50 for v in base], other)
    wider = brown_forsythe([2 * v for v in base], other)

    assert shifted.t == pytest.approx(brown_forsythe(base, other).t)
    assert wider.t > 5
    assert wider.p_fixed < 1e-6
    assert wider.ratio == pytest.approx(2 * brown_forsythe(base, other).ratio)  # type: ignore[operator]


def test_hodges_lehmann_ratio_is_the_median_pairwise_ratio() -> None:
    estimate, low, high, as_ratio = hodges_lehmann([3.0, 5.0, 7.0], [1.0, 2.0, 3.0], math.inf) or (
        0,
        0,
        0,
        False,
    )

    assert as_ratio is True
    assert estimate == pytest.approx(2.5)  # ratios 1, 1.5, 1.67, 2.33, 2.5, 3, 3.5, 5, 7
    assert (low, high) == (0.0, math.inf)


def test_hodges_lehmann_interval_is_the_rank_inversion() -> None:
    rng = random.Random(9)
    canary = [rng.gauss(10.0, 1.0) - 20 for _ in range(60)]  # negative values: an additive shift
    stable = [rng.gauss(9.0, 1.0) - 20 for _ in range(60)]

    estimate, low, high, as_ratio = hodges_lehmann(canary, stable, 1.959963984540054) or (0, 0, 0, True)

    assert as_ratio is False
    assert low < estimate < high
    # At the interval's ends the rank test is at its critical value, by construction of the inversion.
    z_low = mann_whitney([v - low for v in canary], stable).z
    z_high = mann_whitney([v - high for v in canary], stable).z
    assert z_low == pytest.approx(1.96, abs=0.1)
    assert z_high == pytest.approx(-1.96, abs=0.1)


def test_thin_keeps_the_extremes_and_the_shape() -> None:
    values = list(range(10_000))

    thinned = thin(values, 101)

    assert len(thinned) == 101
    assert thinned[0] == 0
    assert thinned[-1] == 9_999
    assert thinned[50] == pytest.approx(5_000, abs=50)


def test_binomial_draws_have_the_right_mean_and_variance() -> None:
    rng = random.Random(1)
    draws = [binomial(1000, 0.01, rng) for _ in range(20_000)]

    assert statistics.fmean(draws) == pytest.approx(10.0, abs=0.15)
    assert statistics.variance(draws) == pytest.approx(9.9, rel=0.05)
    assert binomial(10, 0.0, rng) == 0
    assert binomial(10, 1.0, rng) == 10
    assert statistics.fmean(binomial(10, 0.9, rng) for _ in range(5000)) == pytest.approx(9.0, abs=0.05)
