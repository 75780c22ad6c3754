"""Structured logging: one JSON object per line with ts, level, logger, msg and any `extra=` fields.

Call `setup_logging()` once from the entry point (the manager or the CLI), never at import time:
logging configuration is process-wide, so only `main` may own it. Fields passed as
`log.info("...", extra={"rollout": "ns/name"})` become top-level keys of the JSON line.

This module must not log anything itself or hold handlers anywhere but on the root logger.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

__all__ = ["JsonFormatter", "setup_logging"]

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MARK = "_graylane_handler"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(
    level: int | str = logging.INFO, *, stream: IO[str] | None = None, json_format: bool = True
) -> logging.Handler:
    """Install one handler on the root logger (replacing one installed earlier by this function)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    fmt = JsonFormatter() if json_format else plain
    handler.setFormatter(fmt)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
