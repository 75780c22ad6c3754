"""``rollouts.kruise.io/v1alpha1`` Rollout: the older, still served version.

What this module does: models the v1alpha1 shape (``objectRef.workloadRef``, step ``weight``, header-only
matches, canary-only strategy, flat ``canaryStatus``) and the v1alpha1 ``TrafficRoutingRef`` /
``TrafficRoutingStrategy`` that the TrafficRouting CRD also uses. Types identical in both versions are
reused from ``rollout_v1beta1``.

What it must not do: carry behaviour. The controller always works on v1beta1; v1alpha1 objects only
pass through ``conversion`` (rolling style and TrafficRouting name live in annotations here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from graylane.api.analysis import RolloutAnalysis, RolloutBackgroundAnalysis
from graylane.api.common import (
    CRD_DEFAULT,
    GoTag,
    Int32,
    Int64,
    IntOrString,
    KubeModel,
    ObjectRef,
    PatchPodTemplateMetadata,
    RolloutCondition,
)
from graylane.api.gateway import MAX_HEADERS, HTTPHeaderFilter, HTTPHeaderMatch
from graylane.api.rollout_v1beta1 import GatewayTrafficRouting, IngressTrafficRouting, RolloutPause

__all__ = [
    "CanaryStatus",
    "CanaryStep",
    "CanaryStrategy",
    "CustomNetworkRef",
    "HttpRouteMatch",
    "Rollout",
    "RolloutObjectRef",
    "RolloutSpec",
    "RolloutStatus",
    "RolloutStrategy",
    "RolloutTrafficRoutingRef",
    "TrafficRoutingRef",
    "TrafficRoutingStrategy",
    "WorkloadRef",
]

# Same three required fields as v1beta1 ObjectRef; Go gives them separate names.
WorkloadRef = ObjectRef
CustomNetworkRef = ObjectRef


class TrafficRoutingRef(KubeModel):
    service: str
    grace_period_seconds: Annotated[Int32, CRD_DEFAULT] = 3
    ingress: IngressTrafficRouting | None = None
    gateway: GatewayTrafficRouting | None = None
    custom_network_refs: list[CustomNetworkRef] = Field(default_factory=list)


class RolloutTrafficRoutingRef(TrafficRoutingRef):
    """A Rollout's trafficRoutings entry, which also accepts Kruise v0.1's provider `type` (gone from its
    schema since v0.2). Pages written for v0.1 still set `type: nginx` and `kubectl apply` refuses a
    field the schema lacks; conversion makes it the Ingress classType when that is not set."""

    type: str = ""


class HttpRouteMatch(KubeModel):
    """v1alpha1 matches carry headers only."""

    headers: list[HTTPHeaderMatch] = Field(default_factory=list, max_length=MAX_HEADERS)


class TrafficRoutingStrategy(KubeModel):
    """Traffic part of a step; also ``TrafficRouting.spec.strategy``."""

    weight: Annotated[Int32 | None, GoTag.POINTER] = None
    request_header_modifier: HTTPHeaderFilter | None = None
    matches: list[HttpRouteMatch] = Field(default_factory=list)


class CanaryStep(TrafficRoutingStrategy):
    """A step: Go inlines ``TrafficRoutingStrategy`` first, then replicas and pause."""

    replicas: Annotated[IntOrString | None, GoTag.POINTER] = None
    pause: RolloutPause = Field(default_factory=RolloutPause)
    analysis: RolloutAnalysis | None = Field(
        None, description="graylane: metric analysis this step waits for; failure rolls the release back."
    )


class CanaryStrategy(KubeModel):
    steps: list[CanaryStep] = Field(default_factory=list)
    traffic_routings: list[RolloutTrafficRoutingRef] = Field(default_factory=list)
    failure_threshold: Annotated[IntOrString | None, GoTag.POINTER] = None
    patch_pod_template_metadata: PatchPodTemplateMetadata | None = None
    disable_generate_canary_service: bool = False
    analysis: RolloutBackgroundAnalysis | None = Field(
        None, description="graylane: analysis of the whole release, beside the steps; failure rolls back."
    )


class RolloutStrategy(KubeModel):
    paused: bool = False
    canary: CanaryStrategy | None = None


class RolloutObjectRef(KubeModel):
    """``spec.objectRef``: a wrapper around the workload reference."""

    workload_ref: WorkloadRef | None = None


class RolloutSpec(KubeModel):
    object_ref: RolloutObjectRef
    strategy: RolloutStrategy
    # Deprecated and unused by the controller; the rollout id now lives on the workload.
    rollout_id: str = Field("", alias="rolloutID")
    disabled: Annotated[bool, GoTag.ALWAYS_OPTIONAL, CRD_DEFAULT] = False


class CanaryStatus(KubeModel):
    observed_workload_generation: Int64 = 0
    observed_rollout_id: str = Field("", alias="observedRolloutID")
    rollout_hash: str = ""
    stable_revision: str = ""
    canary_revision: Annotated[str, GoTag.ALWAYS] = ""
    pod_template_hash: Annotated[str, GoTag.ALWAYS] = ""
    canary_replicas: Annotated[Int32, GoTag.ALWAYS] = 0
    canary_ready_replicas: Annotated[Int32, GoTag.ALWAYS] = 0
    # Written always (no omitempty) but not required by the schema: KubeVela's `vela workflow resume`
    # PUTs the status without these two (v0.3.0 structs); a missing value reads as the default.
    next_step_index: Annotated[Int32, GoTag.ALWAYS_OPTIONAL] = 0
    current_step_index: Annotated[Int32, GoTag.ALWAYS_OPTIONAL] = 0
    current_step_state: Annotated[str, GoTag.ALWAYS] = ""
    message: str = ""
    last_update_time: datetime | None = None
    finalising_step: Annotated[str, GoTag.ALWAYS_OPTIONAL] = ""


class RolloutStatus(KubeModel):
    observed_generation: Int64 = 0
    canary_status: CanaryStatus | None = None
    conditions: list[RolloutCondition] = Field(default_factory=list)
    phase: str = ""
    message: str = ""


class Rollout(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1alpha1"] = "rollouts.kruise.io/v1alpha1"
    kind: Literal["Rollout"] = "Rollout"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RolloutSpec
    status: RolloutStatus = Field(default_factory=RolloutStatus)
