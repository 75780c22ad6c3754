"""The partition arithmetic of the kinds released in place other than Deployments (reference §2.6).

A CloneSet's, StatefulSet's or DaemonSet's partition counts the pods kept on the OLD revision (a
partition-style Deployment's counts new pods): `replicas - ceil(batch x replicas)`, with no cap (only the
Deployment keeps one old pod for a percentage below 100%). A CloneSet's partition is written as a
percentage when the batch is one, the way Kruise Rollout writes it, and the pods on the new revision are
what that percentage makes the CloneSet keep. Shared by the BatchRelease control (batchrelease/
kinds_style.py) and `graylane plan`.

Pure: no I/O.
"""

from __future__ import annotations

from graylane.api.common import is_percent, scaled_int_or_percent
from graylane.planner.weights import scale

__all__ = ["cloneset_partition", "desired_stable", "new_pods"]


def desired_stable(replicas: int, batch_replicas: int | str, no_need_update: int = 0) -> int:
    """Old pods to keep for a batch: replicas - ceil(batch x replicas); with pods that need no update
    (rollback in batches) the batch is taken over the others only."""
    if no_need_update > 0:
        return max(replicas - no_need_update - scale(batch_replicas, replicas - no_need_update), 0)
    return max(replicas - scale(batch_replicas, replicas), 0)


def cloneset_partition(stable: int, replicas: int, batch_replicas: int | str) -> int | str:
    """The CloneSet partition for `stable` old pods: a percentage when the batch is one (Kruise's
    ParseIntegerAsPercentageIfPossible), else the number."""
    if not (isinstance(batch_replicas, str) and is_percent(batch_replicas)):
        return stable
    if stable >= replicas:
        return "100%"
    if stable <= 0:
        return "0%"
    percent = f"{stable * 100 // replicas}%"
    if scaled_int_or_percent(percent, replicas, round_up=True) <= 0 and batch_replicas != "100%":
        return "1%"  # at least one old pod stays for a batch below 100%
    return percent


def new_pods(kind: str, replicas: int, batch_replicas: int | str, no_need_update: int = 0) -> int:
    """Pods on the new revision once a batch is done, for a workload of `kind` (not a Deployment)."""
    stable = desired_stable(replicas, batch_replicas, no_need_update)
    if kind == "CloneSet":
        kept = cloneset_partition(stable, replicas, batch_replicas)
        stable = min(scaled_int_or_percent(kept, replicas, round_up=True), replicas)
    return max(replicas - stable, 0)
