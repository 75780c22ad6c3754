"""What a chaos run counts and finds, and the one summary line it prints."""

from __future__ import annotations

import collections
import dataclasses
import time

__all__ = ["Report"]


@dataclasses.dataclass
class Report:
    seed: int
    settings: str
    started: float = dataclasses.field(default_factory=time.monotonic)
    releases: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    faults: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    samples: int = 0
    duplicates: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    over_ready: dict[str, str] = dataclasses.field(default_factory=dict)
    # Ready pods past the step while their ReplicaSets were sized within it: the ReplicaSet controller's
    # own retry after a lost create response (checks.over_ready), reported, not a failure.
    surplus: dict[str, str] = dataclasses.field(default_factory=dict)
    orphans: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    log: list[str] = dataclasses.field(default_factory=list)
    durations: list[float] = dataclasses.field(default_factory=list)  # release start to checked end

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, line: str) -> None:
        """A timestamped line for the run's log (printed on failure, and with -s)."""
        self.log.append(f"[{self.elapsed():7.1f}s] {line}")
        print(self.log[-1], flush=True)

    def violation(self, line: str) -> None:
        self.violations.append(line)
        self.note(f"VIOLATION {line}")

    def summary(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        return (
            f"chaos seed {self.seed}: {self.releases} releases; faults: {faults}; outcomes: {outcomes}; "
            f"duplicates {len(self.duplicates)}; over-ready batches {len(self.over_ready)}; "
            f"ReplicaSet-controller surplus {len(self.surplus)}; "
            f"orphans {len(self.orphans)}; violations {len(self.violations)}; samples {self.samples}; "
            f"release time {self._percentiles()}; wall time {self.elapsed():.0f}s"
        )

    def _percentiles(self) -> str:
        if not self.durations:
            return "-"
        ordered = sorted(self.durations)
        at = {p: ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in (50, 90)}
        return f"p50 {at[50]:.0f}s p90 {at[90]:.0f}s max {ordered[-1]:.0f}s"

    def failure(self) -> str:
        """Everything a reader needs to reproduce and diagnose a failed run."""
        found = [
            *(f"duplicate canary Deployments: {v}" for v in self.duplicates.values()),
            *(f"over-ready: {v}" for v in self.over_ready.values()),
            *(f"orphan: {v}" for v in self.orphans),
            *self.violations,
        ]
        return "\n".join(
            [
                self.summary(),
                f"reproduce with: {self.settings}",
                *(f"- {line}" for line in found),
            ]
        )
