"""Event filters: which updates of a watched object can change a controller's decision.

A controller that reads only an object's spec and metadata (and whether its controller has observed
its generation) gains nothing from the object's other status updates, and those are most of the
events: every pod of a Deployment that becomes ready moves its ReplicaSet's and its Deployment's
status. At 100 concurrent releases the Rollout controller reconciled each Rollout ~50 times in step
2, mostly on such updates (BENCHMARKS.md, issue 14). A filter is a pure `(old, new) -> bool` that
`Manager.watch(..., changed=...)` asks before enqueueing a MODIFIED event; additions and deletions
always enqueue, and so does anything the filter is not sure about.

What it must not do: read anything but the two objects, or know what any resource means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Changed", "beyond_status", "spec_or_metadata"]

Changed = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
# What a spec-and-metadata reader sees change: generation counts every spec change (Deployments,
# ReplicaSets and custom resources with a status subresource bump it); labels, annotations, owners,
# finalizers and deletion are metadata that changes without it.
_METADATA = ("generation", "labels", "annotations", "ownerReferences", "finalizers", "deletionTimestamp")


def spec_or_metadata(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True unless only the status changed, `observedGeneration` included: for a reader of an object's
    spec and metadata alone (a ReplicaSet's owner, labels, template and replicas)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if "generation" not in new_meta:
        return True
    return any(old_meta.get(key) != new_meta.get(key) for key in _METADATA)


def beyond_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True unless only the status changed (its `observedGeneration` counts as a change).

    An object without `metadata.generation` (a ConfigMap, a Service) may change its data without it, so
    every update of one counts.
    """
    if spec_or_metadata(old, new):
        return True
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    return bool(old_status.get("observedGeneration") != new_status.get("observedGeneration"))
