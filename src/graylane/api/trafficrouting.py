"""``rollouts.kruise.io/v1alpha1`` TrafficRouting: gateway rules shared by several Rollouts (end-to-end).

What this module does: models the TrafficRouting kind (its only version). The spec reuses the v1alpha1
traffic routing reference and strategy types.

What it must not do: drive the routes (that is the TrafficRouting controller's job).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from graylane.api.common import Int64, KubeModel
from graylane.api.rollout_v1alpha1 import TrafficRoutingRef, TrafficRoutingStrategy

__all__ = ["TrafficRouting", "TrafficRoutingSpec", "TrafficRoutingStatus"]


class TrafficRoutingSpec(KubeModel):
    object_ref: list[TrafficRoutingRef]
    strategy: TrafficRoutingStrategy


class TrafficRoutingStatus(KubeModel):
    observed_generation: Int64 = 0
    phase: str = ""
    message: str = ""


def _zero_spec() -> TrafficRoutingSpec:
    return TrafficRoutingSpec(object_ref=[], strategy=TrafficRoutingStrategy())


class TrafficRouting(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1alpha1"] = "rollouts.kruise.io/v1alpha1"
    kind: Literal["TrafficRouting"] = "TrafficRouting"
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Kruise's CRD does not require spec (the API server admits a TrafficRouting without one), and its
    # controller reads Go's zero value; so does this model, so that such an object gets a status like
    # any other instead of being skipped as malformed (found by the webhook fuzzer). The root level of
    # a generated schema has no `required`, so the CRD is unchanged.
    spec: TrafficRoutingSpec = Field(default_factory=_zero_spec)
    status: TrafficRoutingStatus = Field(default_factory=TrafficRoutingStatus)
