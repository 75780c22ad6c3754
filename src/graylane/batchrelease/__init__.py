"""BatchRelease: how a Rollout's batches become pods (reference §1.8, §2.6-§2.8), for Deployments.

What this package does: the BatchRelease controller (`BatchReleaseReconciler`: Preparing → Progressing →
Finalizing → Completed, canary style with an extra Deployment or partition style in place) and the
Advanced Deployment controller (`AdvancedDeploymentReconciler`) that scales a partition-style
Deployment's ReplicaSets; both run on the runtime's reconcile loop (graylane.runtime). Decisions are
pure (`planner`, `canary_style`, `partition_style`, `advanced_deployment_planner`); `controller` and
`advanced_deployment` only observe and name the writes that carry them out.

What it must not do: drive CloneSets, StatefulSets, DaemonSets or blue-green releases (not in scope yet),
or touch a Rollout (the Rollout controller owns the BatchRelease spec; this package owns its status).
"""

from graylane.batchrelease.advanced_deployment import AdvancedDeploymentReconciler
from graylane.batchrelease.controller import BatchReleaseReconciler

__all__ = ["AdvancedDeploymentReconciler", "BatchReleaseReconciler"]
