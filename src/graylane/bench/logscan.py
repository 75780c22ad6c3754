"""Summarise the controller's JSON log: warnings and errors by message, and failed reconciles.

What it must not do: read files (the caller passes lines) or interpret anything but level and message.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable

__all__ = ["summarise_log"]

NOTEWORTHY = ("warning", "error", "critical")


def summarise_log(lines: Iterable[str], top: int = 10) -> dict[str, object]:
    """Counts of log lines per level, and the most frequent warning/error messages."""
    levels: collections.Counter[str] = collections.Counter()
    messages: collections.Counter[str] = collections.Counter()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            levels["unparsed"] += 1  # a traceback's continuation lines, or output before logging started
            continue
        if not isinstance(record, dict):
            continue
        level = str(record.get("level", "")).lower()
        levels[level] += 1
        if level in NOTEWORTHY:
            messages[f"{level}: {str(record.get('msg', ''))[:120]}"] += 1
    return {"levels": dict(levels), "top_messages": dict(messages.most_common(top))}
