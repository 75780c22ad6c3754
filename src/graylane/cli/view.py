"""Drawing the status views with rich, and the `--watch` loop.

On a terminal, `watch` redraws one screen in place (rich Live) every poll, so countdowns tick; when
stdout is a pipe it prints one plain line per change of the release (`summary_line`), never a redraw.
`-o json|yaml` is handled by `dump`, which prints the view model as is.

This module must not talk to the API server (it is handed an async `fetch`) nor compute anything the
view model knows: it only lays it out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Sequence

import yaml
from pydantic import BaseModel
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from graylane.cli.outcome import Outcome
from graylane.cli.tables import HistoryRow
from graylane.cli.view_model import Counts, PodRow, StatusView, Waiting, summary_line

__all__ = ["dump", "dump_data", "render_history", "render_rows", "render_status", "watch"]

LIVE_EVENTS = 5
# No tick here: whether "nothing to wait for" is good news is the outcome's to say (OUTCOME_STYLES).
WAIT_ICONS = {"approval": "⏸", "timed-pause": "⏱", "pods": "⏳", "paused": "⏸", "analysis": "📈", "none": "·"}
# A green tick only for Healthy; every state that needs a person is red or yellow.
OUTCOME_STYLES = {
    "Healthy": ("✔", "green"),
    "Cancelled": ("✖", "red"),
    "Degraded": ("✖", "red"),
    "Blocked": ("⚠", "yellow"),
    "Paused": ("⏸", "yellow"),
    "Progressing": ("…", "cyan"),
}


def dump(model: BaseModel | Sequence[BaseModel], fmt: str) -> str:
    data = [m.model_dump() for m in model] if isinstance(model, Sequence) else model.model_dump()
    return dump_data(data, fmt)


def dump_data(data: object, fmt: str) -> str:
    """JSON (indented) or YAML (keys in their order) of plain data."""
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False)


# -- pieces of the status screen ------------------------------------------------------------------


def _kv(table: Table, key: str, value: RenderableType) -> None:
    table.add_row(Text(key, style="bold"), value)


def _header(view: StatusView) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    icon, colour = OUTCOME_STYLES.get(view.outcome, ("?", "yellow"))
    outcome = Text(f"{icon} {view.outcome}", style=f"bold {colour}")
    step = f"step {view.step}/{view.steps_total}" if view.step else "no step"
    _kv(grid, "Rollout", Text.assemble((view.name, "bold"), f"  namespace {view.namespace}"))
    _kv(
        grid,
        "Status",
        Text.assemble(outcome, f"  {view.phase or 'Unknown'} {view.reason}  ·  {step}  {view.state}"),
    )
    if view.outcome not in ("Healthy", "Progressing"):
        _kv(grid, "Why", Text(view.outcome_why, style=colour))
    _kv(grid, "Workload", f"{view.workload}  {view.replicas} replicas  ·  {view.style} style")
    _kv(grid, "Message", view.message or "-")
    _kv(grid, "Waiting", _waiting(view.waiting))
    return grid


def _waiting(waiting: Waiting) -> Text:
    text = Text(f"{WAIT_ICONS.get(waiting.kind, '…')} {waiting.text}", style="bold cyan")
    if waiting.seconds_left is not None:
        text.append(f"  ({waiting.seconds_left}s left)", style="bold")
    if waiting.waited_seconds is not None:
        text.append(f"  (for {waiting.waited_seconds}s)")
    return text


def _bar(counts: Counts, wanted: int) -> Table:
    """Ready pods against what the step wants (or against all pods of that version when 0)."""
    total = max(wanted or counts.total, 1)
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        ProgressBar(total=total, completed=min(counts.ready, total), width=24),
        f"{counts.ready}/{counts.total} ready" + (f" (step wants {wanted})" if wanted else ""),
    )
    return grid


def _pods(view: StatusView) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    _kv(grid, "Canary pods", _bar(view.canary, view.canary_wanted))
    _kv(grid, "Stable pods", _bar(view.stable, 0))
    if view.traffic.routings:
        applied = view.traffic.applied or ["no routing object found"]
        _kv(grid, "Traffic now", Text("\n".join(applied)))
    else:
        _kv(grid, "Traffic now", Text("no trafficRoutings: requests follow the pods", style="dim"))
    asked = _split(view.traffic.weight)
    if view.traffic.matches:
        asked += "  ·  matches " + " OR ".join(view.traffic.matches)
    _kv(grid, "Step asks", Text(asked, style="dim"))
    return grid


def _split(weight: str | None) -> str:
    """`10%` -> `canary 10% / stable 90%`: the split the step asks for."""
    digits = (weight or "").strip().rstrip("%")
    if not digits.isdigit():
        return "no weight"
    return f"canary {digits}% / stable {100 - int(digits)}%"


def _steps(view: StatusView) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Steps", title_justify="left")
    for col in ("", "STEP", "REPLICAS", "STABLE", "CANARY", "TRAFFIC", "MATCHES", "PAUSE", "STATE"):
        table.add_column(col, no_wrap=col != "MATCHES")
    for row in view.steps:
        state = view.state if row.current else row.state
        table.add_row(
            "▶" if row.current else "",
            f"{row.index}/{view.steps_total}",
            row.replicas,
            str(row.stable_pods),
            str(row.canary_pods),
            row.traffic or "-",
            " OR ".join(row.matches) or "-",
            row.pause,
            state,
            style="bold reverse" if row.current else ("dim" if row.state == "done" else None),
        )
    return table


def _conditions(view: StatusView) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Conditions", title_justify="left")
    for col in ("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"):
        table.add_column(col)
    for c in view.conditions:
        table.add_row(c.type, c.status, c.reason, c.age, c.message)
    return table


def _events(view: StatusView, limit: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Events", title_justify="left")
    for col in ("AGE", "TYPE", "REASON", "MESSAGE"):
        table.add_column(col)
    for e in view.events[-limit:]:
        table.add_row(e.age, e.type, e.reason, e.message + (f" (x{e.count})" if e.count > 1 else ""))
    return table


def _analysis(view: StatusView, describe: bool) -> Table:
    """Each metric of the release's analysis: verdict, measurements, last value, and the judge's tests."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Analysis", title_justify="left")
    columns = ["STEP", "METRIC", "PHASE", "MEASURED", "LAST VALUE", "P-VALUES"]
    if describe:
        columns += ["EFFECT", "WHY", "RUN"]
    for col in columns:
        table.add_column(col, no_wrap=col in ("STEP", "PHASE"))
    colours = {"Successful": "green", "Failed": "red", "Error": "red", "Inconclusive": "yellow"}
    for m in view.analysis:
        row: list[RenderableType] = [
            m.step or "-",
            m.metric + (" (dry run)" if m.dry_run else ""),
            Text(m.phase, style=colours.get(m.phase, "cyan")),
            m.measured,
            m.last_value or "-",
            m.p_values or "-",
        ]
        if describe:
            row += [m.effect or "-", m.message or "-", m.run]
        table.add_row(*row)
    return table


def _shown_pods(view: StatusView, all_pods: bool) -> tuple[str, list[PodRow]]:
    """As kubectl-kruise describe: the new pods during a release, unless --all (or no release)."""
    if all_pods or view.phase != "Progressing":
        return "Pods", list(view.pods)
    return "New pods", [p for p in view.pods if p.version == "canary"]


def _pod_table(title: str, pods: Sequence[PodRow]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title, title_justify="left")
    for col in ("NAME", "VERSION", "READY", "BATCH ID", "REVISION", "AGE", "RESTARTS", "STATUS"):
        table.add_column(col, no_wrap=True)
    for p in pods:
        table.add_row(
            p.name, p.version, p.ready, p.batch_id or "-", p.revision, p.age, str(p.restarts), p.status
        )
    return table


def _section(title: str, rows: Sequence[object], table: Callable[[], Table]) -> RenderableType:
    return table() if rows else Text(f"{title}: none", style="dim")


def render_status(view: StatusView, *, describe: bool = False, all_pods: bool = False) -> RenderableType:
    parts: list[RenderableType] = [_header(view), _pods(view), _steps(view)]
    events = len(view.events) if describe else LIVE_EVENTS
    if describe:
        parts.append(
            Text(
                f"Images: {', '.join(view.images) or '-'}   Stable revision: {view.stable_revision or '-'}"
                f"   Canary revision: {view.canary_revision or '-'}"
            )
        )
    if view.analysis:
        parts.append(_analysis(view, describe))
    parts.append(_section("Conditions", view.conditions, lambda: _conditions(view)))
    parts.append(_section("Events", view.events, lambda: _events(view, events)))
    if describe:
        title, pods = _shown_pods(view, all_pods)
        parts.append(_section(title, pods, lambda: _pod_table(title, pods)))
    return Group(*parts)


def render_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """kubectl-style columns: no borders, upper-case headings."""
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 3, 0, 0))
    for col in header:
        table.add_column(col, no_wrap=True, header_style="bold")
    for row in rows:
        table.add_row(*row)
    return table


def render_history(rows: Sequence[HistoryRow]) -> Table:
    body = [[h.revision, h.hash, ", ".join(h.images), h.pods, h.age, h.note] for h in rows]
    return render_rows(("REVISION", "POD-TEMPLATE-HASH", "IMAGES", "PODS", "AGE", "NOTE"), body)


# -- watching ----------------------------------------------------------------------------------------

Fetch = Callable[[], Awaitable[StatusView]]


async def watch(
    fetch: Fetch, console: Console, *, interval: float, timeout: float, until_end: bool = True
) -> StatusView:
    """Poll `fetch` every `interval` seconds until `timeout` seconds pass (0: no limit) or, with
    `until_end`, the release reaches an end state (Healthy, Cancelled, Degraded); returns the last view."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    stop = _Stop(deadline, until_end)
    if console.is_terminal:
        return await _live(fetch, console, interval, stop)
    return await _lines(fetch, console, interval, stop)


@dataclasses.dataclass(frozen=True)
class _Stop:
    deadline: float | None
    until_end: bool

    def now(self, view: StatusView) -> bool:
        ended = self.until_end and Outcome(view.outcome).final
        return ended or (self.deadline is not None and time.monotonic() >= self.deadline)


async def _pause(interval: float, deadline: float | None) -> None:
    left = interval if deadline is None else min(interval, max(deadline - time.monotonic(), 0))
    await asyncio.sleep(left)


async def _live(fetch: Fetch, console: Console, interval: float, stop: _Stop) -> StatusView:
    with Live(console=console, auto_refresh=False, vertical_overflow="crop") as live:
        while True:
            view = await fetch()
            live.update(render_status(view), refresh=True)
            if stop.now(view):
                return view
            await _pause(interval, stop.deadline)


async def _lines(fetch: Fetch, console: Console, interval: float, stop: _Stop) -> StatusView:
    last = ""
    while True:
        view = await fetch()
        line = summary_line(view)
        if line != last:
            stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
            console.print(f"{stamp} {line}", markup=False, highlight=False, soft_wrap=True)
            console.file.flush()
            last = line
        if stop.now(view):
            return view
        await _pause(interval, stop.deadline)
