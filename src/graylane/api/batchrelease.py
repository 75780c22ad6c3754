"""BatchRelease, v1beta1 (storage) and v1alpha1: the internal CR through which a Rollout drives its workload.

What this module does: models the release plan (batches, partition, rolling style...) and the status
(current batch and its state, revisions, observed hashes), as Kruise's Go types, in Go field order. The
release plan and the canary status have the same shape in both versions; the versions differ only in
where the workload reference lives (``spec.workloadRef`` vs ``spec.targetReference.workloadRef``) and in
``status.message`` (v1beta1 only).

What it must not do: decide batches or talk to the API server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from graylane.api.common import (
    GoTag,
    Int32,
    Int64,
    IntOrString,
    KubeModel,
    ObjectRef,
    PatchPodTemplateMetadata,
    RolloutCondition,
)

__all__ = [
    "BatchRelease",
    "BatchReleaseCanaryStatus",
    "BatchReleaseSpec",
    "BatchReleaseSpecV1alpha1",
    "BatchReleaseStatus",
    "BatchReleaseStatusV1alpha1",
    "BatchReleaseV1alpha1",
    "ReleaseBatch",
    "ReleasePlan",
    "TargetReference",
]


class ReleaseBatch(KubeModel):
    """Number (or percentage of the workload) of updated pods wanted once this batch is done."""

    canary_replicas: IntOrString


class ReleasePlan(KubeModel):
    # Go has no omitempty here, but the field is +optional in the CRD.
    batches: Annotated[list[ReleaseBatch], GoTag.ALWAYS_OPTIONAL] = Field(default_factory=list)
    # 0-based index of the last batch to release; unset means "finalise".
    batch_partition: Annotated[Int32 | None, GoTag.POINTER] = None
    rollout_id: str = Field("", alias="rolloutID")
    failure_threshold: Annotated[IntOrString | None, GoTag.POINTER] = None
    finalizing_policy: str = ""
    patch_pod_template_metadata: PatchPodTemplateMetadata | None = None
    rolling_style: str = ""
    # Deprecated in favour of rolling_style; only consulted when rolling_style is empty.
    enable_extra_workload_for_canary: Annotated[bool, GoTag.ALWAYS] = False


class BatchReleaseCanaryStatus(KubeModel):
    batch_state: str = ""
    current_batch: Annotated[Int32, GoTag.ALWAYS] = 0
    batch_ready_time: datetime | None = None
    updated_replicas: Int32 = 0
    updated_ready_replicas: Int32 = 0
    no_need_update_replicas: Annotated[Int32 | None, GoTag.POINTER] = None


class BatchReleaseStatusV1alpha1(KubeModel):
    conditions: list[RolloutCondition] = Field(default_factory=list)
    canary_status: BatchReleaseCanaryStatus = Field(default_factory=BatchReleaseCanaryStatus)
    stable_revision: str = ""
    update_revision: str = ""
    observed_generation: Int64 = 0
    observed_rollout_id: str = Field("", alias="observedRolloutID")
    observed_workload_replicas: Int32 = 0
    collision_count: Annotated[Int32 | None, GoTag.POINTER] = None
    observed_release_plan_hash: str = ""
    phase: str = ""


class BatchReleaseStatus(BatchReleaseStatusV1alpha1):
    message: str = ""


class BatchReleaseSpec(KubeModel):
    workload_ref: ObjectRef | None = None
    release_plan: ReleasePlan


class BatchRelease(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1beta1"] = "rollouts.kruise.io/v1beta1"
    kind: Literal["BatchRelease"] = "BatchRelease"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BatchReleaseSpec
    status: BatchReleaseStatus = Field(default_factory=BatchReleaseStatus)


class TargetReference(KubeModel):
    """v1alpha1 ``spec.targetReference``."""

    workload_ref: ObjectRef | None = None


class BatchReleaseSpecV1alpha1(KubeModel):
    target_reference: TargetReference
    release_plan: ReleasePlan


class BatchReleaseV1alpha1(KubeModel):
    api_version: Literal["rollouts.kruise.io/v1alpha1"] = "rollouts.kruise.io/v1alpha1"
    kind: Literal["BatchRelease"] = "BatchRelease"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: BatchReleaseSpecV1alpha1
    status: BatchReleaseStatusV1alpha1 = Field(default_factory=BatchReleaseStatusV1alpha1)
