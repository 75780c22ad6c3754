"""Figures the traffic tests measure: one printed line and one JSON record each."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Figures:
    lines: list[str] = dataclasses.field(default_factory=list)
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, test: str, line: str, **record: Any) -> None:
        self.lines.append(f"{test}: {line}")
        self.records.append({"test": test, "line": line, **record})
