"""Turning a StatefulSet, DaemonSet, CloneSet, Advanced StatefulSet or Advanced DaemonSet into a `Workload`.

What this module does: reads, per kind family (graylane.api.workloads), what the Rollout controller needs
of the workload (Kruise's controller finder, reference §2.2):

- CloneSet: revisions from status.currentRevision / updateRevision (the hash after the last "-", which
  its pods carry as pod-template-hash); back on the current revision while pods are still on the other
  one is a rollback;
- StatefulSet-like (native and Advanced): status.currentRevision / updateRevision as they are (the pods'
  controller-revision-hash); a rollback likewise;
- DaemonSets: the update revision is status.updateRevision (Advanced, v1beta1; daemonSetHash in
  v1alpha1) or the native DaemonSet controller's
  own hash of the template (its pods' controller-revision-hash, api/podtemplatehash.py); the stable
  revision is the one the webhook recorded when the release began (`daemonset-stable-revision`), since
  neither kind reports a current revision; back on it is a rollback;
- whether the webhook's hold is on (`held`, the Deployment's `paused`): the partition holds pods back, or
  a native DaemonSet is `OnDelete` with its original strategy saved; and the patch that hands it back to
  its own controller (`resume_patch`) when a release ends without a BatchRelease to do it.

What it must not do: I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graylane.api import keys
from graylane.api.common import scaled_int_or_percent
from graylane.api.podtemplatehash import UnsupportedTemplate, pod_template_hash
from graylane.api.workloads import Family, WorkloadKind
from graylane.planner.observed import Workload

__all__ = [
    "daemonset_revision",
    "held",
    "kind_workload",
    "partition_of",
    "release_annotations",
    "resume_patch",
    "revision_suffix",
]

Obj = Mapping[str, Any]


def revision_suffix(revision: str) -> str:
    """`name-7d8f9c` → `7d8f9c` (Kruise: what follows the last "-")."""
    return revision[revision.rfind("-") + 1 :]


def daemonset_revision(ds: Obj) -> str:
    """The native DaemonSet controller's hash of the template: its new pods' controller-revision-hash."""
    collision = (ds.get("status") or {}).get("collisionCount")
    try:
        return pod_template_hash(_spec(ds).get("template") or {}, collision)
    except UnsupportedTemplate:
        return ""  # a template Go's printer is not reproduced for: the release waits, saying why


def partition_of(kind: WorkloadKind, obj: Obj) -> int | str | None:
    """The partition as written (CloneSet's may be a percentage); None when there is none."""
    strategy = _spec(obj).get("updateStrategy") or {}
    if kind.family is Family.CLONESET:
        value = strategy.get("partition")
    else:
        value = (strategy.get("rollingUpdate") or {}).get("partition")
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def held(kind: WorkloadKind, obj: Obj) -> bool:
    """Whether the native rollout is held back (the webhook's or a BatchRelease's hold)."""
    if kind.family is Family.NATIVE_DAEMONSET:
        strategy = _spec(obj).get("updateStrategy") or {}
        saved = keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION in _annotations(obj)
        return strategy.get("type") == "OnDelete" and saved
    partition = partition_of(kind, obj)
    if partition is None:
        return False
    try:
        return scaled_int_or_percent(partition, max(_replicas(kind, obj), 1), round_up=True) > 0
    except ValueError:
        return True  # a partition the API server accepted but we cannot read: treat it as a hold


def resume_patch(kind: WorkloadKind, obj: Obj) -> dict[str, Any]:
    """The merge patch that gives the workload back to its own controller (fixed values)."""
    gone = {key: None for key in release_annotations(kind) if key in _annotations(obj)}
    patch: dict[str, Any] = {"metadata": {"annotations": gone}} if gone else {}
    if kind.family is Family.CLONESET:
        return {**patch, "spec": {"updateStrategy": {"partition": None, "paused": False}}}
    if kind.family is Family.NATIVE_DAEMONSET:
        original = _annotations(obj).get(keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION)
        return {**patch, "spec": {"updateStrategy": {"type": original or "RollingUpdate"}}}
    return {**patch, "spec": {"updateStrategy": {"rollingUpdate": {"partition": None}}}}


def release_annotations(kind: WorkloadKind) -> tuple[str, ...]:
    """The annotations a release writes on a workload of this kind besides control-info and
    in-progressing (the webhook's and the BatchRelease's), all removed when it is handed back."""
    if kind.family is Family.NATIVE_DAEMONSET:
        return NATIVE_DAEMONSET_ANNOTATIONS
    if kind.family is Family.ADVANCED_DAEMONSET:
        return (keys.DAEMONSET_STABLE_REVISION_ANNOTATION, keys.DAEMONSET_CANARY_REVISION_ANNOTATION)
    return ()


# Everything a native DaemonSet's release writes on it besides control-info (Kruise master's keys).
NATIVE_DAEMONSET_ANNOTATIONS = (
    keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION,
    keys.DAEMONSET_PARTITION_ANNOTATION,
    keys.DAEMONSET_BATCH_REVISION_ANNOTATION,
    keys.DAEMONSET_STABLE_REVISION_ANNOTATION,
    keys.DAEMONSET_CANARY_REVISION_ANNOTATION,
)


def kind_workload(kind: WorkloadKind, obj: Obj) -> Workload:
    """The Rollout controller's view of a workload of a partition-style kind (not a Deployment)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    annotations, labels = dict(meta.get("annotations") or {}), dict(meta.get("labels") or {})
    stable, canary, rollback = _revisions(kind, obj)
    generation = int(meta.get("generation") or 0)
    return Workload(
        api_version=str(obj.get("apiVersion") or kind.api_version),
        kind=kind.kind,
        name=str(meta.get("name", "")),
        generation=generation,
        status_consistent=int(status.get("observedGeneration") or 0) == generation,
        replicas=_replicas(kind, obj),
        labels=labels,
        annotations=annotations,
        in_rollout_progressing=keys.IN_PROGRESSING_ANNOTATION in annotations,
        paused=held(kind, obj),
        resource_version=str(meta.get("resourceVersion", "")),
        stable_revision=stable,
        canary_revision=canary,
        pod_template_hash=canary,
        is_in_rollback=keys.IN_PROGRESSING_ANNOTATION in annotations and rollback,
        oldest_active_revision=stable,
        template_labels=dict(((_spec(obj).get("template") or {}).get("metadata") or {}).get("labels") or {}),
        resume_patch=resume_patch(kind, obj),
    )


def _revisions(kind: WorkloadKind, obj: Obj) -> tuple[str, str, bool]:
    """(stable, canary, back on the stable revision while pods are on another) per family."""
    status = obj.get("status") or {}
    if kind.family in (Family.CLONESET, Family.STATEFULSET_LIKE):
        current, update = str(status.get("currentRevision") or ""), str(status.get("updateRevision") or "")
        rollback = (
            bool(current)
            and current == update
            and _int(status, "updatedReplicas") != _int(status, "replicas")
        )
        if kind.family is Family.CLONESET:
            return revision_suffix(current), revision_suffix(update), rollback
        return current, update, rollback
    stable = str(_annotations(obj).get(keys.DAEMONSET_STABLE_REVISION_ANNOTATION) or "")
    if kind.family is Family.ADVANCED_DAEMONSET:  # v1beta1 calls it updateRevision, v1alpha1 daemonSetHash
        canary = revision_suffix(str(status.get("updateRevision") or status.get("daemonSetHash") or ""))
    else:
        canary = daemonset_revision(obj)
    return stable, canary, bool(stable) and stable == canary


def _replicas(kind: WorkloadKind, obj: Obj) -> int:
    """Spec replicas (the API server defaults them to 1); DaemonSets: the nodes they should run on."""
    if kind.family in (Family.NATIVE_DAEMONSET, Family.ADVANCED_DAEMONSET):
        return _int(obj.get("status") or {}, "desiredNumberScheduled")
    replicas = _spec(obj).get("replicas")
    return 1 if replicas is None else int(replicas)


def _int(obj: Obj, field: str) -> int:
    return int(obj.get(field) or 0)


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _annotations(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}
