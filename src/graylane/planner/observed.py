"""The frozen snapshot a plan is made from: the Rollout and what was observed of its workload.

Built by controller/rollout.py (and controller/traffic_observe.py for traffic objects) from informer
caches; the planner reads it and never mutates it. This module must not do I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from graylane.api.batchrelease import BatchRelease
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.analysis_observed import AnalysisObserved
from graylane.planner.changes import Kind, ObjectKind
from graylane.planner.routing import TrafficRouter

__all__ = ["LinkedTrafficRouting", "RolloutObserved", "TrafficObserved", "Workload"]


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
    paused: bool = False  # spec.paused: held by the webhook or a BatchRelease (or a person)
    resource_version: str = ""  # what a guarded write to the workload is conditioned on
    stable_revision: str = ""
    canary_revision: str = ""
    pod_template_hash: str = ""
    is_in_rollback: bool = False
    # Kruise's GetDeploymentStableRs: the revision of the oldest active ReplicaSet, whatever its template
    # (what canary-style Rollouts report as stableRevision outside a release).
    oldest_active_revision: str = ""
    # spec.template.metadata.labels: what the new version's pods carry (routing by pod label, e.g. Gloo).
    template_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The merge patch that hands the workload back to its own controller when a release ends with no
    # BatchRelease left to do it (a Deployment: unpaused; other kinds: their partition or strategy).
    resume_patch: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"spec": {"paused": False}})

    @property
    def rollout_id(self) -> str:
        """Kruise's getRolloutID: the workload *label* (reference §2.9), else the canary revision.

        Without the label each new template is its own rollout id, so pods of every batch are labelled
        (``rollouts.kruise.io/rollout-id`` / ``rollout-batch-id``); a rollback is told apart by a prefix.
        """
        label = self.labels.get("rollouts.kruise.io/rollout-id", "")
        if label or not self.canary_revision:
            return label
        return f"rollback-{self.canary_revision}" if self.is_in_rollback else self.canary_revision


@dataclasses.dataclass(frozen=True)
class TrafficObserved:
    """The traffic objects of a Rollout's `trafficRoutings[0]`, as cached (shared: never mutate them).

    `objects` holds what the providers asked for, by (kind, name); a missing key means "not found".
    `router` answers what to change (see planner/routing.py for why it travels with the snapshot).
    """

    router: TrafficRouter
    stable_service: Mapping[str, Any] | None = None
    canary_service: Mapping[str, Any] | None = None
    objects: Mapping[tuple[Kind, str], Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    # ConfigMap kruise-rollout-configuration's `lua.traffic.routing.*` keys, in the controller namespace.
    lua_scripts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Kinds the controller watches; HTTPRoutes and custom kinds only when their CRD existed at start-up.
    watched: frozenset[Kind] = frozenset(ObjectKind)
    # The workload's pod template labels, set by the planner (planner/traffic.py) for scripts that route
    # by pod label (an Upstream subset in Gloo) rather than by Service.
    pod_template_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def get(self, kind: Kind, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((kind, name))


@dataclasses.dataclass(frozen=True)
class LinkedTrafficRouting:
    """The TrafficRouting a Rollout names (trafficRoutingRef or its annotation), as cached.

    `found` is False when no such TrafficRouting exists; the other fields are then empty.
    """

    name: str
    found: bool = False
    phase: str = ""
    message: str = ""
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""
    deleting: bool = False


@dataclasses.dataclass(frozen=True)
class RolloutObserved:
    rollout: Rollout
    workload: Workload | None
    now: datetime
    # The BatchRelease named as the Rollout, if the cache has one.
    batch_release: BatchRelease | None = None
    # None when the Rollout has no trafficRoutings (or the controller did not observe them).
    traffic: TrafficObserved | None = None
    # The end-to-end TrafficRouting the Rollout names; None when it names none.
    traffic_routing: LinkedTrafficRouting | None = None
    # Its AnalysisRuns and the templates it names (graylane's analysis); empty without analysis.
    analysis: AnalysisObserved = dataclasses.field(default_factory=AnalysisObserved)
