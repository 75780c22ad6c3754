"""The Advanced Deployment controller's decisions (reference §2.7, partition style), as pure functions.

What this module does: for a Deployment handed to the advanced controller (paused, `Recreate`, with
the BatchRelease control-info annotation and the controlled-by label), decide which ReplicaSet to create
or scale so that the new revision gets `partition` pods while maxSurge/maxUnavailable hold, as Kruise's
re-implementation of the Deployment controller (`rolling.go`) does; and the
`rollouts.kruise.io/deployment-extra-status` annotation. When the Deployment is scaled mid-release it
scales every ReplicaSet by its share first (upstream's proportional scaling, which Kruise keeps), so the
new revision keeps its share of pods: 2 of 5 becomes 4 of 10. It also owns the JSON of the
`rollouts.kruise.io/deployment-strategy` annotation (`DeploymentStrategy`), which partition_style writes.

Why the native controller does not fight us: while a Deployment is paused, kube-controller-manager only
(a) adopts the ReplicaSet whose template equals the Deployment's ignoring `pod-template-hash` (ours),
syncing its revision annotations, (b) scales the single active ReplicaSet to spec.replicas when exactly
one has replicas (never true here: the new ReplicaSet starts with ≥1 pod unless maxSurge > 0, Kruise's
`NewRSReplicasLowerBound`) and (c) writes the Deployment status (updatedReplicas, available...) from the
ReplicaSets. So the status stays right without us, and after finalization the resumed RollingUpdate takes
our ReplicaSet as its new ReplicaSet instead of creating another one.

What it must not do: I/O, hashing templates (the caller passes revisions in), or touching a Deployment
that is not under rollout control.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from graylane.api import keys
from graylane.api.common import IntOrString, scaled_int_or_percent
from graylane.api.enums import RollingStyle
from graylane.batchrelease.planner import annotations_of, spec_replicas, status_int
from graylane.planner.polling import safety_poll

__all__ = [
    "CreateReplicaSet",
    "DeploymentStrategy",
    "ScaleReplicaSet",
    "ScalingObserved",
    "ScalingPlan",
    "SetExtraStatus",
    "new_rs_limit",
    "plan",
    "under_control",
]

Obj = Mapping[str, Any]
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations KCM does not copy to ReplicaSets (deployment_util.annotationsToSkip).
_SKIP_COPY = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        keys.DEPLOYMENT_REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)


@dataclasses.dataclass(frozen=True)
class DeploymentStrategy:
    """Kruise's `v1alpha1.DeploymentStrategy`, stored as JSON in the deployment-strategy annotation."""

    rolling_style: str = RollingStyle.PARTITION
    rolling_update: Mapping[str, IntOrString] | None = None
    paused: bool = False
    partition: IntOrString = 0

    @classmethod
    def parse(cls, text: str | None) -> DeploymentStrategy | None:
        """None when absent or not a JSON object (Kruise then leaves the Deployment alone)."""
        try:
            raw = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(raw, dict):
            return None
        return cls(
            rolling_style=str(raw.get("rollingStyle") or ""),
            rolling_update=raw.get("rollingUpdate"),
            paused=bool(raw.get("paused")),
            partition=raw.get("partition") or 0,
        )

    def with_defaults(self) -> DeploymentStrategy:
        """25%/25% when unset; both resolving to 0 ⇒ surge 0, unavailable 1 (else nothing could move).

        Kruise's SetDefaultDeploymentStrategy writes the default maxSurge into maxUnavailable (a typo);
        the intended 25% is used here, which only differs for a Deployment that had no rollingUpdate.
        """
        if self.rolling_style != RollingStyle.PARTITION:
            return self
        ru = dict(self.rolling_update or {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
        if _scaled(ru["maxSurge"], 100, up=True) == 0 and _scaled(ru["maxUnavailable"], 100, up=True) == 0:
            ru = {"maxUnavailable": 1, "maxSurge": 0}
        return dataclasses.replace(self, rolling_update=ru)

    def dump(self) -> str:
        """Go's json.Marshal of the struct: field order kept, `omitempty` fields dropped when empty."""
        out: dict[str, Any] = {}
        if self.rolling_style:
            out["rollingStyle"] = self.rolling_style
        if self.rolling_update is not None:
            ru = self.rolling_update
            out["rollingUpdate"] = {k: ru[k] for k in ("maxUnavailable", "maxSurge") if ru.get(k) is not None}
        if self.paused:
            out["paused"] = True
        out["partition"] = self.partition  # an IntOrString struct: omitempty never drops it
        return json.dumps(out, separators=(",", ":"))


def _scaled(value: IntOrString, total: int, *, up: bool) -> int:
    try:
        return scaled_int_or_percent(value, total, round_up=up)
    except ValueError:
        return 0


def new_rs_limit(partition: IntOrString, replicas: int) -> int:
    """NewRSReplicasLimit: pods the new revision may have; a percentage below 100% keeps one old pod."""
    limit = max(min(_scaled(partition, replicas, up=True), replicas), 0)
    if replicas > 1 and isinstance(partition, str) and partition != "100%":
        limit = min(limit, replicas - 1)
    return limit


def _fenceposts(strategy: DeploymentStrategy, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as ResolveFenceposts: surge rounds up, unavailable down, never both 0."""
    ru = strategy.rolling_update or {}
    surge = _scaled(ru.get("maxSurge") or 0, replicas, up=True)
    unavailable = _scaled(ru.get("maxUnavailable") or 0, replicas, up=False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, min(unavailable, replicas))


def under_control(dep: Obj) -> bool:
    """Kruise's IsUnderRolloutControl plus a readable deployment-strategy annotation (its NewController
    gate): control-info, `Recreate`, paused. The controlled-by label is written and removed with the
    rest, but not required, so a Deployment set up as Kruise documents is driven too (issue 15, item 8).
    """
    spec = dep.get("spec", {})
    return (
        bool(annotations_of(dep).get(keys.BATCH_RELEASE_CONTROL_ANNOTATION))
        and DeploymentStrategy.parse(annotations_of(dep).get(keys.DEPLOYMENT_STRATEGY_ANNOTATION)) is not None
        and spec.get("strategy", {}).get("type") == "Recreate"
        and bool(spec.get("paused"))
    )


# --- plan -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CreateReplicaSet:
    body: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class ScaleReplicaSet:
    """Scale one ReplicaSet, guarded by the version its size was read at (the sizes are relative)."""

    name: str
    replicas: int
    annotations: Mapping[str, str]
    guard: str = ""


@dataclasses.dataclass(frozen=True)
class SetExtraStatus:
    """The extra-status annotation, guarded by the Deployment's version the decision read: written from a
    stale view after the BatchRelease handed the Deployment back, it would stay there for good."""

    value: str
    guard: str = ""


ScalingAction = CreateReplicaSet | ScaleReplicaSet | SetExtraStatus


@dataclasses.dataclass(frozen=True)
class ScalingPlan:
    actions: tuple[ScalingAction, ...] = ()
    requeue_after: float | None = None


@dataclasses.dataclass(frozen=True)
class ScalingObserved:
    """A Deployment, the ReplicaSets it controls, and graylane revisions of their pod templates."""

    deployment: Obj
    replica_sets: tuple[Obj, ...]
    revision: str  # of the Deployment's template; also the new ReplicaSet's pod-template-hash
    rs_revisions: Mapping[str, str]  # ReplicaSet name -> revision of its template


@dataclasses.dataclass
class _Rs:
    """The numbers the scaling rules read, with `replicas` updated as the plan scales it."""

    name: str
    replicas: int
    available: int
    created: str
    revision: int
    version: str = ""
    desired_note: str | None = None  # the desired-replicas annotation, as written
    max_note: str | None = None  # the max-replicas annotation, as written


def plan(obs: ScalingObserved) -> ScalingPlan:
    """One pass of the advanced controller: at most one scaling stage, then the extra status."""
    dep = obs.deployment
    strategy = DeploymentStrategy.parse(annotations_of(dep).get(keys.DEPLOYMENT_STRATEGY_ANNOTATION))
    if not under_control(dep) or strategy is None or strategy.rolling_style == RollingStyle.CANARY:
        return ScalingPlan()
    strategy = strategy.with_defaults()
    new_rs, olds = _split(obs)
    deleting = bool(dep.get("metadata", {}).get("deletionTimestamp"))
    scaling = () if deleting else _scaling(obs, strategy, new_rs, olds)
    extra = _extra_status(dep, strategy, new_rs)
    done = not scaling and _satisfied(dep, strategy)
    # Scaling waits on pods becoming available, which the ReplicaSet status events report (both are
    # watched); the long safety poll only bounds a lost wake-up, instead of Kruise's 2 s polling.
    uid = str(dep.get("metadata", {}).get("uid", ""))
    return ScalingPlan(actions=(*scaling, *extra), requeue_after=None if done else safety_poll(uid))


def _scaling(
    obs: ScalingObserved, strategy: DeploymentStrategy, new_rs: Obj | None, olds: list[Obj]
) -> tuple[ScalingAction, ...]:
    """Kruise's syncDeployment: a paused strategy or a scaling event only scales, proportionally;
    otherwise the new ReplicaSet is created or the release rolls on towards the partition."""
    dep = obs.deployment
    if strategy.paused or _scaling_event(dep, obs.replica_sets):
        return _proportional(dep, strategy, new_rs, olds)
    return _create(obs, strategy, olds) if new_rs is None else _rolling(dep, strategy, new_rs, olds)


def _split(obs: ScalingObserved) -> tuple[Obj | None, list[Obj]]:
    """(new ReplicaSet, old ones); among several matching the template the oldest wins, as in KCM."""
    ordered = sorted(obs.replica_sets, key=_created)
    new = next((rs for rs in ordered if obs.rs_revisions.get(_name(rs)) == obs.revision), None)
    return new, [rs for rs in ordered if rs is not new]


def _create(obs: ScalingObserved, strategy: DeploymentStrategy, olds: list[Obj]) -> tuple[ScalingAction, ...]:
    dep = obs.deployment
    replicas = spec_replicas(dep)
    old_rs = [_rs(rs) for rs in olds]
    new = _Rs(f"{_name(dep)}-{obs.revision}", 0, 0, "", 0)
    count = _new_rs_replicas(replicas, strategy, new, old_rs)
    # Starting at 0 with surge 0 would make the old ReplicaSet the only active one, which the paused
    # native controller scales back to spec.replicas: start with one pod instead (Kruise does the same).
    lower = 0 if _fenceposts(strategy, replicas)[0] > 0 else min(1, replicas)
    body = _new_rs_body(obs, strategy, max(count, lower), max((r.revision for r in old_rs), default=0) + 1)
    return (CreateReplicaSet(body),)


def _new_rs_body(obs: ScalingObserved, strategy: DeploymentStrategy, count: int, revision: int) -> Obj:
    dep, spec = obs.deployment, obs.deployment.get("spec", {})
    template = copy.deepcopy(dict(spec.get("template", {})))
    labels = {
        **(template.get("metadata", {}).get("labels") or {}),
        keys.POD_TEMPLATE_HASH_LABEL: obs.revision,
    }
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(dict(spec.get("selector", {})))
    selector.setdefault("matchLabels", {})[keys.POD_TEMPLATE_HASH_LABEL] = obs.revision
    meta = dep.get("metadata", {})
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.get("name"), "uid": meta.get("uid")}
    annotations = {k: v for k, v in annotations_of(dep).items() if k not in _SKIP_COPY}
    annotations |= {keys.DEPLOYMENT_REVISION_ANNOTATION: str(revision), **_replica_annotations(dep, strategy)}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta.get('name')}-{obs.revision}",
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": count,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }


def _replica_annotations(dep: Obj, strategy: DeploymentStrategy) -> dict[str, str]:
    replicas = spec_replicas(dep)
    return {DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + _fenceposts(strategy, replicas)[0])}


def _rolling(
    dep: Obj, strategy: DeploymentStrategy, new_obj: Obj, olds: list[Obj]
) -> tuple[ScalingAction, ...]:
    """rolloutRolling: scale the new ReplicaSet up first; only when it cannot grow, scale old ones down."""
    replicas = spec_replicas(dep)
    new, old = _rs(new_obj), [_rs(rs) for rs in olds]
    if new.replicas != replicas:
        target = replicas if new.replicas > replicas else _new_rs_replicas(replicas, strategy, new, old)
        if target != new.replicas:
            return (_scale(dep, strategy, new, target),)
    before = {rs.name: rs.replicas for rs in old}
    _reconcile_old(replicas, strategy, new, [rs for rs in old if rs.replicas > 0])
    return tuple(_scale(dep, strategy, rs, rs.replicas) for rs in old if rs.replicas != before[rs.name])


def _new_rs_replicas(replicas: int, strategy: DeploymentStrategy, new: _Rs, old: Sequence[_Rs]) -> int:
    """NewRSNewReplicas: grow within maxSurge, never past the partition limit."""
    current = new.replicas + sum(rs.replicas for rs in old)
    if current <= new.replicas:
        return replicas  # the only active ReplicaSet simply follows spec.replicas
    limit = new_rs_limit(strategy.partition, replicas)
    max_total = replicas + _fenceposts(strategy, replicas)[0]
    if new.replicas >= limit or current >= max_total:
        return new.replicas
    grow = min(max_total - current, replicas - new.replicas)
    return min(new.replicas + grow, limit)


def _scale_down_limit(replicas: int, strategy: DeploymentStrategy, new: _Rs, old: Sequence[_Rs]) -> int:
    """ScaleDownLimitForOld: old pods beyond what the partition leaves them (negative: too few)."""
    new_desired = max(new_rs_limit(strategy.partition, replicas), new.replicas)
    return sum(rs.replicas for rs in old) - (replicas - new_desired)


def _reconcile_old(replicas: int, strategy: DeploymentStrategy, new: _Rs, old: list[_Rs]) -> None:
    """reconcileOldReplicaSets, mutating the `_Rs` copies to their target sizes."""
    if not old:
        return
    limit = _scale_down_limit(replicas, strategy, new, old)
    if limit <= 0:
        biggest = sorted(old, key=lambda rs: (-rs.replicas, rs.created, rs.name))[0]
        biggest.replicas += -limit  # the partition went down: give old pods back
        return
    min_available = replicas - _fenceposts(strategy, replicas)[1]
    all_pods = new.replicas + sum(rs.replicas for rs in old)
    budget = min(all_pods - min_available - (new.replicas - new.available), limit)
    if budget <= 0:
        return
    _cleanup_unhealthy(old, budget)
    available = new.available + sum(rs.available for rs in old)
    limit = _scale_down_limit(replicas, strategy, new, old)
    remaining = min(available - min_available, limit)
    for rs in sorted(old, key=lambda rs: (-rs.revision, rs.created, rs.name)):
        take = min(rs.replicas, max(remaining, 0))
        rs.replicas -= take
        remaining -= take


def _cleanup_unhealthy(old: list[_Rs], budget: int) -> int:
    """Unavailable old pods go first: removing them cannot lower availability (kubernetes#16737)."""
    cleaned = 0
    for rs in sorted(old, key=lambda rs: (rs.created, rs.name)):
        if cleaned >= budget:
            break
        take = min(budget - cleaned, rs.replicas - rs.available)
        if take > 0:
            rs.replicas -= take
            cleaned += take
    return cleaned


# --- scaling events (proportional scaling) ----------------------------------------------------------


def _scaling_event(dep: Obj, replica_sets: Sequence[Obj]) -> bool:
    """isScalingEvent: an active ReplicaSet was sized for another spec.replicas than the Deployment's.

    Every scale writes the desired-replicas annotation, so after the Deployment is scaled (by hand or by
    an HPA) mid-release its ReplicaSets still name the old size until the scaling below has run.
    """
    replicas = spec_replicas(dep)
    for obj in replica_sets:
        rs = _rs(obj)
        desired = _annotation_int(rs.desired_note)
        if rs.replicas > 0 and desired is not None and desired != replicas:
            return True
    return False


def _proportional(
    dep: Obj, strategy: DeploymentStrategy, new_obj: Obj | None, olds: list[Obj]
) -> tuple[ScalingAction, ...]:
    """The Deployment controller's `scale`, as Kruise's advanced controller runs it on a scaling event.

    Every ReplicaSet with pods keeps its share of the Deployment, so a release at 2 of 5 new pods is at
    4 of 10 after a scale to 10, and 4 of 10 is 2 of 5 after a scale to 5 (upstream's proportional
    scaling, which Kruise applies although the Deployment's own strategy reads `Recreate`). The partition
    is not consulted here: the next, ordinary pass moves the new ReplicaSet towards it as usual.
    """
    replicas = spec_replicas(dep)
    new = _rs(new_obj) if new_obj is not None else None
    old = sorted((_rs(rs) for rs in olds), key=lambda rs: (rs.created, rs.name))
    everyone = ([new] if new is not None else []) + old
    before = {rs.name: rs.replicas for rs in everyone}
    active = [rs for rs in everyone if rs.replicas > 0]
    if len(active) <= 1:
        only = active[0] if active else (new or (old[-1] if old else None))
        if only is None or only.replicas == replicas:
            return ()
        return (_scale(dep, strategy, only, replicas),)
    if new is not None and _saturated(new, replicas):
        return tuple(_scale(dep, strategy, rs, 0) for rs in old if rs.replicas > 0)
    to_add = max(replicas, 0) - sum(rs.replicas for rs in active)
    if to_add < 0:
        to_add += _cleanup_unhealthy(old, -to_add)
        active = [rs for rs in everyone if rs.replicas > 0]
    ordered = _by_size(active, growing=to_add > 0)
    _share(dep, strategy, ordered, to_add)
    wanted = _replica_annotations(dep, strategy)
    touched = {rs.name for rs in ordered if (rs.desired_note, rs.max_note) != _notes(wanted)}
    return tuple(
        _scale(dep, strategy, rs, rs.replicas)
        for rs in everyone
        if rs.replicas != before[rs.name] or rs.name in touched
    )


def _saturated(new: _Rs, replicas: int) -> bool:
    """IsSaturated: the new ReplicaSet holds, was sized for, and has available every pod."""
    return new.replicas == replicas == _annotation_int(new.desired_note) and new.available == replicas


def _by_size(active: list[_Rs], *, growing: bool) -> list[_Rs]:
    """Largest first; among equals the newest first when growing, the oldest first when shrinking."""
    by_age = sorted(active, key=lambda rs: (rs.created, rs.name), reverse=growing)
    return sorted(by_age, key=lambda rs: -rs.replicas)  # stable: ties keep the age order


def _share(dep: Obj, strategy: DeploymentStrategy, ordered: list[_Rs], to_add: int) -> None:
    """Hand `to_add` pods (negative: take them) to the ReplicaSets by their share; leftovers to the first."""
    if to_add == 0 or not ordered:
        return
    replicas = spec_replicas(dep)
    surge = _fenceposts(strategy, replicas)[0]
    added = 0
    sizes: list[int] = []
    for rs in ordered:
        allowed = to_add - added
        step = 0
        if rs.replicas > 0 and allowed != 0:
            share = _share_of(rs, replicas, surge, status_int(dep, "replicas"))
            share = allowed if share is None else share
            step = min(share, allowed) if to_add > 0 else max(share, allowed)
        sizes.append(rs.replicas + step)
        added += step
    sizes[0] = max(sizes[0] + to_add - added, 0)
    for rs, size in zip(ordered, sizes, strict=True):
        rs.replicas = size


def _share_of(rs: _Rs, replicas: int, surge: int, status_replicas: int) -> int | None:
    """getReplicaSetFraction: the pods this ReplicaSet gains (or loses) to keep its share.

    Its share is its size against the max-replicas it was last sized for (spec.replicas + maxSurge
    then); without that annotation, the Deployment's current pod count. Rounded half away from zero, as
    Go's math.Round. None when that basis is 0 (Go divides by zero there): take what is allowed.
    """
    if replicas == 0:
        return -rs.replicas
    annotated = _annotation_int(rs.max_note)
    basis = status_replicas if annotated is None else annotated
    if basis <= 0:
        return None
    size = rs.replicas * (replicas + surge) / basis
    whole = math.floor(size)
    return whole + (1 if size - whole >= 0.5 else 0) - rs.replicas


def _annotation_int(text: str | None) -> int | None:
    """strconv.Atoi of an annotation: None when absent or not a plain, optionally signed, integer."""
    if text is None or not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    return int(text)


def _notes(annotations: Mapping[str, str]) -> tuple[str | None, str | None]:
    return annotations.get(DESIRED_REPLICAS), annotations.get(MAX_REPLICAS)


def _scale(dep: Obj, strategy: DeploymentStrategy, rs: _Rs, replicas: int) -> ScaleReplicaSet:
    return ScaleReplicaSet(rs.name, replicas, _replica_annotations(dep, strategy), rs.version)


def _extra_status(dep: Obj, strategy: DeploymentStrategy, new_rs: Obj | None) -> tuple[ScalingAction, ...]:
    """{"updatedReadyReplicas":n,"expectedUpdatedReplicas":m} with Go's omitempty (zeros dropped)."""
    ready = status_int(new_rs, "readyReplicas") if new_rs is not None else 0
    expected = new_rs_limit(strategy.partition, spec_replicas(dep))
    fields = {"updatedReadyReplicas": ready, "expectedUpdatedReplicas": expected}
    value = json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))
    if annotations_of(dep).get(keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION) == value:
        return ()
    return (SetExtraStatus(value, str(dep.get("metadata", {}).get("resourceVersion") or "")),)


def _satisfied(dep: Obj, strategy: DeploymentStrategy) -> bool:
    """DeploymentRolloutSatisfied: observed, all pods exist, and the partition's new pods exist."""
    status = dep.get("status", {})
    if int(status.get("observedGeneration") or 0) < int(dep.get("metadata", {}).get("generation") or 0):
        return False
    replicas = spec_replicas(dep)
    if status_int(dep, "replicas") != replicas:
        return False
    return status_int(dep, "updatedReplicas") >= new_rs_limit(strategy.partition, replicas)


def _rs(obj: Obj) -> _Rs:
    notes = annotations_of(obj)
    revision = notes.get(keys.DEPLOYMENT_REVISION_ANNOTATION, "0")
    return _Rs(
        name=_name(obj),
        replicas=int(obj.get("spec", {}).get("replicas") or 0),
        available=status_int(obj, "availableReplicas"),
        created=str(obj.get("metadata", {}).get("creationTimestamp", "")),
        revision=int(revision) if revision.isdigit() else 0,
        version=str(obj.get("metadata", {}).get("resourceVersion") or ""),
        desired_note=notes.get(DESIRED_REPLICAS),
        max_note=notes.get(MAX_REPLICAS),
    )


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _created(obj: Obj) -> tuple[str, str]:
    return str(obj.get("metadata", {}).get("creationTimestamp", "")), _name(obj)
