"""Pure arithmetic of the benchmark: percentiles, growth slopes and API-request accounting.

What it does: summarises latency samples (p50/p90/p99/max), fits a least-squares slope to RSS samples,
classifies API requests into reads, watches and writes, subtracts counter snapshots, and spreads a
phase's requests over its Rollouts and steps. It also parses Prometheus text for the counters the
benchmark reads from `/metrics`.

What it must not do: I/O, clocks, or anything that needs a cluster (it is unit-tested on its own).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "READ_VERBS",
    "WATCH_VERB",
    "LatencySummary",
    "RequestCounts",
    "RequestSummary",
    "delta",
    "is_write",
    "parse_counter",
    "per_rollout_step",
    "percentile",
    "slope_per_minute",
    "summarise_requests",
]

RequestCounts = collections.Counter[tuple[str, str]]  # (verb, resource[/subresource]) -> requests
READ_VERBS = frozenset({"get", "list"})
WATCH_VERB = "watch"
# Leader election renews its Lease every few seconds whatever the load; it is not work per Rollout.
NOT_PER_ROLLOUT = frozenset({"leases"})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclasses.dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencySummary | None:
        """None for no samples: a missing figure must not read as zero."""
        if not values:
            return None
        return cls(
            count=len(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            max=max(values),
            mean=sum(values) / len(values),
        )


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, in value units per minute."""
    if len(samples) < 2:
        raise ValueError("a slope needs at least two samples")
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in samples)
    if var_t == 0:
        raise ValueError("samples all at the same time")
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var_t * 60.0


def is_write(verb: str) -> bool:
    """Everything that is not a read or a watch changes state (create, update, patch, delete...)."""
    return verb not in READ_VERBS and verb != WATCH_VERB


def delta(after: Mapping[tuple[str, str], int], before: Mapping[tuple[str, str], int]) -> RequestCounts:
    """Requests made between two snapshots of a monotonic counter (zero rows dropped)."""
    out: RequestCounts = collections.Counter()
    for key, value in after.items():
        diff = value - before.get(key, 0)
        if diff:
            out[key] = diff
    return out


@dataclasses.dataclass(frozen=True)
class RequestSummary:
    """One phase's requests: totals by class, and writes spread over Rollouts x steps."""

    total: int
    reads: int
    watches: int
    writes: int
    writes_per_rollout_step: float  # leases excluded (see NOT_PER_ROLLOUT)
    requests_per_rollout_step: float  # leases excluded
    by_key_per_rollout_step: dict[str, float]


def per_rollout_step(counts: Mapping[tuple[str, str], int], rollouts: int, steps: int) -> dict[str, float]:
    """`verb resource` -> requests per Rollout per step, largest first; leases left out."""
    if rollouts <= 0 or steps <= 0:
        raise ValueError("need at least one rollout and one step")
    rows = [
        (f"{verb} {resource}", value / (rollouts * steps))
        for (verb, resource), value in counts.items()
        if _resource_root(resource) not in NOT_PER_ROLLOUT
    ]
    return dict(sorted(rows, key=lambda row: (-row[1], row[0])))


def summarise_requests(counts: Mapping[tuple[str, str], int], rollouts: int, steps: int) -> RequestSummary:
    per_rollout = {k: v for k, v in counts.items() if _resource_root(k[1]) not in NOT_PER_ROLLOUT}
    writes = sum(v for (verb, _), v in counts.items() if is_write(verb))
    return RequestSummary(
        total=sum(counts.values()),
        reads=sum(v for (verb, _), v in counts.items() if verb in READ_VERBS),
        watches=sum(v for (verb, _), v in counts.items() if verb == WATCH_VERB),
        writes=writes,
        writes_per_rollout_step=sum(v for (verb, _), v in per_rollout.items() if is_write(verb))
        / (rollouts * steps),
        requests_per_rollout_step=sum(per_rollout.values()) / (rollouts * steps),
        by_key_per_rollout_step=per_rollout_step(counts, rollouts, steps),
    )


def _resource_root(resource: str) -> str:
    return resource.split("/", 1)[0]


_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_counter(text: str, name: str, label_names: Iterable[str]) -> collections.Counter[tuple[str, ...]]:
    """Sum the samples of one metric (exposition name, e.g. `graylane_api_requests_total`) by labels."""
    wanted = tuple(label_names)
    out: collections.Counter[tuple[str, ...]] = collections.Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        labels = {m["key"]: m["value"] for m in _LABEL.finditer(match["labels"] or "")}
        out[tuple(labels.get(key, "") for key in wanted)] += int(float(match["value"]))
    return out
