"""BatchRelease: how a Rollout's batches become pods (reference §1.8, §2.6-§2.8), for every workload kind.

What this package does: the BatchRelease controller (`BatchReleaseReconciler`: Preparing → Progressing →
Finalizing → Completed; for a Deployment canary style with an extra Deployment or partition style in
place, for a CloneSet, StatefulSet or DaemonSet (native or OpenKruise's) the workload's own partition),
the Advanced Deployment controller (`AdvancedDeploymentReconciler`) that scales a partition-style
Deployment's ReplicaSets, and the native-DaemonSet controller (`native_daemonset`) that deletes a
DaemonSet's old pods batch by batch; all run on the runtime's reconcile loop (graylane.runtime).
Decisions are pure (`planner`, `canary_style`, `partition_style`, `kinds_style`,
`advanced_deployment_planner`, `daemonset_pods`); `controller`, `advanced_deployment` and
`native_daemonset` only observe and name the writes that carry them out.

What it must not do: drive blue-green releases (not in scope here), or touch a Rollout (the Rollout
controller owns the BatchRelease spec; this package owns its status).
"""

from graylane.batchrelease.advanced_deployment import AdvancedDeploymentReconciler
from graylane.batchrelease.controller import BatchReleaseReconciler

__all__ = ["AdvancedDeploymentReconciler", "BatchReleaseReconciler"]
