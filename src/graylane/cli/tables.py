"""Pure rows for `graylane list` and `graylane history`, and the kubectl-style ages every view shows.

`list_rows` follows the Rollout CRD's printer columns (NAME STATUS STEP STATE MESSAGE AGE); `history_rows`
lists the workload's ReplicaSets by revision, then those of canary Deployments, marking the stable
revision of a running release and the one matching the current template.

Pure: no I/O, no click, no rich; `now` is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli import patches

__all__ = ["HistoryRow", "age", "history_rows", "human_age", "images_of", "list_rows", "parse_time"]

Obj = dict[str, Any]


def human_age(seconds: float) -> str:
    """kubectl's short durations: 45s, 3m20s, 25m, 5h10m, 30h, 3d4h, 20d."""
    s = max(int(seconds), 0)
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{d}d{h % 24}h" if d < 8 and h % 24 else f"{d}d"


def parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def age(value: Any, now: dt.datetime) -> str:
    when = parse_time(value)
    return human_age((now - when).total_seconds()) if when else "-"


def images_of(workload: Mapping[str, Any] | None) -> list[str]:
    spec = ((workload or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return [str(c.get("image", "")) for c in spec.get("containers") or []]


# -- list and history ------------------------------------------------------------------------------


def list_rows(rollouts: Sequence[Obj], now: dt.datetime, *, all_namespaces: bool) -> list[list[str]]:
    """NAME STATUS STEP STATE MESSAGE AGE (NAMESPACE first with -A), as the CRD's printer columns."""
    rows = []
    for raw in rollouts:
        status, meta = raw.get("status") or {}, raw["metadata"]
        steps = len(((raw.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("steps") or [])
        steps = steps or len(
            ((raw.get("spec") or {}).get("strategy") or {}).get("blueGreen", {}).get("steps") or []
        )
        index = status.get("currentStepIndex") or 0
        row = [
            meta["name"],
            status.get("phase") or "-",
            f"{index}/{steps}" if index else "-",
            status.get("currentStepState") or "-",
            status.get("message") or "",
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    return rows


class HistoryRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    revision: str
    hash: str
    images: list[str]
    pods: str
    age: str
    note: str


def _history_note(rs: Obj, workload: Obj, rollout: Rollout, canary: bool) -> str:
    notes = ["canary Deployment"] if canary else []
    sub = rollout.status.sub_status()
    labels = rs["metadata"].get("labels") or {}
    if (
        sub is not None
        and patches.release_in_progress(rollout)
        and labels.get(patches.POD_TEMPLATE_HASH) == sub.stable_revision
    ):
        notes.append("stable")
    if not canary and patches.same_template(rs["spec"].get("template", {}), workload["spec"]["template"]):
        notes.append("current template")
    return ", ".join(notes)


def history_rows(
    workload: Obj, owned: Sequence[Obj], canary: Sequence[Obj], rollout: Rollout, now: dt.datetime
) -> list[HistoryRow]:
    """Past revisions: the workload's ReplicaSets by revision, then those of canary Deployments."""
    ordered = [(rs, False) for rs in sorted(owned, key=patches.revision_of)] + [(rs, True) for rs in canary]
    rows = []
    for rs, is_canary in ordered:
        spec, status = rs.get("spec") or {}, rs.get("status") or {}
        rows.append(
            HistoryRow(
                revision="canary" if is_canary else str(patches.revision_of(rs) or "-"),
                hash=(rs["metadata"].get("labels") or {}).get(patches.POD_TEMPLATE_HASH, ""),
                images=images_of(rs),
                pods=f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
                age=age(rs["metadata"].get("creationTimestamp"), now),
                note=_history_note(rs, workload, rollout, is_canary),
            )
        )
    return rows
