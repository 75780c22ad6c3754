"""Turning a workload object (and its ReplicaSets) into the planner's `Workload` snapshot.

Revisions: Kubernetes' own pod-template-hash (FNV over a Go spew dump) cannot be reproduced in Python,
so the *canary revision* is graylane's own stable hash of the pod template, while the stable revision
and pod template hashes are read from the ReplicaSets the Deployment controller created. Both are
internally consistent, which is all Kruise's clients compare.
This module must not do I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.api import keys
from graylane.api.hashing import safe_encode
from graylane.planner.observed import Workload

__all__ = ["canary_pod_template_hash", "deployment_workload", "owned_by", "template_revision"]

POD_TEMPLATE_HASH = "pod-template-hash"


def template_revision(template: Mapping[str, Any]) -> str:
    """A short, stable revision of a pod template, ignoring the pod-template-hash label."""
    clean = copy.deepcopy(dict(template))
    labels = clean.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return safe_encode(digest)[:10]


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def _rs_hash(rs: Mapping[str, Any]) -> str:
    return str(rs.get("metadata", {}).get("labels", {}).get(POD_TEMPLATE_HASH, ""))


def _active(replica_sets: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """ReplicaSets with replicas, oldest first (Kruise's stable RS is the oldest active one)."""
    active = [rs for rs in replica_sets if int(rs.get("spec", {}).get("replicas") or 0) > 0]
    return sorted(active, key=lambda rs: str(rs["metadata"].get("creationTimestamp", "")))


def _new_replica_set(
    dep: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Deployment's ReplicaSet whose template is the Deployment's current one, if it exists."""
    owned = [rs for rs in replica_sets if owned_by(rs, dep["metadata"].get("uid", ""))]
    revision = template_revision(dep.get("spec", {}).get("template", {}))
    return next((rs for rs in owned if template_revision(rs["spec"].get("template", {})) == revision), None)


def canary_pod_template_hash(
    canary_deployments: Iterable[Mapping[str, Any]], replica_sets: Iterable[Mapping[str, Any]]
) -> str:
    """Canary style: the pod-template-hash of the newest live canary Deployment's current ReplicaSet.

    The stable Deployment is paused, so it has no new ReplicaSet; the canary pods (and the canary
    Service selector, reference §3) are told apart by this hash instead.
    """
    live = [d for d in canary_deployments if not d["metadata"].get("deletionTimestamp")]
    newest = max(live, key=lambda d: str(d["metadata"].get("creationTimestamp", "")), default=None)
    new_rs = _new_replica_set(newest, list(replica_sets)) if newest is not None else None
    return _rs_hash(new_rs) if new_rs is not None else ""


def deployment_workload(
    dep: Mapping[str, Any],
    replica_sets: Iterable[Mapping[str, Any]],
    canary_deployments: Iterable[Mapping[str, Any]] = (),
) -> Workload:
    meta, spec, status = dep["metadata"], dep.get("spec", {}), dep.get("status", {})
    replica_sets = list(replica_sets)
    owned = [rs for rs in replica_sets if owned_by(rs, meta.get("uid", ""))]
    revision = template_revision(spec.get("template", {}))
    new_rs = _new_replica_set(dep, replica_sets)
    active = _active(owned)
    annotations = dict(meta.get("annotations") or {})
    labels = dict(meta.get("labels") or {})
    stable_revision = labels.get(keys.STABLE_REVISION_LABEL, "") or _oldest_other(active, new_rs)
    return Workload(
        api_version="apps/v1",
        kind="Deployment",
        name=meta["name"],
        generation=int(meta.get("generation", 0)),
        status_consistent=int(status.get("observedGeneration", 0)) == int(meta.get("generation", 0)),
        replicas=int(spec.get("replicas", 1)),
        labels=labels,
        annotations=annotations,
        in_rollout_progressing=keys.IN_PROGRESSING_ANNOTATION in annotations,
        paused=bool(spec.get("paused")),
        resource_version=str(meta.get("resourceVersion", "")),
        stable_revision=stable_revision,
        canary_revision=revision,
        # Canary style (traffic routing): the canary Deployment's ReplicaSet carries the new pods.
        pod_template_hash=_rs_hash(new_rs)
        if new_rs
        else canary_pod_template_hash(canary_deployments, replica_sets),
        # Back on the stable template: the ReplicaSet matching the template is the stable one.
        is_in_rollback=bool(stable_revision) and new_rs is not None and _rs_hash(new_rs) == stable_revision,
    )


def _oldest_other(active: list[Mapping[str, Any]], new_rs: Mapping[str, Any] | None) -> str:
    stable = next((rs for rs in active if rs is not new_rs), None)
    return _rs_hash(stable) if stable is not None else ""
