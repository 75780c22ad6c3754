"""Turning a workload object (and its ReplicaSets) into the planner's `Workload` snapshot.

Revisions: the *canary revision* is Kruise's ``util.ComputeHash(&template, nil)``, the Deployment
controller's own pod-template-hash (api/podtemplatehash.py), so it equals the new ReplicaSet's
``pod-template-hash`` label; the stable revision and pod template hashes are read from the ReplicaSets.
This module must not do I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.api import keys
from graylane.api.hashing import safe_encode
from graylane.api.podtemplatehash import UnsupportedTemplate, pod_template_hash
from graylane.planner.observed import Workload

__all__ = [
    "POD_TEMPLATE_HASH",
    "RevisionCache",
    "canary_pod_template_hash",
    "deployment_workload",
    "owned_by",
    "template_revision",
]

POD_TEMPLATE_HASH = "pod-template-hash"


def template_revision(template: Mapping[str, Any]) -> str:
    """The pod-template-hash of a pod template, as the Deployment controller and Kruise compute it.

    A ReplicaSet's template already carries it in its ``pod-template-hash`` label (the Deployment
    controller, and graylane's advanced Deployment controller, write this same hash there), so it is read
    back instead of recomputed: only the Deployment's own template is hashed on each pass.
    """
    labels = (template.get("metadata") or {}).get("labels") or {}
    if labels.get(POD_TEMPLATE_HASH):
        return str(labels[POD_TEMPLATE_HASH])
    try:
        return pod_template_hash(template)
    except UnsupportedTemplate:
        return _fallback_revision(template)


class RevisionCache:
    """A workload's template revision, computed once per (uid, generation) of the workload.

    Hashing a pod template walks it field by field (api/podtemplatehash.py); the Rollout and the
    BatchRelease controllers asked for it on every pass, though only a spec change, which bumps the
    generation, can change it. Bounded: the least recently used entries go first.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, int], str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def of(self, workload: Mapping[str, Any]) -> str:
        meta = workload.get("metadata") or {}
        uid, generation = str(meta.get("uid") or ""), int(meta.get("generation") or 0)
        template = (workload.get("spec") or {}).get("template") or {}
        if not uid or not generation:  # not a stored object: nothing identifies its version
            return template_revision(template)
        key = (uid, generation)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = template_revision(template)
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        self._known.move_to_end(key)
        return found


def _fallback_revision(template: Mapping[str, Any]) -> str:
    """For the rare templates the Go printer is not reproduced for (docs/decisions.md): still stable."""
    clean = copy.deepcopy(dict(template))
    labels = clean.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return safe_encode(digest)[:10]


def _same_template(rs_template: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    """Kruise's EqualIgnoreHash: equal once the ReplicaSet's pod-template-hash label is dropped."""
    meta = dict(rs_template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != POD_TEMPLATE_HASH}
    meta["labels"] = labels
    other = dict(template.get("metadata") or {})
    other["labels"] = dict(other.get("labels") or {})
    return rs_template.get("spec") == template.get("spec") and meta == other


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
    dep: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]], revision: str = ""
) -> Mapping[str, Any] | None:
    """The Deployment's ReplicaSet whose template is the Deployment's current one, if it exists."""
    owned = [rs for rs in replica_sets if owned_by(rs, dep["metadata"].get("uid", ""))]
    template = dep.get("spec", {}).get("template", {})
    revision = revision or template_revision(template)
    by_hash = next((rs for rs in owned if _rs_hash(rs) == revision), None)
    # A hash collision makes the Deployment controller salt the name with status.collisionCount.
    return by_hash or next(
        (rs for rs in owned if _same_template(rs["spec"].get("template", {}), template)), None
    )


def canary_pod_template_hash(
    canary_deployments: Iterable[Mapping[str, Any]],
    replica_sets: Iterable[Mapping[str, Any]],
    revisions: RevisionCache | None = None,
) -> str:
    """Canary style: the pod-template-hash of the newest live canary Deployment's current ReplicaSet.

    The stable Deployment is paused, so it has no new ReplicaSet; the canary pods (and the canary
    Service selector, reference §3) are told apart by this hash instead.
    """
    live = [d for d in canary_deployments if not d["metadata"].get("deletionTimestamp")]
    newest = max(live, key=lambda d: str(d["metadata"].get("creationTimestamp", "")), default=None)
    if newest is None:
        return ""
    revision = revisions.of(newest) if revisions is not None else ""
    new_rs = _new_replica_set(newest, list(replica_sets), revision)
    return _rs_hash(new_rs) if new_rs is not None else ""


def deployment_workload(
    dep: Mapping[str, Any],
    replica_sets: Iterable[Mapping[str, Any]],
    canary_deployments: Iterable[Mapping[str, Any]] = (),
    revisions: RevisionCache | None = None,
) -> Workload:
    meta, spec, status = dep["metadata"], dep.get("spec", {}), dep.get("status", {})
    replica_sets = list(replica_sets)
    owned = [rs for rs in replica_sets if owned_by(rs, meta.get("uid", ""))]
    revision = revisions.of(dep) if revisions is not None else template_revision(spec.get("template", {}))
    new_rs = _new_replica_set(dep, replica_sets, revision)
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
        else canary_pod_template_hash(canary_deployments, replica_sets, revisions),
        # Back on the stable template: the ReplicaSet matching the template is the stable one.
        is_in_rollback=bool(stable_revision) and new_rs is not None and _rs_hash(new_rs) == stable_revision,
        oldest_active_revision=_rs_hash(active[0]) if active else "",
        template_labels=dict((spec.get("template", {}).get("metadata") or {}).get("labels") or {}),
    )


def _oldest_other(active: list[Mapping[str, Any]], new_rs: Mapping[str, Any] | None) -> str:
    stable = next((rs for rs in active if rs is not new_rs), None)
    return _rs_hash(stable) if stable is not None else ""
