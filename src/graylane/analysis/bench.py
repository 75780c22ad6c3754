"""``python -m graylane.analysis.bench``: the judge's false-alarm rate and power, measured by simulation.

Prints one Markdown table (the one in BENCHMARKS.md) and optionally writes the figures as JSON. Every
scenario is a seeded simulation (``graylane.analysis.judge.simulate``) of a 10-look analysis; each rate
comes with its 95% Clopper-Pearson interval, so a reader can see how precisely it was measured.

    python -m graylane.analysis.bench                   # 1,000 trials per case, 4,000 without regression
    python -m graylane.analysis.bench --trials 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from graylane.analysis.judge.distributions import beta_ppf
from graylane.analysis.judge.simulate import (
    CountScenario,
    ModeResult,
    SampleScenario,
    ScenarioResult,
    simulate_counts,
    simulate_samples,
)
from graylane.analysis.judge.verdict import Settings

__all__ = ["Case", "main", "run_cases"]

LOOKS = 10
ALPHA = 0.05


@dataclass(frozen=True)
class Case:
    kind: str  # counts | samples
    truth: str  # what the simulated canary really does
    scenario: CountScenario | SampleScenario
    settings: Settings
    null: bool  # True when failing the canary would be a false alarm


def cases() -> tuple[Case, ...]:
    counts = Settings(alpha=ALPHA, min_samples=100)
    samples = Settings(alpha=ALPHA, min_samples=20)
    return (
        Case("counts", "no regression", CountScenario("1.0x", 1.0), counts, True),
        Case("counts", "error rate 1.2x", CountScenario("1.2x", 1.2), counts, False),
        Case("counts", "error rate 1.5x", CountScenario("1.5x", 1.5), counts, False),
        Case("counts", "error rate 2x", CountScenario("2x", 2.0), counts, False),
        Case(
            "counts",
            "error rate 1.1x, margin 0.2",
            CountScenario("1.1x", 1.1),
            replace(counts, margin=0.2),
            True,
        ),
        Case(
            "counts",
            "no regression, margin 0.2",
            CountScenario("1.0x-m", 1.0),
            replace(counts, margin=0.2),
            True,
        ),
        Case("samples", "no regression", SampleScenario("null"), samples, True),
        Case("samples", "latency +5%", SampleScenario("+5%", shift=1.05), samples, False),
        Case("samples", "latency +10%", SampleScenario("+10%", shift=1.10), samples, False),
        Case("samples", "spread 1.25x, same median", SampleScenario("spread", spread=1.25), samples, False),
        Case(
            "samples",
            "no regression, margin 0.1",
            SampleScenario("null-m"),
            replace(samples, margin=0.1),
            True,
        ),
    )


def run_case(case: Case, *, trials: int, seed: int) -> ScenarioResult:
    if isinstance(case.scenario, CountScenario):
        return simulate_counts(case.scenario, case.settings, looks=LOOKS, trials=trials, seed=seed)
    return simulate_samples(case.scenario, case.settings, looks=LOOKS, trials=trials, seed=seed)


def run_cases(*, trials: int, null_trials: int, seed: int) -> list[tuple[Case, ScenarioResult]]:
    return [
        (case, run_case(case, trials=null_trials if case.null else trials, seed=seed + index))
        for index, case in enumerate(cases())
    ]


def _interval(successes: int, trials: int) -> tuple[float, float]:
    low = 0.0 if successes == 0 else beta_ppf(0.025, successes, trials - successes + 1)
    high = 1.0 if successes == trials else beta_ppf(0.975, successes + 1, trials - successes)
    return low, high


def _rate(successes: int, trials: int) -> str:
    low, high = _interval(successes, trials)
    return f"{successes / trials:.3f} [{low:.3f}, {high:.3f}]"


def _look(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _row(case: Case, mode: str, result: ModeResult) -> str:
    label = "false alarms" if case.null else "power"
    passed = f"{result.passed / result.trials:.3f} | {result.passed_before(LOOKS) / result.trials:.3f}"
    return (
        f"| {case.kind} | {case.truth} | {mode} | {label} {_rate(result.failed, result.trials)} | "
        f"{_look(result.mean_fail_look)} | {passed} | {result.trials} |"
    )


def table(results: Sequence[tuple[Case, ScenarioResult]]) -> str:
    lines = [
        "| metric | simulated canary | mode | failed the canary (95% CI) | mean look of failure | passed | "
        "passed before the last look | trials |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, result in results:
        lines.append(_row(case, "sequential", result.sequential))
        lines.append(_row(case, "fixed", result.fixed))
    return "\n".join(lines)


def to_json(results: Sequence[tuple[Case, ScenarioResult]], seed: int, seconds: float) -> dict[str, Any]:
    def mode(result: ModeResult) -> dict[str, Any]:
        return {
            "trials": result.trials,
            "failed": result.failed,
            "passed": result.passed,
            "no_data": result.no_data,
            "fail_rate": result.fail_rate,
            "fail_rate_ci95": _interval(result.failed, result.trials),
            "mean_fail_look": result.mean_fail_look,
            "mean_pass_look": result.mean_pass_look,
            "passed_early": result.passed_before(LOOKS),
        }

    return {
        "looks": LOOKS,
        "alpha": ALPHA,
        "seed": seed,
        "seconds": round(seconds, 1),
        "cases": [
            {
                "kind": case.kind,
                "truth": case.truth,
                "null": case.null,
                "margin": case.settings.margin,
                "scenario": vars(case.scenario),
                "sequential": mode(result.sequential),
                "fixed": mode(result.fixed),
            }
            for case, result in results
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m graylane.analysis.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--trials", type=int, default=1000, help="trials per case with a regression")
    parser.add_argument("--null-trials", type=int, default=4000, help="trials per case without one")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.null_trials < 1:
        parser.error("--trials and --null-trials must be at least 1")
    started = time.perf_counter()
    results = run_cases(trials=args.trials, null_trials=args.null_trials, seed=args.seed)
    seconds = time.perf_counter() - started
    print(table(results))
    print(f"\n{LOOKS} looks per analysis, alpha {ALPHA}, seed {args.seed}, {seconds:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(results, args.seed, seconds), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
