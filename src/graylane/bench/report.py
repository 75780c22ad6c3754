"""Print a results document as rich tables (the JSON file holds everything; these are the highlights).

What it must not do: compute figures (results.py does) or write files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_report"]

_VERDICT = {True: "[green]met[/]", False: "[red]MISSED[/]", None: "[yellow]not measured[/]"}


def print_report(doc: Mapping[str, Any], console: Console) -> None:
    params, machine = doc["params"], doc["machine"]
    console.print(
        f"[bold]graylane bench[/] mode={params['mode']} rollouts={params['rollouts']} "
        f"style={params.get('style')} per-namespace={params['per_namespace']} nodes={params['nodes']}  "
        f"machine: {machine['cores']} cores, {machine['memory_bytes'] / 2**30:.0f} GiB, "
        f"load at start {machine['loadavg_at_start'][0]:.2f}, commit {str(machine['git_commit'])[:10]}"
        f"{' (dirty)' if machine['git_dirty'] else ''}"
    )
    console.print(_targets(doc["targets"]))
    if "latency" in doc:
        console.print(_latency(doc["latency"]))
    console.print(_outcome(doc["outcome"], doc["memory"]))
    console.print(_phases(doc["phases"], doc["requests"]["per_phase"]))
    for phase in ("step1", "step2", "create", "soak"):
        per_phase = doc["requests"]["per_phase"].get(phase)
        if per_phase:
            console.print(_requests(phase, per_phase))
    if doc.get("summary"):
        console.print(_summary(doc["summary"]))
    if doc.get("profile"):
        console.print(_profile(doc["profile"]))
    console.print(_log(doc.get("controller_log", {})))


def _summary(summary: Mapping[str, Any]) -> Table:
    table = Table(title="Summary (stable names: compare these across commits)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, _cell(value))
    return table


def _profile(profile: Mapping[str, Any]) -> Table:
    table = Table(title=f"Controller profile: {profile['samples']} samples ({profile.get('path', '')})")
    table.add_column("function (inclusive share)")
    table.add_column("share", justify="right")
    for name, share in profile["top_inclusive"][:25]:
        table.add_row(name, f"{share:.1%}")
    return table


def _targets(targets: list[Mapping[str, Any]]) -> Table:
    table = Table(title="Targets")
    for col in ("target", "wanted", "measured", "verdict"):
        table.add_column(col)
    for t in targets:
        table.add_row(t["name"], t["target"], t["measured"], _VERDICT[t["met"]])
    return table


def _latency(latency: Mapping[str, Any]) -> Table:
    table = Table(title=f"Controller latency (ms), trigger: {latency['trigger']}")
    for col in ("transition", "n", "p50", "p90", "p99", "max"):
        table.add_column(col, justify="right" if col != "transition" else "left")
    rows = dict(latency["transitions"])
    rows["POOLED (target)"] = latency["pooled_target_transitions"]
    for name, summary in latency["from_replicaset_ready"].items():
        rows[f"{name} (from RS ready)"] = summary
    rows["bench loop lag"] = latency["bench_loop_lag"]
    for name, s in rows.items():
        if s is None:
            table.add_row(name, "0", "-", "-", "-", "-")
        else:
            table.add_row(
                name, str(s["count"]), *(f"{s[k]:.0f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
            )
    return table


def _outcome(outcome: Mapping[str, Any], memory: Mapping[str, Any]) -> Table:
    table = Table(title="Outcome and memory")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in {**outcome, **{k: v for k, v in memory.items() if k != "soak"}}.items():
        table.add_row(key, _cell(value))
    for key, value in (memory.get("soak") or {}).items():
        table.add_row(f"soak {key}", _cell(value))
    return table


def _phases(phases: list[Mapping[str, Any]], requests: Mapping[str, Any]) -> Table:
    table = Table(title="Phases")
    cols = [
        "phase",
        "s",
        "load 1m",
        "ctrl CPU s",
        "ctrl RSS max MB",
        "machine busy",
        "others CPU s",
        "apiserver CPU s",
    ]
    cols += ["reconciles"]
    for col in (*cols, "errors", "retries", "graylane req", "writes", "409s"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    for p in phases:
        req = requests.get(p["name"], {})
        table.add_row(
            p["name"],
            f"{p['duration_s']:.1f}",
            _cell(p.get("loadavg_1m")),
            _cell(p["controller_cpu_s"]),
            _cell(p["controller_rss_max_mb"]),
            f"{p['machine_busy_fraction']:.0%}",
            _cell(p["other_processes_cpu_s"]),
            _cell(p["control_plane_cpu_s"].get("kube-apiserver")),
            str(sum(p["reconciles"].values())),
            str(sum(p["reconcile_errors"].values())),
            str(sum(p["queue_retries"].values())),
            _cell(req.get("total")),
            _cell(req.get("writes")),
            str(sum((req.get("conflicts_409") or {}).values())),
        )
    return table


def _requests(phase: str, per_phase: Mapping[str, Any]) -> Table:
    table = Table(title=f"graylane API requests per Rollout, phase {phase} (leases excluded)")
    table.add_column("verb resource")
    table.add_column("per Rollout per step", justify="right")
    for key, value in list(per_phase["by_key_per_rollout_step"].items())[:14]:
        table.add_row(key, f"{value:.2f}")
    table.add_row("[bold]writes[/]", f"[bold]{per_phase['writes_per_rollout_step']:.2f}[/]")
    table.add_row("[bold]all requests[/]", f"[bold]{per_phase['requests_per_rollout_step']:.2f}[/]")
    return table


def _log(summary: Mapping[str, Any]) -> Table:
    table = Table(title=f"Controller log: {summary.get('levels', {})}")
    table.add_column("most frequent warnings and errors")
    table.add_column("count", justify="right")
    for message, count in (summary.get("top_messages") or {}).items():
        table.add_row(message, str(count))
    return table


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
