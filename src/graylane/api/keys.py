"""Every label, annotation and finalizer key Kruise Rollout reads or writes, spelled exactly.

What this module does: gives each key one constant so no other module repeats the string, plus the one
key that is built from a name (the per-Rollout TrafficRouting finalizer).

What it must not do: parse or build values of these keys (that belongs to the code that owns the value).
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "rollouts.kruise.io"
V1ALPHA1: Final = "rollouts.kruise.io/v1alpha1"
V1BETA1: Final = "rollouts.kruise.io/v1beta1"

# --- on the Rollout -------------------------------------------------------------------------------
ROLLOUT_FINALIZER: Final = "rollouts.kruise.io/rollout"
ROLLOUT_HASH_ANNOTATION: Final = "rollouts.kruise.io/hash"
# v1alpha1 spelling of strategy.canary.enableExtraWorkloadForCanary: "canary" | "partition" (any case).
ROLLING_STYLE_ANNOTATION: Final = "rollouts.kruise.io/rolling-style"
# v1alpha1 spelling of strategy.canary.trafficRoutingRef (Kruise reads only this; graylane the field first).
TRAFFIC_ROUTING_ANNOTATION: Final = "rollouts.kruise.io/trafficrouting"
ROLLBACK_IN_BATCH_ANNOTATION: Final = "rollouts.kruise.io/rollback-in-batch"

# --- on the workload ------------------------------------------------------------------------------
WORKLOAD_TYPE_LABEL: Final = "rollouts.kruise.io/workload-type"
# Value: {"rolloutName":"<name>"}.
IN_PROGRESSING_ANNOTATION: Final = "rollouts.kruise.io/in-progressing"
# Value: JSON ownerReference of the BatchRelease.
BATCH_RELEASE_CONTROL_ANNOTATION: Final = "batchrelease.rollouts.kruise.io/control-info"
STABLE_REVISION_LABEL: Final = "rollouts.kruise.io/stable-revision"
DEPLOYMENT_STRATEGY_ANNOTATION: Final = "rollouts.kruise.io/deployment-strategy"
DEPLOYMENT_EXTRA_STATUS_ANNOTATION: Final = "rollouts.kruise.io/deployment-extra-status"
ADVANCED_DEPLOYMENT_CONTROL_LABEL: Final = "rollouts.kruise.io/controlled-by-advanced-deployment-controller"
ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: Final = "rollouts.kruise.io/original-deployment-strategy"
DAEMONSET_REVISION_ANNOTATION: Final = "rollouts.kruise.io/daemonset-revision"
DAEMONSET_ADVANCED_CONTROL_ANNOTATION: Final = "rollouts.kruise.io/daemonset-advanced-control"
DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION: Final = "rollouts.kruise.io/daemonset-original-update-strategy"
# A native DaemonSet in a release (Kruise master): old pods kept (the partition), the revision the batch
# updates to, and the stable and new revisions (Kruise's finder writes both; graylane's webhook the stable).
DAEMONSET_PARTITION_ANNOTATION: Final = "rollouts.kruise.io/daemonset-partition"
DAEMONSET_BATCH_REVISION_ANNOTATION: Final = "rollouts.kruise.io/daemonset-batch-revision"
DAEMONSET_STABLE_REVISION_ANNOTATION: Final = "rollouts.kruise.io/daemonset-stable-revision"
DAEMONSET_CANARY_REVISION_ANNOTATION: Final = "rollouts.kruise.io/daemonset-canary-revision"
# User-set on the workload (label, and annotation of the same key in the docs).
ROLLOUT_ID_LABEL: Final = "rollouts.kruise.io/rollout-id"
DEPLOYMENT_REVISION_ANNOTATION: Final = "deployment.kubernetes.io/revision"
# Workloads with this label/value are skipped by the workload webhook.
CONTROL_PLANE_LABEL: Final = "control-plane"
CONTROL_PLANE_MANAGER_VALUE: Final = "controller-manager"

# --- canary Deployment (canary rolling style) -----------------------------------------------------
CANARY_DEPLOYMENT_LABEL: Final = "rollouts.kruise.io/canary-deployment"
CANARY_DEPLOYMENT_FINALIZER: Final = "finalizer.rollouts.kruise.io/batch-release"

# --- BatchRelease ---------------------------------------------------------------------------------
BATCH_RELEASE_FINALIZER: Final = "rollouts.kruise.io/batch-release-finalizer"

# --- TrafficRouting -------------------------------------------------------------------------------
TRAFFIC_ROUTING_FINALIZER: Final = "rollouts.kruise.io/trafficrouting"
PROGRESSING_ROLLOUT_FINALIZER_PREFIX: Final = "progressing.rollouts.kruise.io"

# --- RolloutHistory -------------------------------------------------------------------------------
ROLLOUT_NAME_LABEL: Final = "rollouts.kruise.io/rollout-name"

# --- pods -----------------------------------------------------------------------------------------
ROLLOUT_BATCH_ID_LABEL: Final = "rollouts.kruise.io/rollout-batch-id"
NO_NEED_UPDATE_POD_LABEL: Final = "rollouts.kruise.io/no-need-update"
POD_TEMPLATE_HASH_LABEL: Final = "pod-template-hash"
CONTROLLER_REVISION_HASH_LABEL: Final = "controller-revision-hash"

# --- traffic providers ----------------------------------------------------------------------------
ORIGINAL_SPEC_CONFIGURATION_ANNOTATION: Final = "rollouts.kruise.io/original-spec-configuration"
# Keys of trafficRoutings[].additionalParams.
ISTIO_STABLE_SUBSET_NAME_PARAM: Final = "istio.destinationRule.stableSubsetName"
ISTIO_CANARY_SUBSET_NAME_PARAM: Final = "istio.destinationRule.canarySubsetName"

# --- HPA (blue-green) -----------------------------------------------------------------------------
HPA_DISABLED_SUFFIX: Final = "-DisableByRollout"


def progressing_rollout_finalizer(rollout_name: str) -> str:
    """Finalizer a Rollout puts on the TrafficRouting it uses: ``progressing.rollouts.kruise.io/<name>``."""
    return f"{PROGRESSING_ROLLOUT_FINALIZER_PREFIX}/{rollout_name}"
