"""Operator metrics of metric analysis, on the controller's /metrics.

- `graylane_analysis_run_verdicts_total{namespace,phase,kind}`: runs that ended, by verdict (Successful,
  Failed, Inconclusive, Error) and kind (step, background, other: a run created by hand), counted by the
  leader's AnalysisRun controller in the pass that stores the verdict;
- `graylane_analysis_runs{namespace,phase}`: AnalysisRuns in the cache now, by phase ("Pending" before a
  run's first pass), computed at scrape time from the informer (never stale, free between scrapes).
No run or Rollout name is a label: runs come and go, and names would grow the series without bound.

This module must not talk to the API server.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from graylane.api.analysis import BACKGROUND_STEP, STEP_LABEL

__all__ = ["SERIES", "AnalysisMetrics", "run_kind"]

Obj = dict[str, Any]
SERIES: Final = frozenset({"graylane_analysis_run_verdicts_total", "graylane_analysis_runs"})


def run_kind(run: Obj) -> str:
    step = ((run.get("metadata") or {}).get("labels") or {}).get(STEP_LABEL)
    if not step:
        return "other"
    return "background" if step == BACKGROUND_STEP else "step"


class _RunsCollector(Collector):
    def __init__(self, runs: Callable[[], Iterable[Obj]]) -> None:
        self._runs = runs

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "graylane_analysis_runs", "AnalysisRuns by namespace and phase", labels=["namespace", "phase"]
        )
        counts: Tally[tuple[str, str]] = Tally()
        for run in self._runs():
            namespace = str((run.get("metadata") or {}).get("namespace") or "")
            counts[(namespace, str((run.get("status") or {}).get("phase") or "Pending"))] += 1
        for (namespace, phase), n in sorted(counts.items()):
            family.add_metric([namespace, phase], float(n))
        yield family


class AnalysisMetrics:
    def __init__(self, registry: CollectorRegistry, runs: Callable[[], Iterable[Obj]]) -> None:
        registry.register(_RunsCollector(runs))
        self.verdicts = Counter(
            "graylane_analysis_run_verdicts",
            "AnalysisRuns that ended, by verdict and kind (step, background, other)",
            ["namespace", "phase", "kind"],
            registry=registry,
        )
