"""String enums for every closed set of values in the Kruise Rollout API.

What this module does: names the phases, step states, finalising steps, condition types and reasons,
rolling styles, batch states and traffic-routing phases exactly as Kruise spells them on the wire, so
code compares against a member instead of a string literal.

What it must not do: hold behaviour. Model fields whose CRD has no enum keep a plain ``str`` type (an
unexpected value from the API server must never make parsing fail); these enums are the vocabulary the
planner compares them with (``StrEnum`` members compare equal to their string value).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BatchReleasePhase",
    "BatchState",
    "ConditionStatus",
    "ConditionType",
    "FinaliseReason",
    "FinalisingStep",
    "FinalizingPolicy",
    "HeaderMatchType",
    "PathMatchType",
    "ProgressingReason",
    "QueryParamMatchType",
    "RollingStyle",
    "RolloutHistoryPhase",
    "RolloutPhase",
    "StepState",
    "TerminatingReason",
    "TrafficRoutingPhase",
    "WorkloadType",
]


class RolloutPhase(StrEnum):
    """``Rollout.status.phase``."""

    INITIAL = "Initial"
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    TERMINATING = "Terminating"
    DISABLED = "Disabled"
    DISABLING = "Disabling"


class StepState(StrEnum):
    """``currentStepState`` of the canary or blue-green sub-status (Go ``CanaryStepState``)."""

    # v1beta1 only; a v1alpha1 client still sees it because the value is copied verbatim.
    BEFORE_STEP_UPGRADE = "BeforeStepUpgrade"
    STEP_UPGRADE = "StepUpgrade"
    STEP_TRAFFIC_ROUTING = "StepTrafficRouting"
    STEP_METRICS_ANALYSIS = "StepMetricsAnalysis"
    STEP_PAUSED = "StepPaused"
    STEP_READY = "StepReady"
    COMPLETED = "Completed"


class FinalisingStep(StrEnum):
    """``finalisingStep`` of the sub-status (Go ``FinalisingStepType``)."""

    ROUTE_TRAFFIC_TO_NEW = "FinalisingStepRouteTrafficToNew"
    ROUTE_TRAFFIC_TO_STABLE = "FinalisingStepRouteTrafficToStable"
    RESTORE_STABLE_SERVICE = "RestoreStableService"
    REMOVE_CANARY_SERVICE = "RemoveCanaryService"
    RESUME_WORKLOAD = "ResumeWorkload"
    RELEASE_WORKLOAD_CONTROL = "ReleaseWorkloadControl"
    END = "END"
    WAIT_ENDLESS = "WaitEndless"


class ConditionType(StrEnum):
    """``Rollout.status.conditions[].type``."""

    PROGRESSING = "Progressing"
    SUCCEEDED = "Succeeded"
    TERMINATING = "Terminating"


class ConditionStatus(StrEnum):
    """``conditions[].status`` (core/v1 ConditionStatus)."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ProgressingReason(StrEnum):
    """Reasons of the ``Progressing`` condition."""

    INITIALIZING = "Initializing"
    IN_ROLLING = "InRolling"
    FINALISING = "Finalising"
    COMPLETED = "Completed"
    CANCELLING = "Cancelling"
    PAUSED = "Paused"


class TerminatingReason(StrEnum):
    """Reasons of the ``Terminating`` condition."""

    IN_TERMINATING = "InTerminating"
    COMPLETED = "Completed"


class FinaliseReason(StrEnum):
    """Why finalisation runs (Kruise logs and events carry these words)."""

    SUCCESS = "Success"
    ROLLBACK = "Rollback"
    CONTINUOUS = "Continuous"
    DISABLED = "RolloutDisabled"
    DELETE = "RolloutDeleting"


class RollingStyle(StrEnum):
    """``BatchRelease.spec.releasePlan.rollingStyle`` and the result of ``RolloutStrategy.rolling_style``."""

    CANARY = "Canary"
    PARTITION = "Partition"
    BLUE_GREEN = "BlueGreen"


class BatchState(StrEnum):
    """``BatchRelease.status.canaryStatus.batchState``."""

    UPGRADING = "Upgrading"
    VERIFYING = "Verifying"
    READY = "Ready"


class BatchReleasePhase(StrEnum):
    """``BatchRelease.status.phase`` (Go reuses ``RolloutPhase`` for it)."""

    PREPARING = "Preparing"
    PROGRESSING = "Progressing"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"


class FinalizingPolicy(StrEnum):
    """``BatchRelease.spec.releasePlan.finalizingPolicy``; empty means ``Immediate``."""

    WAIT_RESUME = "WaitResume"
    IMMEDIATE = "Immediate"


class TrafficRoutingPhase(StrEnum):
    """``TrafficRouting.status.phase``."""

    INITIAL = "Initial"
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    FINALIZING = "Finalizing"
    TERMINATING = "Terminating"


class RolloutHistoryPhase(StrEnum):
    """``RolloutHistory.status.phase``: empty while recording, then ``completed``."""

    COMPLETED = "completed"


class WorkloadType(StrEnum):
    """Values of the workload label ``rollouts.kruise.io/workload-type``."""

    CLONESET = "cloneset"
    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"
    DAEMONSET = "daemonset"


class HeaderMatchType(StrEnum):
    """Gateway API ``HeaderMatchType`` (CRD enum, default ``Exact``)."""

    EXACT = "Exact"
    REGULAR_EXPRESSION = "RegularExpression"


class QueryParamMatchType(StrEnum):
    """Gateway API ``QueryParamMatchType`` (CRD enum, default ``Exact``)."""

    EXACT = "Exact"
    REGULAR_EXPRESSION = "RegularExpression"


class PathMatchType(StrEnum):
    """Gateway API ``PathMatchType`` (CRD enum, default ``PathPrefix``)."""

    EXACT = "Exact"
    PATH_PREFIX = "PathPrefix"
    REGULAR_EXPRESSION = "RegularExpression"
