"""``rollouts.kruise.io/v1beta1`` Rollout: the storage version, and the one the controller works with.

What this module does: models the Rollout spec (canary and blue-green strategies, steps, traffic
routing references) and the full status, field for field as Kruise's Go types, in Go field order, with
the CRD's defaults, plus the small read-only helpers Kruise defines on the types (``GetRollingStyle``,
``GetSteps``, ``GetSubStatus``, ``IsRealPartition``...).

What it must not do: decide anything about a rollout's progress (that is the planner's job) or talk to
the API server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from graylane.api.analysis import RolloutAnalysis, RolloutBackgroundAnalysis
from graylane.api.common import (
    CRD_DEFAULT,
    GoTag,
    Int32,
    Int64,
    IntOrString,
    KubeModel,
    ListMapKey,
    ObjectRef,
    PatchPodTemplateMetadata,
    RolloutCondition,
)
from graylane.api.enums import RollingStyle
from graylane.api.gateway import (
    MAX_HEADERS,
    HTTPHeaderFilter,
    HTTPHeaderMatch,
    HTTPPathMatch,
    HTTPQueryParamMatch,
)

__all__ = [
    "BlueGreenStatus",
    "BlueGreenStrategy",
    "CanaryStatus",
    "CanaryStep",
    "CanaryStrategy",
    "CommonStatus",
    "GatewayTrafficRouting",
    "HttpRouteMatch",
    "IngressTrafficRouting",
    "Rollout",
    "RolloutPause",
    "RolloutSpec",
    "RolloutStatus",
    "RolloutStrategy",
    "TrafficRoutingRef",
    "is_real_partition",
]

MAX_STEPS: Final = 50
MAX_MATCHES: Final = 16
DEFAULT_INGRESS_CLASS_TYPE: Final = "nginx"


class IngressTrafficRouting(KubeModel):
    """Ingress to route through; ``class_type`` empty means ``nginx`` (code default, not a CRD default)."""

    class_type: str = ""
    name: str

    @property
    def effective_class_type(self) -> str:
        return self.class_type or DEFAULT_INGRESS_CLASS_TYPE


class GatewayTrafficRouting(KubeModel):
    """Gateway API HTTPRoute to route through."""

    http_route_name: Annotated[str | None, GoTag.POINTER] = None


class TrafficRoutingRef(KubeModel):
    """One element of ``trafficRoutings``; several providers in one element are driven together."""

    service: str
    grace_period_seconds: Annotated[Int32, CRD_DEFAULT] = 3
    ingress: IngressTrafficRouting | None = None
    gateway: GatewayTrafficRouting | None = None
    custom_network_refs: list[ObjectRef] = Field(default_factory=list)
    additional_params: dict[str, str] = Field(default_factory=dict)


class HttpRouteMatch(KubeModel):
    """One match; the matches of a step are ORed, the conditions inside one match are ANDed."""

    path: HTTPPathMatch | None = None
    headers: Annotated[list[HTTPHeaderMatch], ListMapKey("name")] = Field(
        default_factory=list, max_length=MAX_HEADERS
    )
    query_params: Annotated[list[HTTPQueryParamMatch], ListMapKey("name")] = Field(
        default_factory=list, max_length=MAX_HEADERS
    )


class RolloutPause(KubeModel):
    """Pause after a step: ``duration`` seconds, or until approved when ``duration`` is unset."""

    duration: Annotated[Int32 | None, GoTag.POINTER] = None


class CanaryStep(KubeModel):
    """A step (batch). Go inlines ``TrafficRoutingStrategy`` first, hence the field order."""

    traffic: Annotated[str | None, GoTag.POINTER] = None
    request_header_modifier: HTTPHeaderFilter | None = None
    matches: list[HttpRouteMatch] = Field(default_factory=list, max_length=MAX_MATCHES)
    replicas: Annotated[IntOrString | None, GoTag.POINTER] = None
    pause: RolloutPause = Field(default_factory=RolloutPause)
    # graylane's addition (absent from Kruise's API): the step waits for this analysis.
    analysis: RolloutAnalysis | None = Field(
        None, description="graylane: metric analysis this step waits for; failure rolls the release back."
    )


class CanaryStrategy(KubeModel):
    """Canary (extra canary Deployment) or partition (in-place batches) release."""

    steps: list[CanaryStep] = Field(default_factory=list, max_length=MAX_STEPS)
    traffic_routings: list[TrafficRoutingRef] = Field(default_factory=list)
    failure_threshold: Annotated[IntOrString | None, GoTag.POINTER] = None
    patch_pod_template_metadata: PatchPodTemplateMetadata | None = None
    enable_extra_workload_for_canary: bool = False
    traffic_routing_ref: str = ""
    disable_generate_canary_service: bool = False
    analysis: RolloutBackgroundAnalysis | None = Field(
        None, description="graylane: analysis of the whole release, beside the steps; failure rolls back."
    )


class BlueGreenStrategy(KubeModel):
    """Blue-green release: new pods are added next to the old ones, traffic is switched by steps."""

    steps: list[CanaryStep] = Field(default_factory=list, max_length=MAX_STEPS)
    traffic_routings: list[TrafficRoutingRef] = Field(default_factory=list)
    failure_threshold: Annotated[IntOrString | None, GoTag.POINTER] = None
    traffic_routing_ref: str = ""
    disable_generate_canary_service: bool = False
    analysis: RolloutBackgroundAnalysis | None = Field(
        None, description="graylane: analysis of the whole release, beside the steps; failure rolls back."
    )


class RolloutStrategy(KubeModel):
    """Exactly one of ``canary`` / ``blue_green`` is expected (the webhook enforces it)."""

    paused: bool = False
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    def rolling_style(self) -> RollingStyle | None:
        """Go ``GetRollingStyle``; ``None`` for an empty strategy (where Go would dereference nil)."""
        if self.blue_green is not None:
            return RollingStyle.BLUE_GREEN
        if self.canary is None:
            return None
        return RollingStyle.CANARY if self.canary.enable_extra_workload_for_canary else RollingStyle.PARTITION

    def active(self) -> CanaryStrategy | BlueGreenStrategy | None:
        """The sub-strategy that ``rolling_style`` selects."""
        return self.blue_green if self.blue_green is not None else self.canary

    def steps(self) -> list[CanaryStep]:
        active = self.active()
        return active.steps if active is not None else []

    def traffic_routings(self) -> list[TrafficRoutingRef]:
        active = self.active()
        return active.traffic_routings if active is not None else []

    def disable_generate_canary_service(self) -> bool:
        active = self.active()
        return active.disable_generate_canary_service if active is not None else False


class RolloutSpec(KubeModel):
    workload_ref: ObjectRef
    strategy: RolloutStrategy
    disabled: Annotated[bool, GoTag.ALWAYS_OPTIONAL, CRD_DEFAULT] = False


class CommonStatus(KubeModel):
    """Fields shared by the canary and the blue-green sub-status."""

    observed_workload_generation: Int64 = 0
    observed_rollout_id: str = Field("", alias="observedRolloutID")
    rollout_hash: str = ""
    stable_revision: str = ""
    pod_template_hash: Annotated[str, GoTag.ALWAYS] = ""
    # 1-based; Kruise marks it +optional although it is always written.
    current_step_index: Annotated[Int32, GoTag.ALWAYS_OPTIONAL] = 0
    # currentStepIndex + 1, or -1 on/after the last step; users may patch it to jump.
    # Written always (no omitempty) but not required by the schema: KubeVela's `vela workflow resume`
    # PUTs the status without these two (v0.3.0 structs); a missing value reads as the default.
    next_step_index: Annotated[Int32, GoTag.ALWAYS_OPTIONAL] = 0
    finalising_step: Annotated[str, GoTag.ALWAYS_OPTIONAL] = ""
    current_step_state: Annotated[str, GoTag.ALWAYS] = ""
    message: str = ""
    last_update_time: datetime | None = None


class CanaryStatus(CommonStatus):
    canary_revision: Annotated[str, GoTag.ALWAYS] = ""
    canary_replicas: Annotated[Int32, GoTag.ALWAYS] = 0
    canary_ready_replicas: Annotated[Int32, GoTag.ALWAYS] = 0


class BlueGreenStatus(CommonStatus):
    updated_revision: Annotated[str, GoTag.ALWAYS] = ""
    updated_replicas: Annotated[Int32, GoTag.ALWAYS] = 0
    updated_ready_replicas: Annotated[Int32, GoTag.ALWAYS] = 0


class RolloutStatus(KubeModel):
    observed_generation: Int64 = 0
    canary_status: CanaryStatus | None = None
    blue_green_status: BlueGreenStatus | None = None
    conditions: list[RolloutCondition] = Field(default_factory=list)
    phase: str = ""
    message: str = ""
    # Mirror of the active sub-status, for `kubectl get` columns.
    current_step_index: Annotated[Int32, GoTag.ALWAYS] = 0
    current_step_state: Annotated[str, GoTag.ALWAYS] = ""

    def sub_status(self) -> CommonStatus | None:
        """Go ``GetSubStatus``: the canary status if set, else the blue-green one."""
        return self.canary_status if self.canary_status is not None else self.blue_green_status

    def condition(self, type_: str) -> RolloutCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class Rollout(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1beta1"] = "rollouts.kruise.io/v1beta1"
    kind: Literal["Rollout"] = "Rollout"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RolloutSpec
    status: RolloutStatus = Field(default_factory=RolloutStatus)


def is_real_partition(rollout: Rollout) -> bool:
    """Go ``IsRealPartition``: in-place batches, i.e. not blue-green and not a canary-style Deployment."""
    style = rollout.spec.strategy.rolling_style()
    if style is None or style is RollingStyle.BLUE_GREEN:
        return False
    ref = rollout.spec.workload_ref
    is_deployment = ref.api_version == "apps/v1" and ref.kind == "Deployment"
    return not (is_deployment and style is RollingStyle.CANARY)
