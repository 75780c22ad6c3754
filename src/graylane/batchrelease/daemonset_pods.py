"""The native DaemonSet's batches, as Kruise master does them: delete old pods until the partition is met.

A native DaemonSet has no partition. During a release it is `OnDelete` (its controller replaces a pod only
once it is deleted) and the BatchRelease writes the batch into two annotations on it:
`rollouts.kruise.io/daemonset-partition` (pods to keep on the old revision) and
`rollouts.kruise.io/daemonset-batch-revision` (the revision the batch updates to). `plan` decides which
old pods to delete now (Kruise master's native-DaemonSet controller):

- nothing while a pod of the DaemonSet is terminating (its replacement is not there yet);
- done once `pods - partition` pods are on the batch revision;
- otherwise the oldest old pods, at most `maxUnavailable` of the DaemonSet's rolling-update settings
  (default 1, scaled against desiredNumberScheduled, rounding down, at least 1) minus the pods that are
  not ready now, so a batch never takes down more nodes' pods at once than the user's rolling update
  would (Kruise deletes up to maxUnavailable per pass whatever is still unready: a deliberate difference,
  docs/decisions.md).

What it must not do: I/O, or touch the DaemonSet itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graylane.api import keys
from graylane.api.common import scaled_int_or_percent
from graylane.batchrelease.kinds_style import pod_ready, pods_on

__all__ = ["RECHECK_SECONDS", "DaemonSetPods", "DeletePod", "PodsPlan", "max_unavailable", "plan"]

RECHECK_SECONDS = 2.0  # Kruise's DefaultRetryDuration: pods are listed, not watched
Obj = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class DaemonSetPods:
    """A native DaemonSet in a release and the pods it controls (listed, live and terminating)."""

    daemonset: Obj
    pods: tuple[Obj, ...]


@dataclasses.dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str  # only this incarnation of the name


@dataclasses.dataclass(frozen=True)
class PodsPlan:
    deletes: tuple[DeletePod, ...] = ()
    requeue_after: float | None = None


def in_release(ds: Obj) -> bool:
    """Whether the DaemonSet carries a batch for this controller to carry out."""
    return keys.DAEMONSET_PARTITION_ANNOTATION in _annotations(ds)


def max_unavailable(ds: Obj) -> int:
    desired = int((ds.get("status") or {}).get("desiredNumberScheduled") or 0)
    value = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}).get(
        "maxUnavailable"
    )
    if value is None:
        return 1
    try:
        return max(scaled_int_or_percent(value, desired, round_up=False), 1)
    except ValueError:
        return 1


def plan(observed: DaemonSetPods) -> PodsPlan:
    ds = observed.daemonset
    annotations = _annotations(ds)
    try:
        partition = int(annotations.get(keys.DAEMONSET_PARTITION_ANNOTATION) or "")
    except ValueError:
        return PodsPlan()  # not ours to guess: the BatchRelease writes a number
    revision = annotations.get(keys.DAEMONSET_BATCH_REVISION_ANNOTATION) or ""
    if not revision:
        return PodsPlan()
    if any(_deleting(p) for p in observed.pods):
        return PodsPlan(requeue_after=RECHECK_SECONDS)
    updated = pods_on(observed.pods, revision)
    wanted = max(len(observed.pods) - partition, 0)
    if len(updated) >= wanted:
        return PodsPlan()
    old = sorted((p for p in observed.pods if p not in updated), key=_created)
    unready = sum(1 for p in observed.pods if not pod_ready(p))
    budget = max_unavailable(ds) - unready
    count = min(wanted - len(updated), budget, len(old))
    if count <= 0:
        return PodsPlan(requeue_after=RECHECK_SECONDS)
    deletes = tuple(DeletePod(_meta(p).get("name", ""), _meta(p).get("uid", "")) for p in old[:count])
    return PodsPlan(deletes, RECHECK_SECONDS)


def _annotations(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _created(pod: Obj) -> tuple[str, str]:
    return str(_meta(pod).get("creationTimestamp", "")), str(_meta(pod).get("name", ""))
