"""The Deployment mutating webhook: hold the native rollout when a new revision appears (reference §2.2).

Kruise Rollout is a bypass design: only this webhook tells the controller that a user released a new
version. On an UPDATE of a Deployment that a Rollout manages it pauses the Deployment, records the stable
ReplicaSet's pod-template-hash in the stable-revision label and adds the in-progressing annotation
`{"rolloutName":"<rollout>"}`; while that annotation is there every update is kept held.

`mutate_deployment` is the pure decision on plain dicts; `DeploymentMutator` is the thin I/O shell behind
`/mutate-apps-v1-deployment` that lists Rollouts and ReplicaSets through two small lister protocols. This
module must not write to the API server, and the decision must not do I/O or log.

Kept from upstream on purpose: a label another operator injects into the pod template is a new revision
(openkruise/rollouts#267; the Deployment controller would roll it out too, so admitting it unheld would
release it past the Rollout; users opt out with the rollout-id annotation), and the effectiveness test
reads the rollout-id *annotation* while the controller reads the label (§2.9).
Avoided: PR #278/#280 (the Rollout is looked up first, so a leftover in-progressing annotation without a
Rollout never pauses anything), and Kruise's `SetDefaultDeploymentStrategy` typo that stores the default
maxSurge into maxUnavailable (the batchrelease `DeploymentStrategy` codec, shared here, fixes it).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from graylane.api import keys
from graylane.api.enums import RollingStyle
from graylane.batchrelease.advanced_deployment_planner import DeploymentStrategy
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.observe.workloads import owned_by
from graylane.webhook import admission as adm
from graylane.webhook.server import KubeRolloutLister, MutationRejected, RolloutLister

__all__ = [
    "DeploymentMutator",
    "KubeReplicaSetLister",
    "ReplicaSetLister",
    "RolloutReader",
    "active_replica_sets",
    "confirmed_rollouts",
    "equal_ignore_hash",
    "is_effective_revision_change",
    "matching_rollout",
    "mutate_deployment",
    "revived_rollouts",
    "targeting_rollouts",
]

Obj = dict[str, Any]
log = logging.getLogger(__name__)

RECREATE: Final = "Recreate"
ROLLING_UPDATE: Final = "RollingUpdate"
PHASE_DISABLED: Final = "Disabled"
_GO_INT = re.compile(r"[+-]?[0-9]+")


# -- the decision (pure) ---------------------------------------------------------------------------------


def mutate_deployment(
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    rollouts: Sequence[Mapping[str, Any]],
    replica_sets: Sequence[Mapping[str, Any]],
) -> Obj | None:
    """The Deployment as it must be stored, or None to admit `new` unchanged.

    `rollouts` are the namespace's Rollouts in v1beta1, `replica_sets` its ReplicaSets (any owner).
    """
    if not _selected(new):
        return None
    rollout = matching_rollout(new, rollouts)
    if rollout is None or _is_empty_release(rollout):
        return None
    out = copy.deepcopy(dict(new))
    _fill_uid(out, old)
    if _annotations(out).get(keys.IN_PROGRESSING_ANNOTATION):
        changed = _keep_held(out, old)
    else:
        changed = _enter_progressing(out, old, rollout, replica_sets)
    return out if changed else None


def matching_rollout(workload: Mapping[str, Any], rollouts: Sequence[Mapping[str, Any]]) -> Obj | None:
    """The first Rollout whose workloadRef names this object (same API group, kind and name).

    Rollouts being deleted or in phase Disabled do not count; a disabling one still does.
    """
    return next((dict(ro) for ro in targeting_rollouts(workload, rollouts) if _counts(ro)), None)


def targeting_rollouts(workload: Mapping[str, Any], rollouts: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Every Rollout whose workloadRef names this object (same API group, kind and name), counting or not."""
    group = _api_group(str(workload.get("apiVersion") or "apps/v1"))
    kind = workload.get("kind") or r.DEPLOYMENT.kind
    name = _meta(workload).get("name")
    if group is None:
        return []
    found = []
    for rollout in rollouts:
        ref = _mapping(_mapping(rollout.get("spec")).get("workloadRef"))
        target = (_api_group(str(ref.get("apiVersion") or "")), ref.get("kind"), ref.get("name"))
        if target == (group, kind, name):
            found.append(dict(rollout))
    return found


def _counts(rollout: Mapping[str, Any]) -> bool:
    deleting = bool(_meta(rollout).get("deletionTimestamp"))
    return not deleting and _mapping(rollout.get("status")).get("phase") != PHASE_DISABLED


def is_effective_revision_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A release worth a Rollout: with a rollout-id annotation, only a new id; else a new pod template."""
    new_id = _annotations(new).get(keys.ROLLOUT_ID_LABEL) or ""
    if new_id:
        return (_annotations(old).get(keys.ROLLOUT_ID_LABEL) or "") != new_id
    return not equal_ignore_hash(_template(old), _template(new))


def equal_ignore_hash(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Pod templates equal apart from the pod-template-hash label (Kubernetes' `EqualIgnoreHash`)."""
    return _comparable_template(one) == _comparable_template(other)


def active_replica_sets(
    deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> list[Obj]:
    """ReplicaSets the Deployment controls, selects and still scales (not deleted, replicas unset or > 0)."""
    uid = str(_meta(deployment).get("uid") or "")
    selector = _mapping(deployment.get("spec")).get("selector")
    return [
        dict(rs)
        for rs in replica_sets
        if _is_active(rs) and owned_by(rs, uid) and _selects(selector, _labels(rs))
    ]


def _selected(new: Mapping[str, Any]) -> bool:
    # Kruise re-checks the webhook's objectSelector against the new object alone (the API server matches
    # old or new), so removing the workload-type label in an update opts that update out.
    labels = _labels(new)
    control_plane = labels.get(keys.CONTROL_PLANE_LABEL) == keys.CONTROL_PLANE_MANAGER_VALUE
    return keys.WORKLOAD_TYPE_LABEL in labels and not control_plane


def _is_empty_release(rollout: Mapping[str, Any]) -> bool:
    strategy = _mapping(_mapping(rollout.get("spec")).get("strategy"))
    return strategy.get("canary") is None and strategy.get("blueGreen") is None


def _has_traffic_routings(rollout: Mapping[str, Any]) -> bool:
    strategy = _mapping(_mapping(rollout.get("spec")).get("strategy"))
    active = strategy.get("blueGreen") if strategy.get("blueGreen") is not None else strategy.get("canary")
    return bool(_mapping(active).get("trafficRoutings"))


def _fill_uid(out: Obj, old: Mapping[str, Any]) -> None:
    # Karmada and OCM propagate updates without metadata.uid; ownership of ReplicaSets is by uid.
    meta = out.setdefault("metadata", {})
    if not meta.get("uid") and _meta(old).get("uid"):
        meta["uid"] = _meta(old)["uid"]


# -- entering progressing ---------------------------------------------------------------------------------


def _enter_progressing(
    out: Obj, old: Mapping[str, Any], rollout: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> bool:
    spec = out.setdefault("spec", {})
    if spec.get("replicas") == 0 or not is_effective_revision_change(old, out):
        return False
    active = active_replica_sets(out, replica_sets)
    # With traffic routing the stable Service must select a single version, so a Deployment still
    # rolling between two versions cannot start a Rollout.
    if not active or (_has_traffic_routings(rollout) and len(active) != 1):
        return False
    stable = _stable_replica_set(active, _template(out))
    if stable is not None:
        out["metadata"].setdefault("labels", {})[keys.STABLE_REVISION_LABEL] = str(
            _labels(stable).get(keys.POD_TEMPLATE_HASH_LABEL) or ""
        )
    spec["paused"] = True
    state = json.dumps({"rolloutName": _meta(rollout).get("name", "")}, separators=(",", ":"))
    out["metadata"].setdefault("annotations", {})[keys.IN_PROGRESSING_ANNOTATION] = state
    return True


def _stable_replica_set(active: Sequence[Obj], template: Mapping[str, Any]) -> Obj | None:
    """The oldest (by revision, then creation) active ReplicaSet whose template differs from `template`."""
    ordered = sorted(active, key=functools.cmp_to_key(_by_revision))
    return next((rs for rs in ordered if not equal_ignore_hash(_template(rs), template)), None)


def _by_revision(one: Mapping[str, Any], other: Mapping[str, Any]) -> int:
    rev_one, rev_other = _revision(one), _revision(other)
    if rev_one is None or rev_other is None or rev_one == rev_other:
        created_one = str(_meta(one).get("creationTimestamp") or "")
        created_other = str(_meta(other).get("creationTimestamp") or "")
        return (created_one > created_other) - (created_one < created_other)
    return -1 if rev_one < rev_other else 1


def _revision(rs: Mapping[str, Any]) -> int | None:
    value = str(_annotations(rs).get(keys.DEPLOYMENT_REVISION_ANNOTATION) or "")
    return int(value) if _GO_INT.fullmatch(value) else None


# -- already progressing: keep the native rollout held ---------------------------------------------------


def _keep_held(out: Obj, old: Mapping[str, Any]) -> bool:
    strategy = DeploymentStrategy.parse(_annotations(out).get(keys.DEPLOYMENT_STRATEGY_ANNOTATION))
    if strategy is not None and strategy.rolling_style.lower() == RollingStyle.PARTITION.lower():
        return _hold_partition(out, old, strategy)
    if _annotations(out).get(keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION):
        return _hold_blue_green(out, old)
    return _hold_canary(out, old)


def _hold_partition(out: Obj, old: Mapping[str, Any], strategy: DeploymentStrategy) -> bool:
    """Partition style: the batch-release controller rolls pods itself, so the native one must not."""
    spec = out.setdefault("spec", {})
    deploy_strategy = spec.setdefault("strategy", {})
    modified = _force_paused(spec)
    if deploy_strategy.get("type") == ROLLING_UPDATE:
        deploy_strategy["type"], modified = RECREATE, True
    if deploy_strategy.get("rollingUpdate") is not None:
        # Users may still tune maxSurge/maxUnavailable mid-release; they live in the annotation meanwhile.
        strategy = dataclasses.replace(strategy, rolling_update=deploy_strategy.pop("rollingUpdate"))
        modified = True
    if is_effective_revision_change(old, out):
        strategy, modified = dataclasses.replace(strategy, paused=True), True
    # Defaults as Kruise's SetDefaultDeploymentStrategy, without its maxSurge typo (see DeploymentStrategy).
    out["metadata"]["annotations"][keys.DEPLOYMENT_STRATEGY_ANNOTATION] = strategy.with_defaults().dump()
    return modified


def _hold_blue_green(out: Obj, old: Mapping[str, Any]) -> bool:
    spec = out.setdefault("spec", {})
    deploy_strategy = spec.setdefault("strategy", {})
    modified = False
    if is_effective_revision_change(old, out):
        # Only a rollback is supported mid blue-green; the controller refuses a continuous release.
        spec["paused"], modified = True, True
    if deploy_strategy.get("type") != ROLLING_UPDATE:
        _set_or_drop(deploy_strategy, "type", _mapping(_mapping(old.get("spec")).get("strategy")).get("type"))
        modified = True
    return modified


def _hold_canary(out: Obj, old: Mapping[str, Any]) -> bool:
    spec = out.setdefault("spec", {})
    modified = _force_paused(spec)
    if _mapping(spec.get("strategy")).get("type") == RECREATE:
        # Recreate would kill every stable pod at once; keep the strategy the release started with.
        _set_or_drop(spec, "strategy", copy.deepcopy(_mapping(old.get("spec")).get("strategy")))
        modified = True
    return modified


def _release_left_unheld(new: Mapping[str, Any], old: Mapping[str, Any], rollouts: Sequence[Obj]) -> bool:
    """A new revision of a Deployment a Rollout manages that is being admitted without a hold: the
    ReplicaSets decided it (the only other reasons, checked here, do not depend on them)."""
    rollout = matching_rollout(new, rollouts)
    return (
        rollout is not None
        and _selected(new)
        and not _is_empty_release(rollout)
        and not _annotations(new).get(keys.IN_PROGRESSING_ANNOTATION)
        and _mapping(new.get("spec")).get("replicas") != 0
        and is_effective_revision_change(old, new)
    )


def _starts_hold(new: Mapping[str, Any], changed: Mapping[str, Any]) -> bool:
    """The mutation puts a new in-progressing annotation on the workload (a release starts)."""
    return not _annotations(new).get(keys.IN_PROGRESSING_ANNOTATION) and bool(
        _annotations(changed).get(keys.IN_PROGRESSING_ANNOTATION)
    )


def _force_paused(spec: Obj) -> bool:
    if spec.get("paused") is True:
        return False
    spec["paused"] = True
    return True


# -- small readers -----------------------------------------------------------------------------------------


def _comparable_template(template: Mapping[str, Any]) -> Obj:
    clean: Obj = _without_nulls(copy.deepcopy(dict(template)))
    meta = clean.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("labels"), dict):
        meta["labels"].pop(keys.POD_TEMPLATE_HASH_LABEL, None)
        if not meta["labels"]:
            # Go compares a nil and an empty label map as equal.
            del meta["labels"]
    return clean


def _without_nulls(value: Any) -> Any:
    # JSON null and an absent field decode to the same Go value.
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _selects(selector: object, labels: Mapping[str, Any]) -> bool:
    """metav1.LabelSelectorAsSelector(selector).Matches(labels); a missing selector selects nothing."""
    if not isinstance(selector, dict):
        return False
    match_labels = _mapping(selector.get("matchLabels"))
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(_expression_matches(_mapping(e), labels) for e in selector.get("matchExpressions") or [])


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    key, operator = str(expression.get("key") or ""), expression.get("operator")
    values = list(expression.get("values") or [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator in ("Exists", "DoesNotExist"):
        return (key in labels) is (operator == "Exists")
    return False  # an invalid selector: Kruise then finds no ReplicaSets at all


def _is_active(rs: Mapping[str, Any]) -> bool:
    replicas = _mapping(rs.get("spec")).get("replicas")
    return not _meta(rs).get("deletionTimestamp") and (replicas is None or int(replicas) > 0)


def _api_group(api_version: str) -> str | None:
    """The group of `group/version` ("" for core `v1`); None when it does not parse, as in Go."""
    parts = api_version.split("/")
    if len(parts) > 2:
        return None
    return parts[0] if len(parts) == 2 else ""


def _set_or_drop(obj: Obj, key: str, value: object) -> None:
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = value


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(obj.get("spec")).get("template"))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_meta(obj).get("labels"))


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_meta(obj).get("annotations"))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


# -- the I/O shell ---------------------------------------------------------------------------------------


class ReplicaSetLister(Protocol):
    """Where the Deployment webhook finds the ReplicaSets of a namespace.

    With `owner_uid` a lister may return only those whose controller owner has that uid (a cache looks
    them up in an index); returning more is allowed, `mutate_deployment` filters by owner itself.
    """

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> list[Obj]: ...


class KubeReplicaSetLister:
    """A `ReplicaSetLister` that asks the API server each time (webhook/cache.py reads the informer)."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> list[Obj]:
        # ownerReferences cannot be selected on server-side: list the namespace, the caller filters.
        listed = await self._kube.list(r.REPLICASET, namespace)
        return list(listed.get("items") or [])


class RolloutReader(Protocol):
    """Where the Deployment webhook reads one Rollout as the API server has it now (not a cache)."""

    async def get_rollout(self, namespace: str, name: str) -> Obj | None: ...


async def confirmed_rollouts(
    fresh: RolloutReader | None, namespace: str, new: Mapping[str, Any], rollouts: list[Obj]
) -> list[Obj]:
    """The Rollouts with the one that would hold `new` replaced by its copy read from the API (dropped
    if gone). The webhooks' Rollout lister is a cache: a Rollout deleted or disabled a moment ago may
    still be alive in it, and a hold taken for it would outlive the pass that hands the workload back."""
    rollout = matching_rollout(new, rollouts)
    if fresh is None or rollout is None:
        return rollouts
    name = str(_meta(rollout).get("name") or "")
    try:
        found = await fresh.get_rollout(namespace, name)
    except Exception as err:  # the cache's answer stands: a release it saw alive is held
        log.warning("reading Rollout %s/%s failed, holding as the cache says: %s", namespace, name, err)
        return rollouts
    others = [ro for ro in rollouts if _meta(ro).get("name") != name]
    return others if found is None else [found, *others]


async def revived_rollouts(
    fresh: RolloutReader | None,
    namespace: str,
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    rollouts: list[Obj],
) -> list[Obj]:
    """The Rollouts with those that name `new` but do not count in the cache (Disabled, or being
    deleted) replaced by their copies read from the API, when `new` is a release none would hold.

    The other way round from `confirmed_rollouts`: the cache may still show a Rollout Disabled that was
    re-enabled a moment ago, or the old copy of one deleted and created again. Chaos seed 3: the API
    server restarted right after a re-enable, the next image reached the webhook before the Rollout
    informer had listed again, was admitted unheld as if the Rollout were still Disabled, and the
    Deployment rolled natively while the Rollout stayed Healthy. One GET per such release; a failed
    read leaves the cache's answer (Kruise decides on its cache alone).
    """
    if fresh is None or matching_rollout(new, rollouts) is not None:
        return rollouts
    if _annotations(new).get(keys.IN_PROGRESSING_ANNOTATION) or not is_effective_revision_change(old, new):
        return rollouts  # a hold in place is kept without a Rollout; no release, nothing to hold
    names = {str(_meta(ro).get("name") or "") for ro in targeting_rollouts(new, rollouts)}
    for name in sorted(names):
        try:
            found = await fresh.get_rollout(namespace, name)
        except Exception as err:
            log.warning(
                "re-reading Rollout %s/%s failed, admitting as the cache says: %s", namespace, name, err
            )
            continue
        if found is not None and _counts(found):
            log.info(
                "Rollout %s/%s is live in the API, not in the cache: deciding on the API's", namespace, name
            )
        others = [ro for ro in rollouts if _meta(ro).get("name") != name]
        rollouts = others if found is None else [found, *others]
    return rollouts


class DeploymentMutator:
    """The `WorkloadMutator` for Deployments: list what `mutate_deployment` needs, then ask it.

    A new hold is confirmed against the Rollout read from the API (`fresh`): the lister may be a cache
    that does not show yet that the Rollout is being deleted or was disabled, and a hold taken for such a
    Rollout would outlive it (its last pass may already have checked the workload). One GET per release
    started; holds already in place and everything admitted unchanged cost nothing. Likewise a release
    the cache would admit unheld only because its Rollout shows Disabled or deleted there is decided on
    that Rollout read from the API (`revived_rollouts`): it may have been re-enabled or created again.

    The other way round, a new revision the cached ReplicaSets would let through unheld (none active, or
    two with traffic routing) is decided again on the ReplicaSets read from the API (`fresh_replica_sets`):
    a cache held back by a reconnect (seen: 25 s, the informer's back-off after repeated cuts) still
    showed the previous release's old ReplicaSet with pods, so the next release went to the native
    controller and the Rollout never ran it. One LIST for such a release only.
    """

    def __init__(
        self,
        rollouts: RolloutLister,
        replica_sets: ReplicaSetLister,
        fresh: RolloutReader | None = None,
        fresh_replica_sets: ReplicaSetLister | None = None,
    ) -> None:
        self._rollouts = rollouts
        self._replica_sets = replica_sets
        self._fresh = fresh
        self._fresh_replica_sets = fresh_replica_sets

    @classmethod
    def for_client(cls, kube: KubeClient) -> DeploymentMutator:
        return cls(KubeRolloutLister(kube), KubeReplicaSetLister(kube))

    async def mutate(self, request: adm.AdmissionRequest) -> Obj | None:
        new, old = request.object, request.old_object
        if new is None or old is None:
            return None
        namespace = request.namespace or str(_meta(new).get("namespace") or "")
        rollouts = await self._list_rollouts(namespace)
        revived = False
        if matching_rollout(new, rollouts) is None:
            rollouts = await revived_rollouts(self._fresh, namespace, new, old, rollouts)
            if matching_rollout(new, rollouts) is None:
                return None  # the common case: no need to list ReplicaSets
            revived = True  # read from the API just now: confirming it again would read the same
        replica_sets = await self._list_replica_sets(namespace, new, old)
        changed = mutate_deployment(new, old, rollouts, replica_sets)
        if changed is None and _release_left_unheld(new, old, rollouts):
            replica_sets = await self._reread_replica_sets(namespace, new, old, replica_sets)
            changed = mutate_deployment(new, old, rollouts, replica_sets)
        if changed is not None and _starts_hold(new, changed) and not revived:
            rollouts = await self._confirmed(namespace, new, rollouts)
            changed = mutate_deployment(new, old, rollouts, replica_sets)
        if changed is not None:
            log.info(
                "Deployment %s/%s held for its Rollout", namespace, _meta(new).get("name") or request.name
            )
        return changed

    async def _reread_replica_sets(
        self, namespace: str, new: Mapping[str, Any], old: Mapping[str, Any], cached: list[Obj]
    ) -> list[Obj]:
        """The namespace's ReplicaSets from the API; the cache's answer stands when there is no reader
        or the read fails (Kruise decides on its cache alone)."""
        if self._fresh_replica_sets is None:
            return cached
        try:
            uid = _meta(new).get("uid") or _meta(old).get("uid")
            return await self._fresh_replica_sets.list_replicasets(namespace, str(uid) if uid else None)
        except Exception as err:
            log.warning("re-reading ReplicaSets in %s failed, deciding on the cache: %s", namespace, err)
            return cached

    async def _confirmed(self, namespace: str, new: Mapping[str, Any], rollouts: list[Obj]) -> list[Obj]:
        return await confirmed_rollouts(self._fresh, namespace, new, rollouts)

    async def _list_rollouts(self, namespace: str) -> list[Obj]:
        try:
            return await self._rollouts.list_rollouts(namespace)
        except Exception as err:  # without the Rollouts we cannot tell; Kruise answers 400 too
            raise MutationRejected(f"listing Rollouts in namespace {namespace!r}: {err}") from err

    async def _list_replica_sets(
        self, namespace: str, new: Mapping[str, Any], old: Mapping[str, Any]
    ) -> list[Obj]:
        if _annotations(new).get(keys.IN_PROGRESSING_ANNOTATION):
            return []  # an ongoing release is held whatever its ReplicaSets are
        try:
            uid = _meta(new).get("uid") or _meta(old).get("uid")  # see _fill_uid
            return await self._replica_sets.list_replicasets(namespace, str(uid) if uid else None)
        except Exception as err:  # Kruise treats a failed lookup as "no ReplicaSet": admit unchanged
            log.warning("listing ReplicaSets in %s failed, admitting unchanged: %s", namespace, err)
            return []
