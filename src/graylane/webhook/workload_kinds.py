"""The workload webhook for every kind but Deployment: hold the native rollout when a new revision appears.

On an UPDATE of a workload a Rollout manages (labelled `rollouts.kruise.io/workload-type`, its Rollout
not deleting, not Disabled, with a canary strategy), an *effective* change (a new rollout-id annotation,
or without one a new pod template ignoring pod-template-hash; webhook/workload.py) enters the release:
the in-progressing annotation `{"rolloutName":"<rollout>"}` and, per kind (reference §2.2):

- CloneSet: `updateStrategy.partition: "100%"` (only when every pod is on one revision if the Rollout
  routes traffic: the stable Service must select a single version);
- StatefulSet and Advanced StatefulSet: `rollingUpdate.partition: 32767`, when it has replicas and
  rolls (RollingUpdate);
- Advanced DaemonSet: `rollingUpdate.partition: 32767`;
- native DaemonSet (Kruise master): its update strategy type saved in
  `rollouts.kruise.io/daemonset-original-update-strategy`, then `OnDelete`.

The DaemonSets report no current revision, so the webhook also records the revision the pods are on
before the change (`rollouts.kruise.io/daemonset-stable-revision`, kept across a continuous release) for
the controller to tell a rollback from a new release.

No Rollout, a Disabled or deleting one, or no effective change: the workload is admitted untouched.
A blue-green Rollout holds a CloneSet as a canary one does (Kruise's handleCloneSet: partition "100%",
then the blue-green control surges); other kinds cannot be released blue-green. `mutate_kind` is
pure; `KindsMutator` is the thin shell that lists the Rollouts.
This module must not write to the API server.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graylane.api import keys
from graylane.api.workloads import Family, WorkloadKind
from graylane.batchrelease.kinds_style import HOLD_ALL
from graylane.observe.workload_objects import daemonset_revision, revision_suffix
from graylane.webhook import admission as adm
from graylane.webhook.server import MutationRejected, RolloutLister
from graylane.webhook.workload import (
    RolloutReader,
    confirmed_rollouts,
    is_effective_revision_change,
    matching_rollout,
    revived_rollouts,
)

__all__ = ["KindsMutator", "mutate_kind"]

Obj = dict[str, Any]
log = logging.getLogger(__name__)
ROLLING_UPDATE: Final = "RollingUpdate"


def mutate_kind(
    kind: WorkloadKind, new: Mapping[str, Any], old: Mapping[str, Any], rollouts: Sequence[Mapping[str, Any]]
) -> Obj | None:
    """The workload as it must be stored, or None to admit `new` unchanged."""
    if not _selected(new) or not is_effective_revision_change(old, new):
        return None
    rollout = matching_rollout(new, rollouts)
    if rollout is None or _active(rollout) is None:
        return None  # no release to hold it for
    if _strategy(rollout).get("canary") is None and kind.family is not Family.CLONESET:
        return None  # blue-green exists for Deployments and CloneSets only (the Rollout is refused)
    if not _may_enter(kind, new, rollout):
        return None
    out = copy.deepcopy(dict(new))
    meta = out.setdefault("metadata", {})
    if not meta.get("uid") and (old.get("metadata") or {}).get("uid"):
        meta["uid"] = old["metadata"]["uid"]  # Karmada/OCM send updates without it
    annotations = meta.setdefault("annotations", {})
    _hold(kind, out, old, annotations)
    state = json.dumps(
        {"rolloutName": (rollout.get("metadata") or {}).get("name", "")}, separators=(",", ":")
    )
    annotations[keys.IN_PROGRESSING_ANNOTATION] = state
    return out


def _may_enter(kind: WorkloadKind, new: Mapping[str, Any], rollout: Mapping[str, Any]) -> bool:
    spec, status = new.get("spec") or {}, new.get("status") or {}
    if kind.family is Family.CLONESET:
        if spec.get("replicas") == 0:
            return False
        routed = bool((_active(rollout) or {}).get("trafficRoutings"))
        return not routed or int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
    if kind.family is Family.STATEFULSET_LIKE:
        rolls = ((spec.get("updateStrategy") or {}).get("type") or ROLLING_UPDATE) == ROLLING_UPDATE
        return spec.get("replicas") != 0 and rolls
    return True


def _hold(kind: WorkloadKind, out: Obj, old: Mapping[str, Any], annotations: dict[str, Any]) -> None:
    strategy = out.setdefault("spec", {}).setdefault("updateStrategy", {})
    if kind.family is Family.CLONESET:
        strategy["partition"] = "100%"
        return
    if kind.family is Family.NATIVE_DAEMONSET:
        current = strategy.get("type") or ROLLING_UPDATE
        if current != "OnDelete" or keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION not in annotations:
            annotations.setdefault(keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION, current)
        strategy["type"] = "OnDelete"
        stable = daemonset_revision(old)
        if stable:
            annotations.setdefault(keys.DAEMONSET_STABLE_REVISION_ANNOTATION, stable)
        return
    strategy.setdefault("rollingUpdate", {})["partition"] = HOLD_ALL
    if kind.family is Family.ADVANCED_DAEMONSET:
        status = old.get("status") or {}
        stable = revision_suffix(str(status.get("updateRevision") or status.get("daemonSetHash") or ""))
        if stable:
            annotations.setdefault(keys.DAEMONSET_STABLE_REVISION_ANNOTATION, stable)


def _selected(new: Mapping[str, Any]) -> bool:
    labels = (new.get("metadata") or {}).get("labels") or {}
    control_plane = labels.get(keys.CONTROL_PLANE_LABEL) == keys.CONTROL_PLANE_MANAGER_VALUE
    return keys.WORKLOAD_TYPE_LABEL in labels and not control_plane


def _strategy(rollout: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((rollout.get("spec") or {}).get("strategy")) or {}


def _active(rollout: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The blue-green strategy if set, else the canary one (Kruise's: blue-green wins)."""
    strategy = _strategy(rollout)
    found = strategy.get("blueGreen") if strategy.get("blueGreen") is not None else strategy.get("canary")
    return found if isinstance(found, Mapping) else None


class KindsMutator:
    """The mutator behind the CloneSet, DaemonSet and StatefulSet-like webhook paths.

    A new hold is confirmed against the Rollout read from the API (`fresh`), as the Deployment webhook's
    is (webhook/workload.py): one GET per release started; holds in place cost nothing. A release the
    cache would let through only because its Rollout shows Disabled or deleted there is decided on the
    Rollout read from the API (`revived_rollouts`), also one GET."""

    def __init__(
        self,
        rollouts: RolloutLister,
        kinds: Mapping[tuple[str, str], WorkloadKind],
        fresh: RolloutReader | None = None,
    ) -> None:
        self._rollouts = rollouts
        self._kinds = kinds  # (group, kind) of the request -> the workload kind
        self._fresh = fresh

    async def mutate(self, request: adm.AdmissionRequest) -> Obj | None:
        kind = self._kinds.get((request.group, request.kind))
        new, old = request.object, request.old_object
        if kind is None or new is None or old is None:
            return None
        namespace = request.namespace or str((new.get("metadata") or {}).get("namespace") or "")
        try:
            rollouts = await self._rollouts.list_rollouts(namespace)
        except Exception as err:  # without the Rollouts we cannot tell; Kruise answers 400 too
            raise MutationRejected(f"listing Rollouts in namespace {namespace!r}: {err}") from err
        # matching_rollout compares the object's own apiVersion and kind with the workloadRef.
        typed = {**new, "apiVersion": new.get("apiVersion") or kind.api_version, "kind": kind.kind}
        cached = matching_rollout(typed, rollouts) is not None
        if not cached:  # one the cache shows Disabled or deleted may have been re-enabled or created again
            rollouts = await revived_rollouts(self._fresh, namespace, typed, old, rollouts)
        changed = mutate_kind(kind, typed, old, rollouts)
        if changed is not None and cached and keys.IN_PROGRESSING_ANNOTATION not in _annotations(old):
            rollouts = await confirmed_rollouts(self._fresh, namespace, typed, rollouts)
            changed = mutate_kind(kind, typed, old, rollouts)
        if changed is None:
            return None
        log.info("%s %s/%s held for its Rollout", kind.kind, namespace, request.name)
        for key in ("apiVersion", "kind"):  # the patch must not touch what the request did not carry
            if key in new:
                changed[key] = new[key]
            else:
                changed.pop(key, None)
        return changed


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}
