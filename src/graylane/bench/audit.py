"""Count API requests per client from the kube-apiserver audit log, per time window.

Why the audit log: `apiserver_request_total` has no user or user-agent label, and every client of the
local cluster (controller-manager, scheduler, kwok, graylane, the benchmark) authenticates as the same
admin user, so only the audit log (level Metadata: verb, objectRef, userAgent, response code,
timestamps) can attribute a request to graylane. graylane's KubeClient sends
`User-Agent: graylane/<version>`; the benchmark sends its own.

What it does: parses audit lines (one JSON event per line) into `AuditRecord`s, counting each request
once (watches when their response starts, since they may still be open at the end; everything else
when its response completes), and buckets them by the window their request was received in.
What it must not do: read files (the caller passes lines) or filter by anything but the user agent.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["AuditRecord", "Window", "WindowCounts", "count_by_window", "parse", "policy"]


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    received: float  # epoch seconds
    user_agent: str
    verb: str
    resource: str  # plural[/subresource], or the URI path for non-resource requests
    code: int


@dataclasses.dataclass(frozen=True)
class Window:
    name: str
    start: float  # epoch seconds, inclusive
    end: float  # exclusive


@dataclasses.dataclass
class WindowCounts:
    requests: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)
    codes: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    conflicts: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)


def policy() -> dict[str, object]:
    """Metadata for every resource request; health and metrics scrapes left out."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/metrics"]},
            {"level": "Metadata"},
        ],
    }


def _timestamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse(lines: Iterable[str]) -> Iterator[AuditRecord]:
    """One record per request; malformed lines are skipped (the last one may be half-written)."""
    watches_seen: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        verb = str(event.get("verb", ""))
        if verb == "watch":
            audit_id = str(event.get("auditID"))
            if audit_id in watches_seen:
                continue
            watches_seen.add(audit_id)
        elif event.get("stage") != "ResponseComplete":
            continue
        yield _record(event, verb)


def _record(event: dict[str, object], verb: str) -> AuditRecord:
    ref = event.get("objectRef")
    if isinstance(ref, dict):
        sub = ref.get("subresource")
        resource = f"{ref.get('resource')}/{sub}" if sub else str(ref.get("resource"))
    else:
        resource = str(event.get("requestURI", "")).split("?", 1)[0]
    status = event.get("responseStatus")
    code = int(status.get("code") or 0) if isinstance(status, dict) else 0
    return AuditRecord(
        received=_timestamp(str(event.get("requestReceivedTimestamp"))),
        user_agent=str(event.get("userAgent", "")),
        verb=verb,
        resource=resource,
        code=code,
    )


def count_by_window(
    records: Iterable[AuditRecord], user_agent_prefix: str, windows: Sequence[Window]
) -> dict[str, WindowCounts]:
    """Requests (and their response codes, and 409 conflicts) of one client, per window."""
    out = {w.name: WindowCounts() for w in windows}
    for record in records:
        if not record.user_agent.startswith(user_agent_prefix):
            continue
        for window in windows:
            if window.start <= record.received < window.end:
                counts = out[window.name]
                counts.requests[(record.verb, record.resource)] += 1
                counts.codes[record.code] += 1
                if record.code == 409:
                    counts.conflicts[(record.verb, record.resource)] += 1
                break
    return out
