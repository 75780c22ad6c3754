"""What the Rollout planner sees of its analysis: its AnalysisRuns, the templates it names, the templates
an automatic rollback needs.

Built by graylane.observe.analysis from the informer caches (runs by their Rollout label, templates by
name); frozen, never mutated. A Rollout without analysis gets an empty snapshot. This module must not do
I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graylane.api.analysis import AnalysisTemplateSpec

__all__ = ["AnalysisObserved", "RunSeen", "TemplateKey"]

TemplateKey = tuple[bool, str]  # (cluster scope, name)


@dataclasses.dataclass(frozen=True)
class RunSeen:
    """One AnalysisRun of the Rollout, reduced to what the planner decides on."""

    name: str
    step: str  # the step label: "1".."n", or "background"
    revision: str
    release: str
    phase: str = ""  # status.phase: "" before the run's first pass
    message: str = ""  # status.message: the verdict's reason with its evidence
    terminate: bool = False
    deleting: bool = False
    # The latest measured-exposure mismatch of a running run (its measurement's message), else "".
    exposure_hold: str = ""
    # A one-line progress of a running run, e.g. "error-rate 2/5 Successful, last 0.004".
    progress: str = ""


@dataclasses.dataclass(frozen=True)
class AnalysisObserved:
    runs: tuple[RunSeen, ...] = ()
    # The templates the Rollout names: the spec, or why it cannot be used (absent key: not found).
    templates: Mapping[TemplateKey, AnalysisTemplateSpec | str] = dataclasses.field(default_factory=dict)
    # For an automatic rollback (Deployments): the stable ReplicaSet's pod template and the workload's
    # own, or None when the stable ReplicaSet is not in the cache.
    stable_template: Mapping[str, Any] | None = None
    release_template: Mapping[str, Any] | None = None

    def run(self, revision: str, release: str, step: str) -> RunSeen | None:
        return next(
            (r for r in self.runs if (r.revision, r.release, r.step) == (revision, release, step)), None
        )
