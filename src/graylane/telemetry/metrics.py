"""Per-Rollout metrics for operators, on the controller's /metrics, and the process and Python runtime ones.

Series (`SERIES` lists every name; the Grafana dashboard in deploy/grafana may only query these):

- `graylane_rollout_info{namespace,name,phase,step,state,strategy}` = 1 for every Rollout in the cache:
  phase, the current step index ("0" before any), the step state and the strategy (canary, partition,
  blue-green), computed at scrape time from the informer, so it is never stale and costs nothing between
  scrapes;
- `graylane_rollout_traffic_weight{namespace,name}`: the percent of requests the routing objects send to
  the canary now, read back from the cached Ingress/HTTPRoute objects (telemetry/routed.py); absent for
  Rollouts without trafficRoutings or whose objects carry no weight;
- `graylane_rollout_step_duration_seconds{namespace,strategy}` and
  `graylane_rollout_release_duration_seconds{namespace,strategy,result}` (result: succeeded, cancelled):
  histograms observed by the leader when it sees a step or a release end (telemetry/observer.py). The
  Rollout's name is left out of the histograms on purpose: with ten buckets per series, a name label
  would make a thousand Rollouts ten thousand series;
- `graylane_rollout_user_actions_total{namespace,verb}`: approvals, pauses, promotions... as Events say;
- `process_*` (CPU, memory, open fds, start time) and `python_gc_*` / `python_info` from
  prometheus_client's own collectors, on the manager's registry.

This module must not read the clock for the info series nor talk to the API server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from graylane.api.rollout_v1beta1 import Rollout
from graylane.telemetry.routed import ObjectRef, canary_weight, objects_to_read, read_back

__all__ = ["SERIES", "RolloutMetrics", "rollout_info_labels", "strategy_of"]

Obj = dict[str, Any]
Lookup = Callable[[str, ObjectRef], Obj | None]  # (namespace, object) -> the cached object
DURATION_BUCKETS: Final = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
SERIES: Final = frozenset(
    {
        "graylane_rollout_info",
        "graylane_rollout_traffic_weight",
        "graylane_rollout_step_duration_seconds",
        "graylane_rollout_release_duration_seconds",
        "graylane_rollout_user_actions_total",
        "graylane_api_requests_total",
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds",
        "workqueue_depth",
        "leader_election_master_status",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "python_gc_collections_total",
        "python_info",
    }
)


def strategy_of(obj: Mapping[str, Any]) -> str:
    """canary (extra canary Deployment), partition (in place) or blue-green, from the raw v1beta1 spec."""
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    if strategy.get("blueGreen") is not None and strategy.get("canary") is None:
        return "blue-green"
    canary = strategy.get("canary") or {}
    return "canary" if canary.get("enableExtraWorkloadForCanary") else "partition"


def rollout_info_labels(obj: Mapping[str, Any]) -> tuple[str, str, str, str, str, str]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    sub = status.get("canaryStatus") or status.get("blueGreenStatus") or {}
    return (
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(status.get("phase") or "Unknown"),
        str(sub.get("currentStepIndex") or 0),
        str(sub.get("currentStepState") or ""),
        strategy_of(obj),
    )


class _RolloutCollector(Collector):
    """Computes the info and traffic series from the caches at every scrape."""

    def __init__(self, rollouts: Callable[[], Iterable[Obj]], lookup: Lookup) -> None:
        self._rollouts = rollouts
        self._lookup = lookup

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "graylane_rollout_info",
            "One per Rollout: its phase, current step, step state and strategy",
            labels=["namespace", "name", "phase", "step", "state", "strategy"],
        )
        weight = GaugeMetricFamily(
            "graylane_rollout_traffic_weight",
            "Percent of requests the routing objects send to the canary now (read back from them)",
            labels=["namespace", "name"],
        )
        for obj in self._rollouts():
            labels = rollout_info_labels(obj)
            info.add_metric(list(labels), 1.0)
            applied = self._weight(obj, labels[0])
            if applied is not None:
                weight.add_metric([labels[0], labels[1]], float(applied))
        yield info
        yield weight

    def _weight(self, obj: Obj, namespace: str) -> int | None:
        try:
            rollout = Rollout.from_obj(obj)
        except ValueError:  # a Rollout the models cannot read has no weight to show
            return None
        wanted = objects_to_read(rollout)
        if not wanted:
            return None
        return canary_weight(read_back(rollout, {ref: self._lookup(namespace, ref) for ref in wanted}))


class RolloutMetrics:
    """The operator's series on `registry`; the observer feeds the histograms and the action counter."""

    def __init__(
        self,
        registry: CollectorRegistry,
        rollouts: Callable[[], Iterable[Obj]],
        lookup: Lookup,
        *,
        runtime: bool = True,
    ) -> None:
        registry.register(_RolloutCollector(rollouts, lookup))
        if runtime:  # process_* and python_* as every Prometheus client exposes them by default
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.step_duration = Histogram(
            "graylane_rollout_step_duration_seconds",
            "Time from entering a step to leaving it (pods, traffic, pause and approval included)",
            ["namespace", "strategy"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.release_duration = Histogram(
            "graylane_rollout_release_duration_seconds",
            "Time from a release's start (Progressing) to its end (Healthy), by result",
            ["namespace", "strategy", "result"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.user_actions = Counter(
            "graylane_rollout_user_actions",
            "User actions on Rollouts (approve, pause, resume, promote, abort, undo)",
            ["namespace", "verb"],
            registry=registry,
        )
