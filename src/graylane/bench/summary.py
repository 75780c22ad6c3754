"""The figures of a run under fixed names, so runs of different commits compare line by line.

What it does: `summarise(doc)` reads a finished results document (results.py) and returns a flat
`summary` of the figures issue 14 judges (time to pause and to complete, controller CPU in all and per
API request, RSS with empty caches and at peak, writes, 409 conflicts and reconciles per Rollout per
step), each under a name that keeps its meaning from commit to commit (`SCHEMA` changes when one does),
with the load average and the CPU other processes used during the release next to them, so a figure a
busy machine distorted can be told apart. `issue14_targets(summary)` judges them against the issue.

CPU per API request is the controller process' CPU seconds (utime + stime, /proc) in a phase over the
requests graylane sent in that phase (audit log, every verb, leases and watches included): the figure
Kruise's controller was measured by.

What it must not do: I/O, or compute figures the results document does not hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEMA", "Target", "issue14_targets", "summarise"]

SCHEMA = 1
RELEASE_PHASES = ("step1", "step2")
# Issue 14, measured against Kruise Rollout v0.6.2 on the same machine: peak RSS by N, and the times
# graylane had when the issue was filed (targets: not slower than these).
PEAK_RSS_MB = {100: 80.0, 200: 95.0}
NO_SLOWER_S = {100: (41.0, 116.0), 200: (61.0, 145.0)}
EMPTY_RSS_MB = 50.0
CPU_MS_PER_REQUEST = 4.0
CPU_RELEASE_S = {200: 40.0}
WRITES = {"step1": 10.0, "step2": 15.0}
AT_REST_MB = {10_000: 200.0}


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured

    def to_obj(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _phase(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((p for p in doc.get("phases") or [] if p["name"] == name), None)


def _requests(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    found = ((doc.get("requests") or {}).get("per_phase") or {}).get(name)
    return found if isinstance(found, Mapping) else None


def _ratio(part: float | None, whole: float | None, scale: float = 1.0) -> float | None:
    if part is None or not whole:
        return None
    return round(part * scale / whole, 3)


def _sum(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else round(sum(v or 0.0 for v in values), 2)


def _phase_figures(doc: Mapping[str, Any], name: str, rollouts: int) -> dict[str, Any]:
    phase, requests = _phase(doc, name), _requests(doc, name)
    cpu = phase["controller_cpu_s"] if phase else None
    total = requests["total"] if requests else None
    conflicts = sum((requests or {}).get("conflicts_409", {}).values()) if requests else None
    status_conflicts = (
        sum(n for key, n in requests.get("conflicts_409", {}).items() if key.endswith("/status"))
        if requests
        else None
    )
    return {
        f"{name}_s": phase["duration_s"] if phase else None,
        f"{name}_controller_cpu_s": cpu,
        f"{name}_cpu_ms_per_request": _ratio(cpu, total, 1000.0),
        f"{name}_requests": total,
        f"{name}_writes_per_rollout": round(requests["writes_per_rollout_step"], 2) if requests else None,
        f"{name}_conflicts_per_rollout": _ratio(conflicts, rollouts),
        f"{name}_status_conflicts_per_rollout": _ratio(status_conflicts, rollouts),
        f"{name}_reconciles_per_rollout": _ratio(sum(phase["reconciles"].values()), rollouts)
        if phase
        else None,
        f"{name}_other_processes_cpu_s": phase["other_processes_cpu_s"] if phase else None,
        f"{name}_loadavg_1m": (phase.get("loadavg_1m") if phase else None),
    }


def _writes(doc: Mapping[str, Any], name: str) -> float | None:
    requests = _requests(doc, name)
    return float(requests["writes"]) if requests else None


def summarise(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The flat, stable-named figures of one run (release or rest mode)."""
    params, machine, memory = doc["params"], doc.get("machine") or {}, doc.get("memory") or {}
    rollouts = int(params["rollouts"])
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": params["mode"],
        "rollouts": rollouts,
        "commit": (machine.get("git_commit") or "")[:10] or None,
        "dirty": machine.get("git_dirty"),
        "loadavg_1m_start": (machine.get("loadavg_at_start") or [None])[0],
        "loadavg_1m_end": (machine.get("loadavg_at_end") or [None])[0],
        "completed": bool((doc.get("outcome") or {}).get("completed")),
        "peak_rss_mb": memory.get("peak_rss_vmhwm_mb") or memory.get("peak_rss_sampled_mb"),
        "rss_empty_caches_mb": memory.get("rss_empty_caches_mb"),
        "controller_cpu_total_s": (doc.get("cpu") or {}).get("controller_total_s"),
    }
    if params["mode"] == "release":
        outcome = doc.get("outcome") or {}
        out |= {
            "all_paused_s": _round(outcome.get("all_paused_s")),
            "all_complete_s": _round(outcome.get("all_complete_s")),
            "rss_at_rest_mb": memory.get("rss_at_rest_mb"),
        }
        figures = {name: _phase_figures(doc, name, rollouts) for name in RELEASE_PHASES}
        for values in figures.values():
            out |= values
        cpu = _sum([figures[p][f"{p}_controller_cpu_s"] for p in RELEASE_PHASES])
        requests = _sum([figures[p][f"{p}_requests"] for p in RELEASE_PHASES])
        writes = _sum([_writes(doc, p) for p in RELEASE_PHASES])
        out["release_controller_cpu_s"] = cpu
        out["release_cpu_ms_per_request"] = _ratio(cpu, requests, 1000.0)
        # Per write too: reads (e.g. pod lists) are cheap requests that lower the per-request figure.
        out["release_cpu_ms_per_write"] = _ratio(cpu, writes, 1000.0)
    else:
        soak = memory.get("soak") or {}
        out |= {
            "set_up_s": _round((doc.get("outcome") or {}).get("set_up_s")),
            "rss_after_cold_sync_mb": memory.get("rss_after_cold_sync_mb"),
            "rss_at_rest_mb": soak.get("rss_end_mb"),
            "rss_per_rollout_kb": memory.get("rss_per_rollout_kb"),
            "soak_slope_mb_per_min": soak.get("slope_mb_per_min"),
        }
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _fmt(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value:.2f} {unit}".strip()


def _at_most(name: str, value: float | None, limit: float, unit: str) -> Target:
    return Target(
        name, f"<= {limit:g} {unit}".strip(), _fmt(value, unit), None if value is None else value <= limit
    )


def issue14_targets(summary: Mapping[str, Any]) -> list[Target]:
    """Issue 14's targets that this run's mode and size measure."""
    n = int(summary["rollouts"])
    targets = [_at_most("RSS with empty caches", summary.get("rss_empty_caches_mb"), EMPTY_RSS_MB, "MB")]
    if summary["mode"] != "release":
        if n in AT_REST_MB:
            targets.append(
                _at_most(f"RSS at rest, {n} Rollouts", summary.get("rss_at_rest_mb"), AT_REST_MB[n], "MB")
            )
        return targets
    if n in PEAK_RSS_MB:
        targets.append(_at_most(f"peak RSS at N={n}", summary.get("peak_rss_mb"), PEAK_RSS_MB[n], "MB"))
    targets.append(
        _at_most(
            "controller CPU per API request",
            summary.get("release_cpu_ms_per_request"),
            CPU_MS_PER_REQUEST,
            "ms",
        )
    )
    if n in CPU_RELEASE_S:
        targets.append(
            _at_most(
                f"controller CPU, release of {n}",
                summary.get("release_controller_cpu_s"),
                CPU_RELEASE_S[n],
                "s",
            )
        )
    for phase, limit in WRITES.items():
        targets.append(
            _at_most(f"writes per Rollout, {phase}", summary.get(f"{phase}_writes_per_rollout"), limit, "")
        )
        targets.append(
            _at_most(
                f"status conflicts per Rollout, {phase}",
                summary.get(f"{phase}_status_conflicts_per_rollout"),
                0.0,
                "",
            )
        )
    if n in NO_SLOWER_S:
        paused, complete = NO_SLOWER_S[n]
        targets.append(_at_most("release -> all paused", summary.get("all_paused_s"), paused, "s"))
        targets.append(_at_most("approve -> all complete", summary.get("all_complete_s"), complete, "s"))
    return targets
