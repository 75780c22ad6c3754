"""The frozen snapshot a plan is made from: the Rollout and what was observed of its workload.

Built by controller/observe.py from informer caches; the planner reads it and never mutates it.
This module must not do I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from graylane.api.batchrelease import BatchRelease
from graylane.api.rollout_v1beta1 import Rollout

__all__ = ["Observed", "Workload"]


@dataclasses.dataclass(frozen=True)
class Workload:
    """What the Rollout controller needs to know of its workload (Kruise's `util.Workload`)."""

    api_version: str
    kind: str
    name: str
    generation: int
    # status.observedGeneration == generation: decisions wait until the workload controller caught up.
    status_consistent: bool
    replicas: int
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    in_rollout_progressing: bool = False
    stable_revision: str = ""
    canary_revision: str = ""
    pod_template_hash: str = ""
    is_in_rollback: bool = False

    @property
    def rollout_id(self) -> str:
        """Kruise reads the rollout id from the workload *label* (see the reference, §2.9)."""
        return self.labels.get("rollouts.kruise.io/rollout-id", "")


@dataclasses.dataclass(frozen=True)
class Observed:
    rollout: Rollout
    workload: Workload | None
    now: datetime
    # The BatchRelease named as the Rollout, if the cache has one.
    batch_release: BatchRelease | None = None
