"""A stand-in for OpenKruise's controller in tests: plays ONLY what kruise-manager v1.9.0 was seen doing.

OpenKruise's controller cannot be built from the registries this project may use, so CloneSets, Advanced
StatefulSets and Advanced DaemonSets are tested against OpenKruise's real CRD schemas (the API server
validates every object and field) with their pods and status driven by this driver. It plays what the
project recorded the real kruise-manager doing on this same kind of cluster (reference/ecosystem.md,
"OpenKruise kruise-manager v1.9.0"), with the `ReCreate` update type (InPlaceIfPossible hangs on kwok):

- CloneSet: `replicas` pods named `<name>-<random>`; a template change with `partition: P` (a number or
  a percentage of replicas, rounded up) updates exactly `replicas - P` pods (recorded: 5 replicas,
  partition 3 -> 2 updated), each deleted and created again on the new revision; `paused` stops updates.
  Pods carry `controller-revision-hash: <name>-<hash>` and `pod-template-hash: <hash>`; status reports
  replicas, ready/updated/updatedReady/available counts, currentRevision (the revision every pod was on,
  until all are updated), updateRevision, observedGeneration.
- Advanced StatefulSet (Parallel): pods `<name>-<ordinal>`; partition P updates the ordinals >= P
  (recorded: partition 3 of 5 -> ordinals 3 and 4); status as the StatefulSet's plus updatedReadyReplicas.
- Advanced DaemonSet: one pod per node (the cluster's three kwok nodes); partition P keeps P pods on the
  old revision (recorded: 3 nodes, partition 1 -> 2 updated); pods carry `controller-revision-hash:
  <hash>`; status (v1beta1, the CRD's storage version) reports desiredNumberScheduled,
  updatedNumberScheduled, numberReady and updateRevision (v1alpha1's daemonSetHash).

Scaling out creates pods on the update revision while fewer than `replicas - partition` are on it, else
on the current one (the partition counts old pods); a StatefulSet's scale-in deletes its highest
ordinals, a CloneSet's follows OpenKruise's arithmetic (below). Pods become Ready by
kwok, as real ones do here. What was not recorded (the order in which CloneSet or DaemonSet pods are
picked for an update, pacing by maxUnavailable) is chosen simply: oldest first, all eligible at once.
Revisions are a hash of the pod template (not Kruise's ControllerRevision hash: graylane reads them
from status, never computes them).

Every pass is bounded (a GET, a LIST, a few writes) and passes run every 0.2 s until the driver stops.
The README support table says these kinds are proven against the schema and this recorded behaviour,
not against the real controller.

A CloneSet with `maxSurge` set (blue-green releases set it) or more pods than `replicas` (a scale-in) is
played from OpenKruise's source, not from a recording (kruise-manager was not recorded doing either):
each pass computes what calculateDiffsWithExpectation computes (`cloneset_diffs`, whose docstring lists
the facts and where they come from) and does one of scale up, scale down or update, as its
syncCloneSet does. Consequences a blue-green release meets (all pods unavailable: minReadySeconds is
MaxReadySeconds): a surge creates only update-revision pods, never old ones, so a scale-out adds new
pods only; no Ready pod is deleted, so a scale-in removes nothing until the release restores the
CloneSet's settings. Not played: lifecycle hooks, podsToDelete, scaleStrategy.maxUnavailable,
deletion cost; the ActivePods order among pods to delete is simplified to not-Ready, then newest.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from graylane.api.workloads import ADVANCED_DAEMONSET, CLONESET, Family, WorkloadKind
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient

Obj = dict[str, Any]
log = logging.getLogger(__name__)
PASS_SECONDS = 0.2
REVISION_LABEL = "controller-revision-hash"
POD_TEMPLATE_HASH = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return min(-(-int(value[:-1]) * total // 100), total)
    return min(int(value or 0), total)


@dataclasses.dataclass(frozen=True)
class CloneSetDiffs:
    """One pass's numbers, as OpenKruise's calculateDiffsWithExpectation names them (scaleUpNum, ...)."""

    scale_up: int = 0
    scale_up_old: int = 0
    scale_down: int = 0
    scale_down_old: int = 0
    delete_ready_limit: int = 0
    update: int = 0
    update_max_unavailable: int = 0


def cloneset_diffs(
    *,
    replicas: int,
    partition: int,
    max_surge: int,
    max_unavailable: Any,
    old: int,
    new: int,
    unavailable: int,
) -> CloneSetDiffs:
    """OpenKruise's CloneSet arithmetic (pkg/controller/cloneset/sync/cloneset_sync_utils.go,
    calculateDiffsWithExpectation, read in its source; facts only):

    - maxUnavailable is scaled from replicas rounding up only when maxSurge is 0 (default "20%");
    - updateOldDiff = old - partition (at least 0), updateNewDiff = new - (replicas - partition) (at most
      0: the CloneSetPartitionRollback gate is off by default);
    - a surge is used only while both differ (old pods beyond the partition AND new pods missing):
      useSurge = min(maxSurge, updateOldDiff, -updateNewDiff); never for old-revision pods;
    - pods are created up to replicas + useSurge, old-revision ones only to fill the partition; pods
      beyond it are deleted, old-revision ones beyond the partition first;
    - a Ready pod may be deleted only within maxUnavailable + (pods - replicas) - unavailable pods;
    - updateNum = min(updateOldDiff, -updateNewDiff) within maxUnavailable + pods - replicas.
    With minReadySeconds at MaxReadySeconds (a blue-green release) no pod is available, so no Ready pod
    is ever deleted and no old pod is updated: extra pods stay until the release gives the settings back.
    """
    total = old + new
    unavailable_budget = _unavailable(max_unavailable, replicas, round_up=max_surge == 0)
    update_old = max(old - partition, 0)
    update_new = min(new - (replicas - partition), 0)
    surge = min(max_surge, update_old, -update_new) if max_surge > 0 and update_old and update_new else 0
    expected = replicas + surge
    up = max(expected - total, 0)
    down = max(total - expected, 0)
    update = min(update_old, -update_new)
    return CloneSetDiffs(
        scale_up=up,
        scale_up_old=min(max(partition - old, 0), up),
        scale_down=down,
        scale_down_old=max(old - partition, 0) if down else 0,
        delete_ready_limit=max(unavailable_budget + total - replicas - unavailable, 0) if down else 0,
        update=update,
        update_max_unavailable=unavailable_budget + total - replicas if update else 0,
    )


def _unavailable(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * replicas
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value or 0)


def _choose_to_delete(count: int, old_first: int, old: list[Obj], new: list[Obj]) -> list[Obj]:
    """OpenKruise's choosePodsToDelete: up to `old_first` old-revision pods, the rest new ones; within
    each, not-Ready pods first, then the newest (its ActivePods order, simplified)."""

    def order(pods: list[Obj]) -> list[Obj]:
        return sorted(pods[::-1], key=_ready)  # stable: newest first within Ready and not Ready

    from_old = order(old)[: min(old_first, count)]
    return [*from_old, *order(new)[: count - len(from_old)]]


def _limit_updates(diffs: CloneSetDiffs, old: list[Obj], new: list[Obj], available: Any) -> list[Obj]:
    """OpenKruise's limitUpdateIndexes: new-revision pods not available plus those being updated stay
    under updateMaxUnavailable, and an available pod is taken only while all unavailable pods do."""
    unavailable = sum(1 for p in [*old, *new] if not available(p))
    new_unavailable = sum(1 for p in new if not available(p))
    chosen: list[Obj] = []
    for pod in sorted(old, key=available)[: diffs.update]:  # not available first, then oldest
        if new_unavailable + len(chosen) >= diffs.update_max_unavailable:
            break
        if available(pod):
            if unavailable >= diffs.update_max_unavailable:
                break
            unavailable += 1
        chosen.append(pod)
    return chosen


class KruiseDriver:
    """Drives one OpenKruise workload's pods and status (see the module docstring)."""

    def __init__(self, kube: KubeClient, kind: WorkloadKind, namespace: str, name: str) -> None:
        assert kind.openkruise, "the real controllers drive the native kinds"
        self.kube, self.kind, self.namespace, self.name = kube, kind, namespace, name
        self.resource = r.Resource(kind.group, kind.version, kind.plural, kind.kind)
        self._templates: dict[str, Obj] = {}  # revision hash -> template (Kruise's ControllerRevisions)
        self._current = ""  # the revision every pod was on before the template last changed
        self.passes = 0

    # -- running ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KruiseDriver]:
        stop = asyncio.Event()
        task = asyncio.create_task(self._loop(stop))
        try:
            yield self
        finally:
            stop.set()
            await task

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except ApiError as err:  # a write raced another writer: the next pass sees the new state
                log.debug("driver pass failed: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PASS_SECONDS)

    async def step(self) -> None:
        """One pass: bring the pods to what the spec and partition ask, then write the status."""
        obj = await self.kube.get_or_none(self.resource, self.name, self.namespace)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        self.passes += 1
        template = obj["spec"]["template"]
        update = template_hash(template)
        self._templates.setdefault(update, copy.deepcopy(template))
        self._current = self._current or update
        pods = await self._pods(obj)
        if not any(p["metadata"].get("deletionTimestamp") for p in pods):
            await self._converge(obj, pods, update)
            pods = await self._pods(obj)
        if pods and all(self._revision(p) == update for p in pods) and all(_ready(p) for p in pods):
            self._current = update
        await self._write_status(obj, pods, update)

    # -- pods ---------------------------------------------------------------------------------------

    async def _pods(self, obj: Obj) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"]["matchLabels"].items())
        listed = await self.kube.list(r.POD, self.namespace, label_selector=selector)
        uid = obj["metadata"]["uid"]
        owned = [
            p
            for p in listed["items"]
            if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])
        ]
        return sorted(owned, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))

    def _revision(self, pod: Obj) -> str:
        value = str(pod["metadata"].get("labels", {}).get(REVISION_LABEL, ""))
        return value.rpartition("-")[2] if self.kind is not ADVANCED_DAEMONSET else value

    async def _converge(self, obj: Obj, pods: list[Obj], update: str) -> None:
        if self.kind.family is Family.ADVANCED_DAEMONSET:
            await self._converge_daemonset(obj, pods, update)
        elif self.kind.family is Family.CLONESET:
            await self._converge_cloneset(obj, pods, update)
        else:
            await self._converge_statefulset(obj, pods, update)

    def _partition(self, obj: Obj, replicas: int) -> int:
        strategy = obj["spec"].get("updateStrategy") or {}
        value = (
            strategy.get("partition")
            if self.kind is CLONESET
            else (strategy.get("rollingUpdate") or {}).get("partition")
        )
        return _scaled(value, replicas)

    def _paused(self, obj: Obj) -> bool:
        strategy = obj["spec"].get("updateStrategy") or {}
        holder = strategy if self.kind is CLONESET else (strategy.get("rollingUpdate") or {})
        return bool(holder.get("paused"))

    async def _converge_cloneset(self, obj: Obj, pods: list[Obj], update: str) -> None:
        replicas = int(obj["spec"].get("replicas", 1))
        target = max(replicas - self._partition(obj, replicas), 0)
        updated = [p for p in pods if self._revision(p) == update]
        if self._surge(obj, replicas) or len(pods) > replicas:
            await self._converge_cloneset_surge(obj, pods, update, replicas, target)
            return
        for pod in pods[replicas:][::-1]:  # scale in: the newest pods go
            await self._delete(pod)
        pods = pods[:replicas]
        updated = [p for p in pods if self._revision(p) == update]
        for _ in range(replicas - len(pods)):  # scale out, honouring the partition
            revision = update if len(updated) < target else self._current
            await self._create(obj, revision, f"{self.name}-{uuid.uuid4().hex[:5]}")
            if revision == update:
                updated.append({})
        if self._paused(obj):
            return
        old = [p for p in pods if self._revision(p) != update]
        for pod in old[: max(target - len(updated), 0)]:  # ReCreate: delete, then create on the update
            await self._delete(pod)
            await self._create(obj, update, f"{self.name}-{uuid.uuid4().hex[:5]}")

    # -- CloneSet surge: documented by OpenKruise, NOT recorded (Kruise Rollout's blue-green uses it) -------

    def _surge(self, obj: Obj, replicas: int) -> int:
        return _scaled((obj["spec"].get("updateStrategy") or {}).get("maxSurge"), replicas)

    def _available(self, obj: Obj, pod: Obj) -> bool:
        """Ready for minReadySeconds (a blue-green release sets 2147483646: never)."""
        if not _ready(pod):
            return False
        min_ready = int(obj["spec"].get("minReadySeconds") or 0)
        if min_ready == 0:
            return True
        conditions = (pod.get("status") or {}).get("conditions") or []
        since = next((c.get("lastTransitionTime") for c in conditions if c.get("type") == "Ready"), None)
        if not since:
            return False
        ready_at = dt.datetime.fromisoformat(str(since).replace("Z", "+00:00"))
        return ready_at + dt.timedelta(seconds=min_ready) <= dt.datetime.now(dt.UTC)

    async def _converge_cloneset_surge(
        self, obj: Obj, pods: list[Obj], update: str, replicas: int, target: int
    ) -> None:
        """With `maxSurge` (or pods beyond `replicas`): one pass of OpenKruise's arithmetic (see
        `cloneset_diffs`): scale up (old-revision pods only to fill the partition), else scale down
        (old-revision pods beyond the partition first, a Ready pod only within the delete budget), else
        ReCreate old pods within the update budget. Like kruise-manager, a pass that scaled does not
        also update."""
        strategy = obj["spec"].get("updateStrategy") or {}
        old = [p for p in pods if self._revision(p) != update]
        new = [p for p in pods if self._revision(p) == update]
        diffs = cloneset_diffs(
            replicas=replicas,
            partition=replicas - target,
            max_surge=0 if self._paused(obj) else self._surge(obj, replicas),
            max_unavailable=strategy.get("maxUnavailable", "20%"),
            old=len(old),
            new=len(new),
            unavailable=sum(1 for p in pods if not self._available(obj, p)),
        )
        if diffs.scale_up:
            for index in range(diffs.scale_up):
                revision = self._current if index < diffs.scale_up_old else update
                await self._create(obj, revision, f"{self.name}-{uuid.uuid4().hex[:5]}")
            return
        if diffs.scale_down:
            budget = diffs.delete_ready_limit
            for pod in _choose_to_delete(diffs.scale_down, diffs.scale_down_old, old, new):
                if _ready(pod):  # OpenKruise's isPodReady: Ready, minReadySeconds not counted
                    if budget <= 0:
                        continue
                    budget -= 1
                await self._delete(pod)
            return
        if self._paused(obj) or diffs.update <= 0:
            return
        for pod in _limit_updates(diffs, old, new, lambda p: self._available(obj, p)):
            await self._delete(pod)  # ReCreate: deleted here, created on the update revision next pass

    async def _converge_statefulset(self, obj: Obj, pods: list[Obj], update: str) -> None:
        replicas = int(obj["spec"].get("replicas", 1))
        by_ordinal = {int(p["metadata"]["name"].rpartition("-")[2]): p for p in pods}
        partition = self._partition(obj, replicas)
        for ordinal, pod in sorted(by_ordinal.items()):
            if ordinal >= replicas:
                await self._delete(pod)
        for ordinal in range(replicas):
            wanted = update if ordinal >= partition else self._current
            pod = by_ordinal.get(ordinal)
            if pod is None:
                await self._create(obj, wanted, f"{self.name}-{ordinal}")
            elif self._revision(pod) != wanted and not self._paused(obj) and ordinal >= partition:
                await self._delete(pod)  # recreated on the next pass, once it is gone

    async def _converge_daemonset(self, obj: Obj, pods: list[Obj], update: str) -> None:
        nodes = sorted(n["metadata"]["name"] for n in (await self.kube.list(r.NODE))["items"])
        on_node = {p["spec"].get("nodeName"): p for p in pods}
        partition = self._partition(obj, len(nodes))
        target = max(len(nodes) - partition, 0)
        updated = sum(1 for p in pods if self._revision(p) == update)
        for node in nodes:
            if node not in on_node:
                revision = update if updated < target else self._current
                await self._create(obj, revision, f"{self.name}-{uuid.uuid4().hex[:5]}", node=node)
                updated += revision == update
        if self._paused(obj):
            return
        old = [p for p in pods if self._revision(p) != update]
        for pod in old[: max(target - updated, 0)]:
            await self._delete(pod)  # its node gets a new pod on the next pass

    async def _create(self, obj: Obj, revision: str, name: str, node: str | None = None) -> None:
        template = copy.deepcopy(self._templates.get(revision) or obj["spec"]["template"])
        labels = dict(template.get("metadata", {}).get("labels") or {})
        if self.kind is ADVANCED_DAEMONSET:
            labels[REVISION_LABEL] = revision
        else:
            labels[REVISION_LABEL] = f"{self.name}-{revision}"
            labels[POD_TEMPLATE_HASH] = revision
        owner = {
            "apiVersion": obj["apiVersion"],
            "kind": self.kind.kind,
            "name": self.name,
            "uid": obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        spec = dict(template.get("spec") or {})
        if node is not None:
            spec["nodeName"] = node
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
                "ownerReferences": [owner],
            },
            "spec": spec,
        }
        try:
            await self.kube.create(r.POD, pod, self.namespace)
        except ApiError as err:
            if not err.already_exists:  # a StatefulSet pod whose old self is still going away
                raise

    async def _delete(self, pod: Obj) -> None:
        await self.kube.delete(r.POD, pod["metadata"]["name"], self.namespace)

    # -- status ---------------------------------------------------------------------------------------

    async def _write_status(self, obj: Obj, pods: list[Obj], update: str) -> None:
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        updated = [p for p in live if self._revision(p) == update]
        ready = [p for p in live if _ready(p)]
        generation = obj["metadata"].get("generation", 0)
        if self.kind is ADVANCED_DAEMONSET:
            nodes = (await self.kube.list(r.NODE))["items"]
            status: Obj = {
                "observedGeneration": generation,
                "desiredNumberScheduled": len(nodes),
                "currentNumberScheduled": len(live),
                "numberMisscheduled": 0,
                "numberReady": len(ready),
                "numberAvailable": len(ready),
                "numberUnavailable": len(nodes) - len(ready),
                "updatedNumberScheduled": len(updated),
                "updateRevision": update,  # v1beta1's name for v1alpha1's daemonSetHash
            }
        else:
            status = {
                "observedGeneration": generation,
                "replicas": len(live),
                "readyReplicas": len(ready),
                "availableReplicas": sum(1 for p in live if self._available(obj, p)),
                "updatedReplicas": len(updated),
                "updatedReadyReplicas": sum(1 for p in updated if _ready(p)),
                "currentRevision": f"{self.name}-{self._current}",
                "updateRevision": f"{self.name}-{update}",
                "collisionCount": 0,
            }
            selector = ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"]["matchLabels"].items())
            status["labelSelector"] = selector
            if self.kind is CLONESET:
                status["updatedAvailableReplicas"] = status["updatedReadyReplicas"]
                replicas = int(obj["spec"].get("replicas", 1))
                status["expectedUpdatedReplicas"] = max(replicas - self._partition(obj, replicas), 0)
            else:
                status["currentReplicas"] = sum(1 for p in live if self._revision(p) == self._current)
        if {k: (obj.get("status") or {}).get(k) for k in status} != status:
            await self.kube.patch(
                self.resource, self.name, {"status": status}, self.namespace, subresource="status"
            )
