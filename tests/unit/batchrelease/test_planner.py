"""The BatchRelease state machine (reference §2.7) and the two Deployment rolling styles, as pure tables.

The state machine is tested against a scripted `Control` so that each phase x batch state x readiness
cell is one row; the styles are then tested for the objects and patches they produce.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease, ReleasePlan
from graylane.api.hashing import release_plan_hash
from graylane.batchrelease.canary_style import CanaryStyle, build_canary, canary_name, find_canary
from graylane.batchrelease.partition_style import PartitionStyle, control_info
from graylane.batchrelease.planner import (
    POD_LABEL_RECHECK_SECONDS,
    BatchReleaseObserved,
    CreateCanary,
    Delete,
    Patch,
    Step,
    WorkloadInfo,
    plan,
    pod_label_patches,
)
from graylane.planner.polling import safety_poll

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
FIN = keys.BATCH_RELEASE_FINALIZER
MARK = Patch("Deployment", "demo", {"marker": True})
POD_LABEL = Patch("Pod", "demo-1", {"metadata": {"labels": {keys.ROLLOUT_ID_LABEL: "r1"}}})
# No fixed polling: events wake a BatchRelease; in flight it keeps only this long, jittered safety poll.
SAFETY = safety_poll("br-uid")


def release_plan(**overrides: Any) -> dict[str, Any]:
    return {
        "batches": [{"canaryReplicas": "20%"}, {"canaryReplicas": "90%"}],
        "batchPartition": 0,
        **overrides,
    }


def settled_status(plan_obj: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A status the special cases leave alone: hashes, ids, counts and revisions all match."""
    canary = {"batchState": "Upgrading", "currentBatch": 0, "updatedReplicas": 1, "updatedReadyReplicas": 1}
    status = {
        "phase": "Progressing",
        "observedGeneration": 3,
        "observedReleasePlanHash": release_plan_hash(ReleasePlan.from_obj(plan_obj)),
        "observedRolloutID": plan_obj.get("rolloutID", ""),
        "observedWorkloadReplicas": 5,
        "stableRevision": "stable",
        "updateRevision": "update",
        "canaryStatus": canary,
    }
    canary.update(overrides.pop("canaryStatus", {}))
    return {**status, **overrides}


def release(
    plan_obj: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any
) -> BatchRelease:
    plan_obj = plan_obj if plan_obj is not None else release_plan()
    metadata = {
        "name": "demo",
        "namespace": "ns",
        "uid": "br-uid",
        "generation": 3,
        "finalizers": [FIN],
        **meta,
    }
    return BatchRelease.from_obj(
        {
            "metadata": metadata,
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "releasePlan": plan_obj,
            },
            "status": status if status is not None else settled_status(plan_obj),
        }
    )


@dataclasses.dataclass
class Scripted:
    """A Control whose answers are set per test; records which calls were made."""

    info_: WorkloadInfo | None = dataclasses.field(
        default_factory=lambda: WorkloadInfo(5, True, False, 1, 1, "update", "stable")
    )
    done: bool = True
    upgrade_actions: tuple[Patch, ...] = (MARK,)  # what upgrade() still has to do
    calls: list[str] = dataclasses.field(default_factory=list)

    def _step(self, name: str, actions: tuple[Patch, ...] = (MARK,)) -> Step:
        self.calls.append(name)
        return Step(self.done, actions)

    def info(self, obs: BatchReleaseObserved) -> WorkloadInfo | None:
        return self.info_

    def initialize(self, obs: BatchReleaseObserved) -> Step:
        return self._step("initialize")

    def upgrade(self, obs: BatchReleaseObserved, batch: int) -> Step:
        return self._step(f"upgrade:{batch}", self.upgrade_actions)

    def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
        return self._step(f"check:{batch}")

    def finalize(self, obs: BatchReleaseObserved) -> Step:
        return self._step("finalize")


def observed(br: BatchRelease, **kwargs: Any) -> BatchReleaseObserved:
    return BatchReleaseObserved(
        release=br, workload={"metadata": {"name": "demo"}, "spec": {"replicas": 5}}, now=NOW, **kwargs
    )


# --- the state machine: phase x batch state x readiness -------------------------------------------


@pytest.mark.parametrize(
    ("phase", "state", "batch", "partition", "done", "want_phase", "want_state", "want_batch", "call"),
    [
        # prepared: the first batch starts in the same pass
        ("Preparing", "", 0, 0, True, "Progressing", "Verifying", 0, "initialize,upgrade:0"),
        ("Preparing", "", 0, 0, False, "Preparing", "", 0, "initialize"),
        ("Unknown", "", 0, 0, True, "Progressing", "Verifying", 0, "initialize,upgrade:0"),  # start over
        ("Progressing", "Upgrading", 0, 0, True, "Progressing", "Verifying", 0, "upgrade:0"),
        ("Progressing", "Upgrading", 0, 0, False, "Progressing", "Upgrading", 0, "upgrade:0"),
        ("Progressing", "", 0, 0, True, "Progressing", "Verifying", 0, "upgrade:0"),  # unknown state
        ("Progressing", "Verifying", 0, 0, True, "Progressing", "Ready", 0, "check:0"),
        # not ready and the workload drifted below the target (upgrade has work): redo the upgrade
        ("Progressing", "Verifying", 0, 0, False, "Progressing", "Upgrading", 0, "check:0,upgrade:0"),
        ("Progressing", "Ready", 0, 0, True, "Progressing", "Ready", 0, "check:0"),  # held by the partition
        ("Progressing", "Ready", 0, 1, True, "Progressing", "Upgrading", 1, "check:0"),  # the next batch
        ("Progressing", "Ready", 1, 1, True, "Progressing", "Ready", 1, "check:1"),
        ("Progressing", "Ready", 1, 5, True, "Progressing", "Ready", 1, "check:1"),  # never past the last
        ("Progressing", "Ready", 1, 1, False, "Progressing", "Upgrading", 1, "check:1"),
        ("Finalizing", "Ready", 1, None, True, "Completed", "Ready", 1, "finalize"),
        ("Finalizing", "Ready", 1, None, False, "Finalizing", "Ready", 1, "finalize"),
    ],
)
def test_state_machine(
    phase: str,
    state: str,
    batch: int,
    partition: int | None,
    done: bool,
    want_phase: str,
    want_state: str,
    want_batch: int,
    call: str,
) -> None:
    plan_obj = release_plan(batchPartition=partition)
    br = release(
        plan_obj,
        settled_status(plan_obj, phase=phase, canaryStatus={"batchState": state, "currentBatch": batch}),
    )
    control = Scripted(done=done)

    result = plan(observed(br), control)

    assert control.calls == call.split(",")
    # Each call's actions in order; a Verifying batch that drifted redoes the upgrade on the next pass.
    assert result.actions == (MARK,) * (2 if call.startswith("initialize,") else 1)
    assert result.status is not None
    assert (result.status.phase, result.status.canary_status.batch_state) == (want_phase, want_state)
    assert result.status.canary_status.current_batch == want_batch
    want_requeue = None if want_phase == "Completed" else SAFETY
    assert result.requeue_after == want_requeue


@pytest.mark.parametrize(
    ("upgrade_actions", "want_state"),
    [
        ((), "Verifying"),  # target set, pods still coming up: no flip back to Upgrading
        ((POD_LABEL,), "Verifying"),  # only pod labels to add: the check asks for those itself
        ((MARK,), "Upgrading"),  # the workload drifted below the batch target: upgrade again
    ],
)
def test_verifying_stays_while_the_upgrade_is_satisfied(
    upgrade_actions: tuple[Patch, ...], want_state: str
) -> None:
    plan_obj = release_plan()
    br = release(plan_obj, settled_status(plan_obj, canaryStatus={"batchState": "Verifying"}))
    control = Scripted(done=False, upgrade_actions=upgrade_actions)
    result = plan(observed(br), control)
    assert result.status is not None
    assert result.status.canary_status.batch_state == want_state
    assert result.actions == (MARK,)  # the check's actions; the upgrade's are redone from Upgrading


def test_verifying_that_waits_writes_nothing_new() -> None:
    """Pass after pass while pods come up: the status stays as stored, so the controller writes nothing."""
    plan_obj = release_plan()
    stored = settled_status(plan_obj, canaryStatus={"batchState": "Verifying"})
    result = plan(observed(release(plan_obj, stored)), Scripted(done=False, upgrade_actions=()))
    assert result.status is not None
    assert result.status.to_obj() == release(plan_obj, stored).status.to_obj()


def test_pod_labels_are_looked_at_again_soon() -> None:
    """Pods are listed, not watched: after labelling some, the next pass comes by time, not by event."""
    plan_obj = release_plan(rolloutID="r1")
    br = release(plan_obj, settled_status(plan_obj, canaryStatus={"batchState": "Verifying"}))

    @dataclasses.dataclass
    class Labelling(Scripted):
        def check(self, obs: BatchReleaseObserved, batch: int) -> Step:
            return self._step(f"check:{batch}", (POD_LABEL,))

    result = plan(observed(br), Labelling(done=False, upgrade_actions=()))
    assert result.actions == (POD_LABEL,)
    assert result.requeue_after == POD_LABEL_RECHECK_SECONDS


def test_a_batch_that_becomes_ready_records_when() -> None:
    plan_obj = release_plan()
    br = release(plan_obj, settled_status(plan_obj, canaryStatus={"batchState": "Verifying"}))
    result = plan(observed(br), Scripted(done=True))
    assert result.status is not None
    assert result.status.canary_status.batch_ready_time == NOW


def test_a_ready_batch_that_is_no_longer_ready_forgets_its_ready_time() -> None:
    plan_obj = release_plan()
    status = settled_status(
        plan_obj, canaryStatus={"batchState": "Ready", "batchReadyTime": "2026-11-22T11:00:00Z"}
    )
    result = plan(observed(release(plan_obj, status)), Scripted(done=False))
    assert result.status is not None
    assert result.status.canary_status.batch_ready_time is None


def test_preparing_records_revisions_and_replicas_once_initialized() -> None:
    plan_obj = release_plan()
    status: dict[str, Any] = {
        "phase": "Preparing",
        "observedReleasePlanHash": release_plan_hash(ReleasePlan.from_obj(plan_obj)),
    }
    status |= {
        "observedWorkloadReplicas": -1,
        "canaryStatus": {"updatedReplicas": 1, "updatedReadyReplicas": 1},
    }
    result = plan(observed(release(plan_obj, status)), Scripted(done=True))
    assert result.status is not None
    assert result.status.to_obj() | {"canaryStatus": {}} == {
        "canaryStatus": {},
        "stableRevision": "stable",
        "updateRevision": "update",
        "observedGeneration": 3,
        "observedWorkloadReplicas": 5,
        "observedReleasePlanHash": status["observedReleasePlanHash"],
        "phase": "Progressing",
    }


def test_a_new_batchrelease_first_persists_preparing_alone() -> None:
    """Kruise writes the initialised status before running any phase: nothing is done on the workload."""
    control = Scripted()
    result = plan(observed(release(status={})), control)
    assert control.calls == []
    assert result.actions == ()
    assert result.status is not None
    assert result.status.phase == "Preparing"
    assert result.status.observed_workload_replicas == -1
    assert result.requeue_after == SAFETY  # the status write's own watch event wakes the next pass


def test_completed_does_nothing() -> None:
    plan_obj = release_plan(batchPartition=None)
    control = Scripted()
    result = plan(observed(release(plan_obj, settled_status(plan_obj, phase="Completed"))), control)
    assert control.calls == []
    assert result.actions == ()
    assert result.requeue_after is None


# --- special cases before the state machine -------------------------------------------------------


def _special(
    plan_obj: dict[str, Any], status: dict[str, Any], info: WorkloadInfo | None = None, **meta: Any
) -> Any:
    control = Scripted() if info is None else Scripted(info_=info)
    return plan(observed(release(plan_obj, status, **meta)), control), control


def test_batch_partition_unset_starts_finalizing_and_persists_that_first() -> None:
    plan_obj = release_plan(batchPartition=None)
    result, control = _special(plan_obj, settled_status(plan_obj, canaryStatus={"batchState": "Ready"}))
    assert result.status.phase == "Finalizing"
    assert control.calls == []
    assert result.requeue_after == SAFETY  # the status write's own watch event wakes the next pass


def test_deletion_finalizes_without_reading_the_workload() -> None:
    plan_obj = release_plan()
    control = Scripted(info_=None)
    br = release(plan_obj, settled_status(plan_obj), deletionTimestamp="2026-11-22T11:00:00Z")
    result = plan(observed(br), control)
    assert result.status is not None
    assert result.status.phase == "Finalizing"


@pytest.mark.parametrize(
    ("partition", "old_id", "new_id", "want_batch"),
    [
        (1, "", "", 1),
        (5, "", "", 1),  # clamped to the last batch
        (1, "a", "b", 0),  # a new rollout id restarts at batch 0 so pods are labelled again
    ],
)
def test_plan_change_recalculates_the_current_batch(
    partition: int, old_id: str, new_id: str, want_batch: int
) -> None:
    old_plan = release_plan(rolloutID=old_id)
    new_plan = release_plan(batchPartition=partition, rolloutID=new_id)
    status = settled_status(
        old_plan, canaryStatus={"batchState": "Ready", "batchReadyTime": "2026-11-22T11:00:00Z"}
    )
    result, _ = _special(new_plan, status)
    canary = result.status.canary_status
    assert (canary.current_batch, canary.batch_state, canary.batch_ready_time) == (
        want_batch,
        "Upgrading",
        None,
    )
    assert result.status.observed_release_plan_hash == release_plan_hash(ReleasePlan.from_obj(new_plan))
    assert result.status.observed_rollout_id == new_id


def test_a_batch_index_past_the_plan_starts_over() -> None:
    plan_obj = release_plan()
    result, _ = _special(plan_obj, settled_status(plan_obj, canaryStatus={"currentBatch": 2}))
    assert result.status.phase == "Preparing"
    assert result.status.canary_status.current_batch == 0


@pytest.mark.parametrize(
    ("phase", "want"), [("Progressing", "Finalizing"), ("", "Preparing"), ("Preparing", "Finalizing")]
)
def test_workload_gone(phase: str, want: str) -> None:
    plan_obj = release_plan()
    result = plan(observed(release(plan_obj, settled_status(plan_obj, phase=phase))), Scripted(info_=None))
    assert result.status is not None
    assert result.status.phase == want


def test_workload_not_yet_observed_by_its_controller_waits() -> None:
    plan_obj = release_plan()
    control = Scripted(info_=WorkloadInfo(5, False, False, 1, 1, "update", "stable"))
    result = plan(observed(release(plan_obj, settled_status(plan_obj))), control)
    assert control.calls == []
    # The Deployment status update that records observedGeneration wakes it, not a 2 s poll.
    assert result.requeue_after == SAFETY


@pytest.mark.parametrize("promoted", [False, True])
def test_workload_scaled_restarts_the_batch_unless_promoted(promoted: bool) -> None:
    plan_obj = release_plan()
    status = settled_status(
        plan_obj, canaryStatus={"batchState": "Ready", "batchReadyTime": "2026-11-22T11:00:00Z"}
    )
    info = WorkloadInfo(10, True, promoted, 1, 1, "update", "stable")
    result, control = _special(plan_obj, status, info)
    canary = result.status.canary_status
    # Either way the new size is recorded, and written alone before the state machine runs.
    assert control.calls == []
    assert result.status.observed_workload_replicas == 10
    if promoted:
        # Every pod is on the new revision: nothing to redo, the batch stays Ready since when it was.
        assert (canary.batch_state, canary.batch_ready_time) == ("Ready", NOW.replace(hour=11))
    else:
        assert (canary.batch_state, canary.batch_ready_time) == ("Upgrading", None)


def test_a_promoted_workload_scaled_in_after_the_last_batch_records_its_new_size() -> None:
    """10 pods all updated at the last batch, scaled to 4: the status follows (Kruise keeps 10, stale,
    because its promoted check returns before the scaling one), and the next pass goes on as usual."""
    plan_obj = release_plan(batchPartition=1)
    status = settled_status(
        plan_obj,
        observedWorkloadReplicas=10,
        canaryStatus={
            "batchState": "Ready",
            "currentBatch": 1,
            "updatedReplicas": 10,
            "updatedReadyReplicas": 10,
        },
    )
    info = WorkloadInfo(4, True, True, 4, 4, "update", "stable")
    result, control = _special(plan_obj, status, info)
    assert control.calls == []
    assert result.status.observed_workload_replicas == 4
    canary = result.status.canary_status
    assert (canary.batch_state, canary.current_batch, canary.updated_replicas) == ("Ready", 1, 4)

    # The stored status now matches: no special case, the Ready batch is re-checked as usual.
    again, control = _special(plan_obj, result.status.to_obj(), info)
    assert control.calls == ["check:1"]
    assert again.status.observed_workload_replicas == 4


def test_a_new_template_mid_release_stops_and_records_the_revision() -> None:
    plan_obj = release_plan()
    info = WorkloadInfo(5, True, False, 1, 1, "newer", "stable")
    result, control = _special(plan_obj, settled_status(plan_obj), info)
    assert control.calls == []
    assert result.status.update_revision == "newer"


def test_updated_counts_are_refreshed_every_pass_without_stopping_the_batch() -> None:
    """While a batch is on its way the counts alone are not worth a write: the state machine runs on."""
    plan_obj = release_plan()
    info = WorkloadInfo(5, True, False, 3, 2, "update", "stable")
    result, control = _special(plan_obj, settled_status(plan_obj), info)
    assert control.calls == ["upgrade:0"]
    assert (
        result.status.canary_status.updated_replicas,
        result.status.canary_status.updated_ready_replicas,
    ) == (3, 2)


def test_updated_counts_of_a_ready_batch_are_written_first() -> None:
    plan_obj = release_plan()
    info = WorkloadInfo(5, True, False, 3, 2, "update", "stable")
    result, control = _special(plan_obj, settled_status(plan_obj, canaryStatus={"batchState": "Ready"}), info)
    assert control.calls == []  # a Ready batch keeps its counts current: written alone first
    assert result.status.canary_status.updated_ready_replicas == 2


# --- finalizer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finalizers", "deleting", "phase", "want"),
    [
        ([], False, "Progressing", ("other", FIN)),
        ([FIN], False, "Progressing", None),
        ([FIN], True, "Finalizing", None),
        (["other", FIN], True, "Completed", ("other",)),
    ],
)
def test_finalizer(finalizers: list[str], deleting: bool, phase: str, want: tuple[str, ...] | None) -> None:
    plan_obj = release_plan(batchPartition=None)
    meta: dict[str, Any] = {"finalizers": finalizers or ["other"]}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T11:00:00Z"
    if not finalizers:
        meta["finalizers"] = ["other"]
    result = plan(observed(release(plan_obj, settled_status(plan_obj, phase=phase), **meta)), Scripted())
    assert result.finalizers == want


# --- pod batch labels -----------------------------------------------------------------------------


def pod(name: str, created: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels}}


def _labels(patches: tuple[Patch, ...]) -> dict[str, str]:
    return {p.name: p.body["metadata"]["labels"][keys.ROLLOUT_BATCH_ID_LABEL] for p in patches}


@pytest.mark.parametrize(
    ("pods", "current", "want"),
    [
        ([pod("a", "1")], 0, {"a": "1"}),
        # shares are ceil(20%)=1 and ceil(90%)-1=4 (uncapped, as Kruise's label patcher): newest go to batch 2
        ([pod(n, str(i)) for i, n in enumerate("abcdef")], 1, {"b": "1"} | dict.fromkeys("cdef", "2")),
        (
            [
                pod("a", "1", **{keys.ROLLOUT_ID_LABEL: "r1", keys.ROLLOUT_BATCH_ID_LABEL: "1"}),
                pod("b", "2"),
                pod("c", "3"),
            ],
            1,
            {"b": "2", "c": "2"},
        ),
        ([pod("a", "1", **{keys.ROLLOUT_ID_LABEL: "old", keys.ROLLOUT_BATCH_ID_LABEL: "1"})], 0, {"a": "1"}),
        ([], 1, {}),
    ],
)
def test_pod_batch_labels(pods: list[dict[str, Any]], current: int, want: dict[str, str]) -> None:
    batches = ReleasePlan.from_obj(release_plan()).batches
    assert _labels(pod_label_patches(pods, batches, 5, current, "r1")) == want


def test_no_rollout_id_no_pod_labels() -> None:
    batches = ReleasePlan.from_obj(release_plan()).batches
    assert pod_label_patches([pod("a", "1")], batches, 5, 0, "") == ()


# --- canary style ---------------------------------------------------------------------------------

STABLE_TEMPLATE = {
    "metadata": {"labels": {"app": "demo"}},
    "spec": {"containers": [{"name": "main", "image": "v2"}]},
}


def stable(**spec: Any) -> dict[str, Any]:
    spec = {
        "replicas": 5,
        "paused": True,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": STABLE_TEMPLATE,
        **spec,
    }
    return {
        "metadata": {"name": "demo", "namespace": "ns", "generation": 2, "annotations": {}},
        "spec": spec,
        "status": {"observedGeneration": 2, "replicas": 5, "updatedReplicas": 0, "availableReplicas": 5},
    }


def canary_plan(**overrides: Any) -> dict[str, Any]:
    return release_plan(
        rollingStyle="Canary",
        patchPodTemplateMetadata={"labels": {"opensergo.io/canary-gray": "gray"}},
        **overrides,
    )


def canary_obs(
    plan_obj: dict[str, Any] | None = None,
    workload: dict[str, Any] | None = None,
    canaries: tuple[Any, ...] = (),
) -> BatchReleaseObserved:
    br = release(plan_obj or canary_plan())
    return BatchReleaseObserved(
        release=br, workload=workload or stable(), now=NOW, update_revision="update", canaries=canaries
    )


def canary(
    replicas: int = 1, *, name: str = "demo-abcde", created: str = "2", ready: int | None = None, **meta: Any
) -> dict[str, Any]:
    obj = build_canary(stable(), release(canary_plan()))
    obj["metadata"] |= {
        "name": name,
        "creationTimestamp": created,
        "uid": f"{name}-uid",
        "generation": 1,
        **meta,
    }
    obj["spec"]["replicas"] = replicas
    obj["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "availableReplicas": replicas if ready is None else ready,
    }
    return obj


def test_build_canary_writes_no_empty_maps_the_api_server_would_drop() -> None:
    """Seed 003's lane patches labels only. An `annotations: {}` in the canary's template is gone once
    created, so the created canary hashed differently from the one asked about, and a lagging cache
    let a second canary Deployment be created (seen by traffic: two gray pods of spring-cloud-b)."""
    obj = build_canary(stable(), release(canary_plan()))
    assert "annotations" not in obj["spec"]["template"]["metadata"]
    assert obj["spec"]["template"]["metadata"]["labels"]["opensergo.io/canary-gray"] == "gray"


def test_build_canary() -> None:
    obj = build_canary(stable(), release(canary_plan()))
    ref: dict[str, Any] = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "BatchRelease",
        "name": "demo",
        "uid": "br-uid",
    }
    ref |= {"controller": True, "blockOwnerDeletion": True}
    assert obj["metadata"] == {
        "generateName": "demo-",
        "namespace": "ns",
        "labels": {keys.CANARY_DEPLOYMENT_LABEL: "demo"},
        "annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: json.dumps(ref, separators=(",", ":"))},
        "finalizers": [keys.CANARY_DEPLOYMENT_FINALIZER],
        "ownerReferences": [ref],
    }
    assert (obj["spec"]["replicas"], obj["spec"]["paused"]) == (0, False)
    assert obj["spec"]["template"]["metadata"]["labels"] == {
        "app": "demo",
        "opensergo.io/canary-gray": "gray",
    }
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "demo"}}


def test_find_canary_takes_the_newest_live_one_with_the_stable_template() -> None:
    old, new = canary(name="old", created="1"), canary(name="new", created="2")
    gone = canary(name="gone", created="3", deletionTimestamp="x")
    other = canary(name="other", created="4")
    other["spec"]["template"] = {**STABLE_TEMPLATE, "spec": {"containers": [{"name": "main", "image": "v3"}]}}
    hashed = canary(name="hashed", created="0")
    hashed["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "x"
    found = find_canary(canary_obs(canaries=(old, new, gone, other, hashed)))
    assert found is not None
    assert found["metadata"]["name"] == "new"


def test_canary_initialize_claims_the_stable_and_creates_the_canary() -> None:
    step = CanaryStyle().initialize(canary_obs())
    assert not step.done
    claim, create = step.actions
    assert claim == Patch(
        "Deployment",
        "demo",
        {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release())}}},
    )
    assert isinstance(create, CreateCanary)
    assert (create.owner_uid, create.stable_name) == ("br-uid", "demo")


def test_canary_initialize_is_done_once_both_exist() -> None:
    claimed = stable()
    claimed["metadata"]["annotations"] = {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release())}
    assert CanaryStyle().initialize(canary_obs(workload=claimed, canaries=(canary(0),))) == Step(True)


def _claimed() -> dict[str, Any]:
    claimed = stable()
    claimed["metadata"]["annotations"] = {keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release())}
    return claimed


def test_the_canary_named_for_the_template_is_ours_though_its_stored_template_was_defaulted() -> None:
    """Deleting a canary as outdated must not hit the current one: a field defaulted on the canary's
    create only (imagePullPolicy) made its template differ from the stable's, so it was deleted and made
    again without end (tests/unit/runtime/test_release_defects.py, on this branch's first try)."""
    probe = canary_obs(workload=_claimed())
    assert probe.workload is not None
    mine = canary(0, name=canary_name(probe.workload, probe.release))
    mine["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    obs = canary_obs(workload=_claimed(), canaries=(mine,))

    assert find_canary(obs) == mine
    step = CanaryStyle().initialize(obs)
    assert not any(isinstance(action, Delete) for action in step.actions)
    assert step == Step(True)


def test_canary_initialize_deletes_an_outdated_canary_before_creating_the_new_one() -> None:
    """Issue 10 chaos (seed 7): a newer image or a rollback before the first batch was set up left an
    old-image and a new-image canary under one BatchRelease. The outdated one goes first."""
    outdated = canary(0, name="demo-old")
    outdated["spec"]["template"] = {
        **STABLE_TEMPLATE,
        "spec": {"containers": [{"name": "main", "image": "v1"}]},
    }
    first = CanaryStyle().initialize(canary_obs(workload=_claimed(), canaries=(outdated,)))
    fin = {"metadata": {"finalizers": [], "resourceVersion": None}}
    assert first == Step(
        False, (Patch("Deployment", "demo-old", fin), Delete("Deployment", "demo-old", "demo-old-uid"))
    )

    going = {
        **outdated,
        "metadata": {**outdated["metadata"], "deletionTimestamp": "x", "finalizers": ["other"]},
    }
    waiting = CanaryStyle().initialize(canary_obs(workload=_claimed(), canaries=(going,)))
    assert waiting == Step(False)  # no create while any other canary of this release is in the cache

    [create] = CanaryStyle().initialize(canary_obs(workload=_claimed())).actions
    assert isinstance(create, CreateCanary)


@pytest.mark.parametrize(
    ("replicas", "batch", "current", "want"),
    [
        (5, 0, 0, 1),
        (5, 1, 1, 5),  # ceil(5 x 90%) = 5: canary style is not capped
        (5, 0, 3, None),  # only ever scaled up
        (0, 0, 0, None),
    ],
)
def test_canary_upgrade(replicas: int, batch: int, current: int, want: int | None) -> None:
    step = CanaryStyle().upgrade(
        canary_obs(workload=stable(replicas=replicas), canaries=(canary(current),)), batch
    )
    assert step.done
    assert step.actions == (
        () if want is None else (Patch("Deployment", "demo-abcde", {"spec": {"replicas": want}}),)
    )


def test_canary_upgrade_waits_for_a_canary_its_controller_observed() -> None:
    lagging = canary(0)
    lagging["metadata"]["generation"] = 2
    assert CanaryStyle().upgrade(canary_obs(canaries=(lagging,)), 0) == Step(False)
    assert CanaryStyle().upgrade(canary_obs(), 0) == Step(False)


@pytest.mark.parametrize(
    ("batch", "updated", "ready", "threshold", "want"),
    [
        (0, 1, 1, None, True),
        (0, 1, 0, None, False),
        (1, 5, 4, None, False),
        (1, 5, 4, "20%", True),
        (1, 4, 4, "50%", False),
    ],
)
def test_canary_check(batch: int, updated: int, ready: int, threshold: str | None, want: bool) -> None:
    plan_obj = canary_plan(failureThreshold=threshold) if threshold else canary_plan()
    step = CanaryStyle().check(canary_obs(plan_obj, canaries=(canary(updated, ready=ready),)), batch)
    assert step.done is want


def test_canary_info_reads_the_canary_numbers() -> None:
    info = CanaryStyle().info(canary_obs(canaries=(canary(3, ready=2),)))
    assert info == WorkloadInfo(5, True, False, 3, 2, "update", "")


def test_canary_finalize_immediate_resumes_the_stable_and_removes_the_canary() -> None:
    claimed = stable()
    claimed["metadata"]["annotations"] = {keys.BATCH_RELEASE_CONTROL_ANNOTATION: "x"}
    live = canary(5, resourceVersion="7")
    step = CanaryStyle().finalize(canary_obs(canary_plan(batchPartition=None), claimed, (live,)))
    assert not step.done  # asked for, not yet seen: done is a checked end state (issue 10)
    resume = {
        "metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}},
        "spec": {"paused": False},
    }
    unfinalize = {"metadata": {"finalizers": [], "resourceVersion": "7"}}
    assert step.actions == (
        Patch("Deployment", "demo", resume),
        Patch("Deployment", "demo-abcde", unfinalize),
        Delete("Deployment", "demo-abcde", "demo-abcde-uid"),
    )
    # Seen handed back (resumed, control-info gone, observed by its controller) and the canary gone.
    assert CanaryStyle().finalize(canary_obs(canary_plan(batchPartition=None), stable(paused=False))) == Step(
        True
    )


def test_canary_finalize_wait_resume_keeps_the_canary_until_the_stable_is_done() -> None:
    plan_obj = canary_plan(batchPartition=None, finalizingPolicy="WaitResume")
    claimed = stable()
    claimed["metadata"]["annotations"] = {keys.BATCH_RELEASE_CONTROL_ANNOTATION: "x"}
    step = CanaryStyle().finalize(canary_obs(plan_obj, claimed, (canary(5),)))
    assert not step.done
    assert [type(a) for a in step.actions] == [Patch]

    rolling = stable(
        paused=False,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    rolling["status"] |= {"updatedReplicas": 3}
    assert CanaryStyle().finalize(canary_obs(plan_obj, rolling, (canary(5),))) == Step(False)

    # Mid-rollout: the old ReplicaSet is at 0, the new one at 4 of 5; created == updated, yet not done.
    rolling["status"] |= {"replicas": 4, "updatedReplicas": 4, "availableReplicas": 4}
    assert CanaryStyle().finalize(canary_obs(plan_obj, rolling, (canary(5),))) == Step(False)

    rolling["status"] |= {"replicas": 5, "updatedReplicas": 5, "availableReplicas": 4}  # 4 + 1 >= 5
    step = CanaryStyle().finalize(canary_obs(plan_obj, rolling, (canary(5),)))
    assert not step.done  # the canary is asked to go; done once it is seen gone
    assert Delete("Deployment", "demo-abcde", "demo-abcde-uid") in step.actions
    assert CanaryStyle().finalize(canary_obs(plan_obj, rolling)).done


def test_canary_finalize_with_the_workload_gone_only_releases_canaries() -> None:
    br = release(canary_plan(batchPartition=None))
    gone = canary(5, deletionTimestamp="x")
    step = CanaryStyle().finalize(BatchReleaseObserved(release=br, workload=None, now=NOW, canaries=(gone,)))
    assert not step.done  # done once the canary is seen gone
    assert step.actions == (
        Patch("Deployment", "demo-abcde", {"metadata": {"finalizers": [], "resourceVersion": None}}),
    )


# --- partition style ------------------------------------------------------------------------------


def deployment(*, controlled: bool = False, partition: Any = 0, **status: int) -> dict[str, Any]:
    dep = stable(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    )
    if controlled:
        dep["metadata"]["labels"] = {
            keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL: "true",
            keys.STABLE_REVISION_LABEL: "s1",
        }
        strategy = {
            "rollingStyle": "Partition",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            "partition": partition,
        }
        dep["metadata"]["annotations"] = {
            keys.DEPLOYMENT_STRATEGY_ANNOTATION: json.dumps(strategy, separators=(",", ":")),
            keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release()),
            keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION: json.dumps(
                {"updatedReadyReplicas": status.pop("ready", 0)}
            ),
        }
        dep["spec"]["strategy"] = {"type": "Recreate"}
    dep["status"] |= status
    return dep


def partition_obs(
    plan_obj: dict[str, Any] | None = None, workload: dict[str, Any] | None = None
) -> BatchReleaseObserved:
    br = release(plan_obj or release_plan(rollingStyle="Partition"))
    return BatchReleaseObserved(
        release=br, workload=workload or deployment(), now=NOW, update_revision="u1", stable_revision="s0"
    )


def test_partition_initialize_hands_the_deployment_to_the_advanced_controller() -> None:
    step = PartitionStyle().initialize(partition_obs())
    assert not step.done  # done once it is seen under control (checked below)
    strategy = (
        '{"rollingStyle":"Partition","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"},"partition":0}'
    )
    assert step.actions == (
        Patch(
            "Deployment",
            "demo",
            {
                "metadata": {
                    "labels": {keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL: "true"},
                    "annotations": {
                        keys.DEPLOYMENT_STRATEGY_ANNOTATION: strategy,
                        keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(release()),
                    },
                },
                "spec": {"paused": True, "strategy": {"type": "Recreate", "rollingUpdate": None}},
            },
        ),
    )
    assert PartitionStyle().initialize(partition_obs(workload=deployment(controlled=True))) == Step(True)


def test_partition_initialize_with_no_surge_and_no_unavailability_allows_one_unavailable() -> None:
    dep = stable(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    (patch,) = PartitionStyle().initialize(partition_obs(workload=dep)).actions
    assert isinstance(patch, Patch)
    value = patch.body["metadata"]["annotations"][keys.DEPLOYMENT_STRATEGY_ANNOTATION]
    assert json.loads(value)["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}


@pytest.mark.parametrize(
    ("current", "batch", "want"), [(0, 0, "20%"), ("20%", 1, "90%"), ("90%", 0, None), (0, 1, "90%")]
)
def test_partition_upgrade_writes_the_batch_as_partition(current: Any, batch: int, want: str | None) -> None:
    step = PartitionStyle().upgrade(
        partition_obs(workload=deployment(controlled=True, partition=current)), batch
    )
    assert step.done
    if want is None:
        assert step.actions == ()
        return
    (patch,) = step.actions
    assert isinstance(patch, Patch)
    assert (
        json.loads(patch.body["metadata"]["annotations"][keys.DEPLOYMENT_STRATEGY_ANNOTATION])["partition"]
        == want
    )


def test_partition_upgrade_leaves_a_deployment_out_of_control_alone() -> None:
    assert PartitionStyle().upgrade(partition_obs(), 0) == Step(True)


@pytest.mark.parametrize(
    ("batch", "updated", "ready", "want"),
    [(0, 1, 1, True), (0, 1, 0, False), (1, 4, 4, True), (1, 3, 3, False)],  # 90% of 5 is capped at 4
)
def test_partition_check(batch: int, updated: int, ready: int, want: bool) -> None:
    dep = deployment(controlled=True, updatedReplicas=updated, ready=ready)
    assert PartitionStyle().check(partition_obs(workload=dep), batch).done is want


def test_partition_info_prefers_the_stable_revision_label() -> None:
    info = PartitionStyle().info(
        partition_obs(workload=deployment(controlled=True, updatedReplicas=2, ready=1))
    )
    assert info == WorkloadInfo(5, True, False, 2, 1, "u1", "s1")


def test_partition_finalize_gives_the_deployment_back_to_the_native_controller() -> None:
    dep = deployment(controlled=True)
    dep["spec"]["paused"] = True
    (patch,) = PartitionStyle().finalize(partition_obs(release_plan(batchPartition=None), dep)).actions
    assert isinstance(patch, Patch)
    assert patch.body == {
        "metadata": {
            "annotations": {
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: None,
                keys.DEPLOYMENT_STRATEGY_ANNOTATION: None,
                keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION: None,
            },
            "labels": {keys.STABLE_REVISION_LABEL: None, keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL: None},
        },
        "spec": {
            "paused": False,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        },
    }


def test_partition_finalize_with_a_partition_only_drops_control_info() -> None:
    (patch,) = PartitionStyle().finalize(partition_obs(workload=deployment(controlled=True))).actions
    assert isinstance(patch, Patch)
    assert patch.body == {"metadata": {"annotations": {keys.BATCH_RELEASE_CONTROL_ANNOTATION: None}}}


def test_partition_finalize_has_nothing_to_do_for_a_released_or_missing_deployment() -> None:
    released = deployment()
    released["spec"]["paused"] = False  # released: resumed (a paused one is handed back first, below)
    assert PartitionStyle().finalize(partition_obs(release_plan(batchPartition=None), released)) == Step(True)
    br = release(release_plan(batchPartition=None))
    assert PartitionStyle().finalize(BatchReleaseObserved(release=br, workload=None, now=NOW)) == Step(True)


# --- both styles: edges -----------------------------------------------------------------------------


@pytest.mark.parametrize("style", [CanaryStyle(), PartitionStyle()])
def test_a_missing_workload_is_never_acted_on(style: CanaryStyle | PartitionStyle) -> None:
    obs = BatchReleaseObserved(release=release(canary_plan()), workload=None, now=NOW)
    assert style.info(obs) is None
    assert (style.initialize(obs), style.upgrade(obs, 0), style.check(obs, 0)) == (Step(False),) * 3


@pytest.mark.parametrize("style", [CanaryStyle(), PartitionStyle()])
def test_a_workload_scaled_to_zero_has_nothing_to_release(style: CanaryStyle | PartitionStyle) -> None:
    obs = BatchReleaseObserved(
        release=release(canary_plan()),
        workload=deployment(controlled=True) | {"spec": {"replicas": 0}},
        now=NOW,
    )
    assert (style.upgrade(obs, 0), style.check(obs, 0)) == (Step(True), Step(True))


def test_a_batch_with_a_rollout_id_also_waits_for_the_pod_labels() -> None:
    plan_obj = release_plan(rollingStyle="Partition", rolloutID="r1")
    dep = deployment(controlled=True, updatedReplicas=1, ready=1)
    unlabelled = BatchReleaseObserved(release=release(plan_obj), workload=dep, now=NOW, pods=(pod("a", "1"),))
    step = PartitionStyle().check(unlabelled, 0)
    assert not step.done
    assert [p.name for p in step.actions if isinstance(p, Patch)] == ["a"]
    labelled = pod("a", "1", **{keys.ROLLOUT_ID_LABEL: "r1", keys.ROLLOUT_BATCH_ID_LABEL: "1"})
    gone = pod("b", "2") | {"metadata": {"name": "b", "deletionTimestamp": "x"}}
    assert PartitionStyle().check(dataclasses.replace(unlabelled, pods=(labelled, gone)), 0) == Step(True)


def test_unreadable_annotations_read_as_absent() -> None:
    dep = deployment(controlled=True)
    dep["metadata"]["annotations"] |= {
        keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION: "{",
        keys.BATCH_RELEASE_CONTROL_ANNOTATION: "{",
    }
    info = PartitionStyle().info(partition_obs(workload=dep))
    assert info is not None
    assert info.updated_ready == 0
    claim, _ = CanaryStyle().initialize(canary_obs(workload=dep)).actions
    assert isinstance(claim, Patch)  # control-info that cannot be read is not ours: claim it again


def test_partition_finalize_of_a_deployment_already_resumed_still_removes_what_the_style_added() -> None:
    # Issue 10: "not paused" was read as "finalised", leaving Recreate and our keys behind.
    dep = deployment(controlled=True)
    dep["spec"]["paused"] = False
    step = PartitionStyle().finalize(partition_obs(release_plan(batchPartition=None), dep))
    assert not step.done
    (patch,) = step.actions
    assert isinstance(patch, Patch)
    assert "paused" not in patch.body["spec"]
    assert patch.body["spec"]["strategy"]["type"] == "RollingUpdate"
    assert keys.DEPLOYMENT_STRATEGY_ANNOTATION in patch.body["metadata"]["annotations"]


def test_canary_wait_resume_with_a_recreate_stable_tolerates_no_unavailable_pod() -> None:
    plan_obj = canary_plan(batchPartition=None, finalizingPolicy="WaitResume")
    recreate = stable(paused=False, strategy={"type": "Recreate"})
    recreate["status"] |= {"updatedReplicas": 5, "availableReplicas": 4}
    assert CanaryStyle().finalize(canary_obs(plan_obj, recreate)) == Step(False)
    recreate["status"] |= {"availableReplicas": 5}
    assert CanaryStyle().finalize(canary_obs(plan_obj, recreate)) == Step(True)
