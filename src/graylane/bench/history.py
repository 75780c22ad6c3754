"""BENCHMARKS.md's history tables, made from results files: `python -m graylane.bench.history FILE...`.

What it does: `rows(docs)` turns the `summary` of each results document (summary.py) into one Markdown
table row per run, release runs and rest runs in a table each, oldest first, so a table can be
regenerated from the JSON files instead of copied by hand. A run whose results predate the summary is
summarised on the fly from its document.

What it must not do: compute figures beyond formatting the summary's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from graylane.bench.summary import summarise

__all__ = ["RELEASE_COLUMNS", "REST_COLUMNS", "main", "rows", "table"]

# (header, summary key) in the order BENCHMARKS.md shows them
RELEASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("N", "rollouts"),
    ("load 1m start/end", "loadavg"),
    ("release -> all paused s", "all_paused_s"),
    ("approve -> all complete s", "all_complete_s"),
    ("controller CPU, release s", "release_controller_cpu_s"),
    ("CPU ms per API request", "release_cpu_ms_per_request"),
    ("peak RSS MB", "peak_rss_mb"),
    ("RSS empty caches MB", "rss_empty_caches_mb"),
    ("writes / Rollout step 1", "step1_writes_per_rollout"),
    ("writes / Rollout step 2", "step2_writes_per_rollout"),
    ("status 409s / Rollout (1/2)", "status_conflicts"),
    ("reconciles / Rollout (1/2)", "reconciles"),
    ("others' CPU s (1/2)", "others"),
)
REST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("N", "rollouts"),
    ("load 1m start/end", "loadavg"),
    ("set-up s", "set_up_s"),
    ("RSS empty caches MB", "rss_empty_caches_mb"),
    ("RSS after cold sync MB", "rss_after_cold_sync_mb"),
    ("RSS at rest MB", "rss_at_rest_mb"),
    ("KB per Rollout", "rss_per_rollout_kb"),
    ("soak slope MB/min", "soak_slope_mb_per_min"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _pair(summary: Mapping[str, Any], first: str, second: str) -> str:
    return f"{_cell(summary.get(first))} / {_cell(summary.get(second))}"


def _value(summary: Mapping[str, Any], key: str) -> str:
    if key == "loadavg":
        return _pair(summary, "loadavg_1m_start", "loadavg_1m_end")
    if key in ("status_conflicts", "reconciles", "others"):
        suffix = {
            "status_conflicts": "status_conflicts_per_rollout",
            "reconciles": "reconciles_per_rollout",
            "others": "other_processes_cpu_s",
        }[key]
        return _pair(summary, f"step1_{suffix}", f"step2_{suffix}")
    return _cell(summary.get(key))


def table(summaries: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> list[str]:
    """A Markdown table: run (start time, commit) then the columns."""
    header = ["run", *(name for name, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        commit = f"{summary.get('commit') or '?'}{'+' if summary.get('dirty') else ''}"
        run = f"{summary.get('started_at', '?')} `{commit}`"
        lines.append("| " + " | ".join([run, *(_value(summary, key) for _, key in columns)]) + " |")
    return lines


def rows(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The release table, then the rest table (each only when it has runs)."""
    summaries = []
    for doc in docs:
        summary = dict(doc.get("summary") or summarise(doc))
        summary["started_at"] = doc["params"].get("started_at")
        summaries.append(summary)
    summaries.sort(key=lambda s: str(s.get("started_at")))
    out: list[str] = []
    for mode, columns in (("release", RELEASE_COLUMNS), ("rest", REST_COLUMNS)):
        chosen = [s for s in summaries if s["mode"] == mode]
        if chosen:
            out += [*table(chosen, columns), ""]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:])
    if not paths:
        print("usage: python -m graylane.bench.history RESULTS.json...", file=sys.stderr)
        return 2
    docs = [json.loads(Path(path).read_text()) for path in paths]
    print("\n".join(rows(docs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
