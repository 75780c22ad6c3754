"""Seeded simulation of the judge: false-alarm rate and power over many synthetic canary analyses.

What this module does: plays a whole analysis of ``looks`` looks per trial, with synthetic data whose
truth is known (a regression of a given size, or none), through the same ``judge_counts`` /
``judge_samples`` the controller uses, in both modes on the same data: sequential (stop at the first
decision) and fixed sample (decide at the last look only). It counts how often the canary was failed
(the false-alarm rate when there is no regression, the power when there is one), passed, or left
without a verdict, and at which look decisions came. A ``random.Random(seed)`` drives everything, so a
run is reproducible to the last digit.

Data: errors are binomial per request (``binomial`` below, exact by geometric jumps); latency samples are
log-normal (median 100 ms), a regression multiplies the canary's median or its log-spread.

What it must not do: print, read clocks or files (``graylane.analysis.bench`` is the command).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from graylane.analysis.judge.counts import CountLook
from graylane.analysis.judge.verdict import Judgement, Settings, judge_counts, judge_samples
from graylane.api.analysis import JudgeVerdict

__all__ = [
    "CountScenario",
    "ModeResult",
    "SampleScenario",
    "ScenarioResult",
    "binomial",
    "simulate_counts",
    "simulate_samples",
]


@dataclass(frozen=True)
class CountScenario:
    name: str
    ratio: float  # canary error rate / stable error rate (1.0: no regression)
    base_rate: float = 0.01
    canary_per_look: int = 500
    stable_per_look: int = 2000


@dataclass(frozen=True)
class SampleScenario:
    name: str
    shift: float = 1.0  # canary median / stable median
    spread: float = 1.0  # canary log-spread / stable log-spread
    per_look: int = 30
    sigma: float = 0.25


@dataclass(frozen=True)
class ModeResult:
    trials: int
    failed: int
    passed: int
    no_data: int
    fail_looks: tuple[int, ...]  # the look at which each failure was decided
    pass_looks: tuple[int, ...]

    @property
    def fail_rate(self) -> float:
        return self.failed / self.trials

    def passed_before(self, look: int) -> int:
        """Passes decided before ``look`` (early passes when ``look`` is the last)."""
        return sum(1 for at in self.pass_looks if at < look)

    @property
    def mean_fail_look(self) -> float | None:
        return sum(self.fail_looks) / len(self.fail_looks) if self.fail_looks else None

    @property
    def mean_pass_look(self) -> float | None:
        return sum(self.pass_looks) / len(self.pass_looks) if self.pass_looks else None


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    sequential: ModeResult
    fixed: ModeResult


def binomial(n: int, p: float, rng: random.Random) -> int:
    """Exact Binomial(n, p) draw: successes are counted by geometric jumps (expected n*p + 1 steps)."""
    if p <= 0.0 or n <= 0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(n, 1.0 - p, rng)
    log_q = math.log1p(-p)
    count, position = 0, 0
    while True:
        # 1 - random() lies in (0, 1], so the logarithm is finite.
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1


@dataclass
class _Tally:
    failed: int = 0
    passed: int = 0
    no_data: int = 0

    def __post_init__(self) -> None:
        self.fail_looks: list[int] = []
        self.pass_looks: list[int] = []

    def add(self, verdict: JudgeVerdict, look: int) -> None:
        if verdict is JudgeVerdict.FAIL:
            self.failed += 1
            self.fail_looks.append(look)
        elif verdict is JudgeVerdict.PASS:
            self.passed += 1
            self.pass_looks.append(look)
        else:
            self.no_data += 1

    def result(self, trials: int) -> ModeResult:
        return ModeResult(
            trials, self.failed, self.passed, self.no_data, tuple(self.fail_looks), tuple(self.pass_looks)
        )


def _play(
    looks: int, judge: Callable[[int, Settings, dict[str, float]], Judgement], settings: Settings
) -> tuple[JudgeVerdict, int, JudgeVerdict]:
    """One trial in both modes on the same data: (sequential verdict, its look, fixed verdict)."""
    sequential = replace(settings, sequential=True)
    carried: dict[str, float] = {}
    verdict, at = JudgeVerdict.UNDECIDED, looks
    for look in range(1, looks + 1):
        judgement = judge(look, sequential, carried)
        carried = dict(judgement.max_log_lr)
        if judgement.verdict is not JudgeVerdict.UNDECIDED:
            verdict, at = judgement.verdict, look
            break
    fixed = judge(looks, replace(settings, sequential=False), {}).verdict
    return verdict, at, fixed


def simulate_counts(
    scenario: CountScenario, settings: Settings, *, looks: int, trials: int, seed: int
) -> ScenarioResult:
    rng = random.Random(seed)
    tallies = (_Tally(), _Tally())
    canary_rate = scenario.base_rate * scenario.ratio
    for _ in range(trials):
        data = [
            CountLook(
                binomial(scenario.canary_per_look, canary_rate, rng),
                scenario.canary_per_look,
                binomial(scenario.stable_per_look, scenario.base_rate, rng),
                scenario.stable_per_look,
            )
            for _ in range(looks)
        ]

        def judge(
            look: int, mode: Settings, carried: dict[str, float], data: list[CountLook] = data
        ) -> Judgement:
            return judge_counts(data[:look], mode, final=look == looks, max_log_lr=carried, intervals=False)

        verdict, at, fixed = _play(looks, judge, settings)
        tallies[0].add(verdict, at)
        tallies[1].add(fixed, looks)
    return ScenarioResult(scenario.name, tallies[0].result(trials), tallies[1].result(trials))


def _lognormal(count: int, median: float, sigma: float, rng: random.Random) -> list[float]:
    return [median * math.exp(sigma * rng.gauss(0.0, 1.0)) for _ in range(count)]


def simulate_samples(
    scenario: SampleScenario, settings: Settings, *, looks: int, trials: int, seed: int
) -> ScenarioResult:
    rng = random.Random(seed)
    tallies = (_Tally(), _Tally())
    per_look = scenario.per_look
    for _ in range(trials):
        canary = _lognormal(per_look * looks, 100.0 * scenario.shift, scenario.sigma * scenario.spread, rng)
        stable = _lognormal(per_look * looks, 100.0, scenario.sigma, rng)

        def judge(
            look: int,
            mode: Settings,
            carried: dict[str, float],
            c: Sequence[float] = canary,
            s: Sequence[float] = stable,
        ) -> Judgement:
            upto = look * per_look
            return judge_samples(
                c[:upto], s[:upto], mode, final=look == looks, max_log_lr=carried, intervals=False
            )

        verdict, at, fixed = _play(looks, judge, settings)
        tallies[0].add(verdict, at)
        tallies[1].add(fixed, looks)
    return ScenarioResult(scenario.name, tallies[0].result(trials), tallies[1].result(trials))
