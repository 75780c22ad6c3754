"""``rollouts.kruise.io/v1alpha1`` RolloutHistory: a record of one finished rollout and its pods per batch.

What this module does: models the RolloutHistory kind (its only version). The ``data`` fields hold raw
copies of other objects' specs and are kept verbatim (the CRD preserves unknown fields there).

What it must not do: collect the history (that is the RolloutHistory controller's job).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from graylane.api.common import Int32, KubeModel

__all__ = [
    "CanaryStepInfo",
    "NameAndData",
    "PodInfo",
    "RolloutHistory",
    "RolloutHistorySpec",
    "RolloutHistoryStatus",
    "RolloutInfo",
    "TrafficRoutingInfo",
    "WorkloadInfo",
]


class NameAndData(KubeModel):
    """Name of a related object and a raw copy of its spec."""

    name: str
    data: Any = None


class RolloutInfo(NameAndData):
    rollout_id: str = Field(alias="rolloutID")


class WorkloadInfo(NameAndData):
    api_version: str = ""
    kind: str = ""


class TrafficRoutingInfo(KubeModel):
    ingress: NameAndData | None = None
    http_route: NameAndData | None = None


class RolloutHistorySpec(KubeModel):
    rollout: RolloutInfo | None = None
    workload: WorkloadInfo | None = None
    service: NameAndData | None = None
    traffic_routing: TrafficRoutingInfo | None = None


class PodInfo(KubeModel):
    name: str = ""
    ip: str = ""
    node_name: str = ""


class CanaryStepInfo(KubeModel):
    canary_step_index: Int32 = 0
    pods: list[PodInfo] = Field(default_factory=list)


class RolloutHistoryStatus(KubeModel):
    # "" while recording, "completed" when done (see enums.RolloutHistoryPhase).
    phase: str = ""
    canary_steps: list[CanaryStepInfo] = Field(default_factory=list)


class RolloutHistory(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1alpha1"] = "rollouts.kruise.io/v1alpha1"
    kind: Literal["RolloutHistory"] = "RolloutHistory"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RolloutHistorySpec = Field(default_factory=RolloutHistorySpec)
    status: RolloutHistoryStatus = Field(default_factory=RolloutHistoryStatus)
