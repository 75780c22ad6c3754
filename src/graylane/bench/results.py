"""Turn a finished session's marks, samples, tracker and audit counts into the results document.

What it does: per-phase figures (duration, controller CPU, machine and control-plane CPU, reconciles,
errors, retries, API requests of graylane per Rollout per step), latency summaries, memory figures,
the cross-checks of the request counts, and the verdict on each target of the issue.
What it must not do: I/O beyond reading the audit log through the session, or printing.
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from graylane.bench import profile, stats, summary
from graylane.bench.audit import WindowCounts
from graylane.bench.session import BenchSession, Mark
from graylane.bench.summary import Target
from graylane.bench.tracker import TARGET_TRANSITIONS, Tracker, Transition

__all__ = ["Target", "finish", "phases", "release_results", "requests_section", "rest_results"]

MB = 1e6


def _counter(text: str, name: str, labels: Sequence[str]) -> collections.Counter[tuple[str, ...]]:
    return stats.parse_counter(text, name, labels)


def _metric_delta(a: Mark, b: Mark, name: str, labels: Sequence[str]) -> dict[str, int]:
    if not b.metrics:  # the controller was gone at the end of the phase: no figure
        return {}
    after = _counter(b.metrics, name, labels)
    restarted = a.controller is None or b.controller is None or a.controller.pid != b.controller.pid
    before = (
        collections.Counter() if restarted else _counter(a.metrics, name, labels)
    )  # a new process counts from 0
    return {"/".join(k): v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def phases(session: BenchSession) -> list[dict[str, Any]]:
    out = []
    for a, b in zip(session.marks, session.marks[1:], strict=False):
        samples = session.sampler.between(a.mono, b.mono) if session.sampler else []
        cpu = _cpu_between(a, b)
        control_plane = {
            k: round(v - a.components_cpu[k], 2) for k, v in b.components_cpu.items() if k in a.components_cpu
        }
        ours = (cpu or 0.0) + sum(control_plane.values()) + (b.bench_cpu - a.bench_cpu)
        out.append(
            {
                "name": a.name,
                "duration_s": round(b.mono - a.mono, 3),
                "loadavg_1m": round(a.loadavg[0], 2),
                "controller_cpu_s": None if cpu is None else round(cpu, 2),
                "controller_rss_max_mb": round(max(s.rss for s in samples) / MB, 1) if samples else None,
                "machine_busy_fraction": round(b.machine.busy_fraction_since(a.machine), 3),
                "control_plane_cpu_s": control_plane,
                "bench_cpu_s": round(b.bench_cpu - a.bench_cpu, 2),
                # CPU the rest of the machine used (other engineers' clusters and tests): interference
                "other_processes_cpu_s": round(b.machine.busy - a.machine.busy - ours, 2),
                "reconciles": _metric_delta(
                    a, b, "controller_runtime_reconcile_total", ("controller", "result")
                ),
                "reconcile_errors": _metric_delta(
                    a, b, "controller_runtime_reconcile_errors_total", ("controller",)
                ),
                "queue_retries": _metric_delta(a, b, "workqueue_retries_total", ("name",)),
            }
        )
    return out


def _cpu_between(a: Mark, b: Mark) -> float | None:
    if a.controller is None or b.controller is None:
        return None
    if a.controller.pid != b.controller.pid:  # restarted inside the phase: the new process from its start
        return b.controller.cpu
    return b.controller.cpu - a.controller.cpu


def _summary_obj(summary: stats.LatencySummary | None, scale: float = 1000.0) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "count": summary.count,
        "p50_ms": round(summary.p50 * scale, 1),
        "p90_ms": round(summary.p90 * scale, 1),
        "p99_ms": round(summary.p99 * scale, 1),
        "max_ms": round(summary.max * scale, 1),
        "mean_ms": round(summary.mean * scale, 1),
    }


def _latency_section(tracker: Tracker, session: BenchSession) -> dict[str, Any]:
    main = tracker.latencies()
    via_rs = tracker.latencies(from_replicasets=True)
    pooled = [v for t in TARGET_TRANSITIONS for v in main[t]]
    marks = {m.name: m for m in session.marks}
    lags: list[float] = []
    if session.sampler and "step1" in marks:
        lags = session.sampler.lag_between(marks["step1"].mono, session.marks[-1].mono)
    return {
        "trigger": "canary Deployment status (availableReplicas)"
        if tracker.style == "canary"
        else "new ReplicaSet status (readyReplicas)",
        "transitions": {t.value: _summary_obj(stats.LatencySummary.of(main[t])) for t in Transition},
        "pooled_target_transitions": _summary_obj(stats.LatencySummary.of(pooled)),
        "from_replicaset_ready": {
            t.value: _summary_obj(stats.LatencySummary.of(via_rs[t]))
            for t in (Transition.STEP1_PAUSED, Transition.STEP2_COMPLETED)
        },
        "negative_samples": sum(1 for t in Transition for v in main[t] if v < 0),
        "bench_loop_lag": _summary_obj(stats.LatencySummary.of(lags)),
    }


def requests_section(
    session: BenchSession, rollouts: int, steps_by_phase: Mapping[str, int]
) -> dict[str, Any]:
    mine, everyone = session.collect_requests()
    per_phase: dict[str, Any] = {}
    for name, counts in mine.items():
        summary = stats.summarise_requests(counts.requests, rollouts, max(steps_by_phase.get(name, 1), 1))
        per_phase[name] = dataclasses.asdict(summary) | {
            "steps": steps_by_phase.get(name, 1),
            "by_key": {f"{v} {r}": n for (v, r), n in counts.requests.most_common()},
            "conflicts_409": {f"{v} {r}": n for (v, r), n in counts.conflicts.items()},
            "codes": {str(k): v for k, v in sorted(counts.codes.items())},
        }
    combined = _combine([mine[p] for p in ("step1", "step2") if p in mine])
    release = None
    if combined is not None and {"step1", "step2"} <= mine.keys():
        release = dataclasses.asdict(stats.summarise_requests(combined.requests, rollouts, 2))
    return {
        "source": "kube-apiserver audit log, user agent graylane/* (graylane's KubeClient)"
        if mine
        else "not measured (audit log off)",
        "per_phase": per_phase,
        "release_steps_combined": release,
        "controller_metric": _controller_metric(session),
        "cross_check": _cross_check(session, everyone),
    }


def _combine(parts: Sequence[WindowCounts]) -> WindowCounts | None:
    if not parts:
        return None
    out = WindowCounts()
    for part in parts:
        out.requests.update(part.requests)
        out.codes.update(part.codes)
        out.conflicts.update(part.conflicts)
    return out


def _controller_metric(session: BenchSession) -> dict[str, Any]:
    """graylane_api_requests_total per phase (controller /metrics), a cross-check of the audit counts."""
    name, labels = "graylane_api_requests_total", ("verb", "resource")
    if not any(name in m.metrics for m in session.marks):
        return {"exposed": False}
    return {
        "exposed": True,
        "per_phase": {
            a.name: _metric_delta(a, b, name, labels)
            for a, b in zip(session.marks, session.marks[1:], strict=False)
        },
    }


def _cross_check(session: BenchSession, everyone: Mapping[str, WindowCounts]) -> dict[str, Any]:
    """Non-watch resource requests of all clients: audit log vs apiserver_request_total, per phase."""
    out: dict[str, Any] = {}
    labels = ("verb", "resource")
    for a, b in zip(session.marks, session.marks[1:], strict=False):
        if not a.apiserver_metrics or not b.apiserver_metrics or a.name not in everyone:
            continue
        after = _counter(b.apiserver_metrics, "apiserver_request_total", labels)
        before = _counter(a.apiserver_metrics, "apiserver_request_total", labels)
        metric = sum(
            v - before.get(k, 0) for k, v in after.items() if k[0] not in ("WATCH", "CONNECT") and k[1]
        )
        logged = sum(
            n
            for (verb, res), n in everyone[a.name].requests.items()
            if verb != "watch" and not res.startswith("/")
        )
        out[a.name] = {"audit_all_clients": logged, "apiserver_request_total": metric}
    return out


def _median_mb(samples: Sequence[float]) -> float | None:
    return round(statistics.median(samples) / MB, 1) if samples else None


def _rss_at_end(session: BenchSession, phase: str, seconds: float) -> float | None:
    """Median RSS over the last `seconds` of a phase, in MB."""
    marks = [m.name for m in session.marks]
    if session.sampler is None or phase not in marks or marks.index(phase) + 1 >= len(marks):
        return None
    end = session.marks[marks.index(phase) + 1].mono
    return _median_mb([s.rss for s in session.sampler.between(end - seconds, end)])


def _memory(session: BenchSession) -> dict[str, Any]:
    samples = session.sampler.samples if session.sampler else []
    return {
        "peak_rss_sampled_mb": round(max(s.rss for s in samples) / MB, 1) if samples else None,
        "peak_rss_vmhwm_mb": round(session.peak_rss_hwm / MB, 1) if session.peak_rss_hwm else None,
        "samples": len(samples),
    }


def release_results(session: BenchSession, outcome: dict[str, Any], count: int) -> dict[str, Any]:
    tracker: Tracker = outcome.pop("tracker")
    memory = _memory(session)
    empty, rest = _rss_at_end(session, "start", 2), _rss_at_end(session, "idle", 20)
    memory |= {"rss_empty_caches_mb": empty, "rss_at_rest_mb": rest}
    if empty is not None and rest is not None:
        memory["rss_per_rollout_kb"] = round((rest - empty) * 1000 / count, 1)
    samples = session.sampler.samples if session.sampler else []
    requests = requests_section(session, count, {"step1": 1, "step2": 1})
    doc = {
        "outcome": outcome,
        "latency": _latency_section(tracker, session),
        "memory": memory,
        "cpu": {"controller_total_s": round(samples[-1].cpu, 1) if samples else None},
        "phases": phases(session),
        "requests": requests,
        "incomplete_apps": [k for k, line in tracker.timelines.items() if line.healthy is None][:20],
    }
    return doc


def finish(doc: dict[str, Any], session: BenchSession) -> dict[str, Any]:
    """Add what every mode reports last: the profile's summary, the summary and the targets."""
    if session.profiler is not None and session.profiler.out.exists():
        with session.profiler.out.open(errors="replace") as lines:
            doc["profile"] = profile.summarise(lines).to_obj() | {"path": str(session.profiler.out)}
    doc["summary"] = summary.summarise(doc)
    targets = release_targets(doc) if doc["params"]["mode"] == "release" else rest_targets(doc, "soak")
    doc["targets"] = [t.to_obj() for t in [*targets, *summary.issue14_targets(doc["summary"])]]
    return doc


def release_targets(doc: Mapping[str, Any]) -> list[Target]:
    """Issue 6's targets for a release (the peak RSS and writes of issue 14 replace its others)."""
    pooled = doc["latency"]["pooled_target_transitions"]
    p99 = pooled["p99_ms"] if pooled else None
    errors = sum(sum(p["reconcile_errors"].values()) for p in doc["phases"])
    completed = bool(doc["outcome"].get("completed"))
    count = int(doc["params"]["rollouts"])
    targets = [
        Target("p99 transition latency", "<= 1000 ms", _fmt(p99, "ms"), None if p99 is None else p99 <= 1000),
        Target(
            f"all {count} complete without error",
            "all Healthy+Succeeded, 0 reconcile errors",
            f"completed={completed}, reconcile errors={errors}",
            completed and errors == 0,
        ),
    ]
    if count not in summary.PEAK_RSS_MB:
        peak = doc["memory"]["peak_rss_vmhwm_mb"] or doc["memory"]["peak_rss_sampled_mb"]
        targets.append(
            Target(
                "peak controller RSS", "<= 250 MB", _fmt(peak, "MB"), None if peak is None else peak <= 250
            )
        )
    return targets


def rest_results(
    session: BenchSession, outcome: dict[str, Any], count: int, soak_phase: str
) -> dict[str, Any]:
    outcome.pop("tracker", None)
    memory = _memory(session)
    memory |= {
        "rss_empty_caches_mb": _rss_at_end(session, "start", 2),
        "rss_warm_after_create_mb": _rss_at_end(session, "settle", 10),
        "rss_after_cold_sync_mb": _rss_at_end(session, "synced", 10) if soak_phase == "soak" else None,
    }
    memory["soak"] = _soak(session, soak_phase)
    base, rest = memory["rss_empty_caches_mb"], memory["soak"].get("rss_end_mb")
    if base is not None and rest is not None:
        memory["rss_per_rollout_kb"] = round((rest - base) * 1000 / count, 2)
    doc = {
        "outcome": outcome,
        "memory": memory,
        "phases": phases(session),
        "requests": requests_section(session, count, {}),
    }
    return doc


def _soak(session: BenchSession, phase: str) -> dict[str, Any]:
    names = [m.name for m in session.marks]
    if session.sampler is None or phase not in names or names.index(phase) + 1 >= len(names):
        return {}
    start, end = session.marks[names.index(phase)].mono, session.marks[names.index(phase) + 1].mono
    samples = session.sampler.between(start, end)
    if len(samples) < 2:
        return {}
    points = [(s.t - start, s.rss / MB) for s in samples]
    minute = [v for t, v in points if t <= 60]
    last = [v for t, v in points if t >= points[-1][0] - 60]
    return {
        "duration_s": round(end - start, 1),
        "slope_mb_per_min": round(stats.slope_per_minute(points), 4),
        "rss_first_minute_mb": round(statistics.median(minute), 1),
        "rss_last_minute_mb": round(statistics.median(last), 1),
        "rss_min_mb": round(min(v for _, v in points), 1),
        "rss_max_mb": round(max(v for _, v in points), 1),
        "rss_end_mb": round(statistics.median(last), 1),
        "cpu_s": round(samples[-1].cpu - samples[0].cpu, 2),
    }


# Growth over the soak that still counts as none: allocator noise, a few MB or 1 % of the RSS.
def growth_allowed_mb(rss_mb: float) -> float:
    return max(2.0, 0.01 * rss_mb)


def rest_targets(doc: Mapping[str, Any], soak_phase: str) -> list[Target]:
    soak = doc["memory"]["soak"]
    rss = soak.get("rss_end_mb")
    growth = None if not soak else soak["slope_mb_per_min"] * soak["duration_s"] / 60
    lists = doc["requests"]["per_phase"].get(soak_phase, {}).get("by_key", {})
    relists = sum(n for key, n in lists.items() if key.startswith("list "))
    measured_lists = soak_phase in doc["requests"]["per_phase"]
    count = int(doc["params"]["rollouts"])
    return [
        Target(
            f"RSS at rest, {count} Rollouts",
            "<= 1000 MB",
            _fmt(rss, "MB"),
            None if rss is None else rss <= 1000,
        ),
        Target(
            "no growth over the idle soak",
            "slope x soak <= max(2 MB, 1 % RSS)",
            "not measured" if growth is None else f"{growth:+.1f} MB over {soak['duration_s'] / 60:.1f} min",
            None if growth is None or rss is None else growth <= growth_allowed_mb(rss),
        ),
        Target(
            "no periodic full re-list once warm",
            "0 list requests in the soak",
            f"{relists} lists" if measured_lists else "not measured",
            relists == 0 if measured_lists else None,
        ),
    ]


def _fmt(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value:.2f} {unit}".strip()
