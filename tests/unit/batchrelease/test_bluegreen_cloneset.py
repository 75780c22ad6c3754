"""Blue-green style for an OpenKruise CloneSet: Kruise's knobs, per batch, and the restore."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.batchrelease.bluegreen_cloneset import BlueGreenCloneSet, pods_wanted
from graylane.batchrelease.bluegreen_style import MAX_READY_SECONDS
from graylane.batchrelease.partition_style import control_info
from graylane.batchrelease.planner import BatchReleaseObserved, Delete, Patch

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
CONTROL = BlueGreenCloneSet()
SAVED = '{"maxUnavailable":"20%","maxSurge":"0%","minReadySeconds":3}'


def _release(partition: int | None = 0) -> BatchRelease:
    return BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "br-uid", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "demo"},
                "releasePlan": {
                    "batches": [{"canaryReplicas": "100%"}, {"canaryReplicas": "100%"}],
                    "batchPartition": partition,
                    "rollingStyle": "BlueGreen",
                },
            },
        }
    )


def _cloneset(*, controlled: bool = False, **status: Any) -> dict[str, Any]:
    annotations = (
        {
            keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(_release()),
            keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: SAVED,
        }
        if controlled
        else {}
    )
    strategy: dict[str, Any] = {"type": "ReCreate", "partition": "100%"}
    if controlled:
        strategy.update(maxSurge=1, maxUnavailable=0, paused=False)
    return {
        "metadata": {"name": "demo", "generation": 2, "resourceVersion": "7", "annotations": annotations},
        "spec": {
            "replicas": 4,
            "minReadySeconds": MAX_READY_SECONDS if controlled else 3,
            "updateStrategy": strategy,
        },
        "status": {"observedGeneration": 2, **status},
    }


def _obs(cs: dict[str, Any], *, partition: int | None = 0, **more: Any) -> BatchReleaseObserved:
    return BatchReleaseObserved(
        release=_release(partition),
        workload=cs,
        now=NOW,
        update_revision="new",
        stable_revision="old",
        **more,
    )


def _hpa(target: str) -> dict[str, Any]:
    ref = {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": target}
    return {"metadata": {"name": "demo"}, "spec": {"scaleTargetRef": ref}}


def test_initialize_saves_cloneset_defaults_and_holds_old_pods() -> None:
    step = CONTROL.initialize(_obs(_cloneset(), hpas=(_hpa("demo"),)))
    hpa, cs = step.actions
    assert hpa.body["spec"]["scaleTargetRef"]["name"] == "demo-DisableByRollout"
    assert cs.body["metadata"]["annotations"][keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION] == SAVED
    assert cs.body["spec"] == {
        "updateStrategy": {"paused": False, "maxSurge": 1, "maxUnavailable": 0},
        "minReadySeconds": MAX_READY_SECONDS,
    }
    assert cs.guard == "7"
    assert CONTROL.initialize(_obs(_cloneset(controlled=True))).done


def test_a_batch_drops_the_partition_and_surges() -> None:
    step = CONTROL.upgrade(_obs(_cloneset(controlled=True)), 0)
    assert step.actions == (
        Patch("CloneSet", "demo", {"spec": {"updateStrategy": {"partition": None, "maxSurge": "100%"}}}, "7"),
    )
    plain = CONTROL.upgrade(_obs(_cloneset()), 0)
    assert (plain.done, plain.actions) == (False, ())  # not under blue-green settings: never surged


def test_batch_readiness_uses_the_updated_ready_pods() -> None:
    assert CONTROL.check(_obs(_cloneset(controlled=True, updatedReplicas=4, updatedReadyReplicas=4)), 0).done
    assert not CONTROL.check(
        _obs(_cloneset(controlled=True, updatedReplicas=4, updatedReadyReplicas=3)), 0
    ).done


def test_finalize_restores_then_waits_then_re_enables_the_hpa() -> None:
    [restore] = CONTROL.finalize(_obs(_cloneset(controlled=True), partition=None)).actions
    assert restore.body["spec"] == {
        "minReadySeconds": 3,
        "updateStrategy": {"maxSurge": "0%", "maxUnavailable": "20%", "partition": None},
    }
    assert restore.body["metadata"]["annotations"] == {
        keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: None,
        keys.BATCH_RELEASE_CONTROL_ANNOTATION: None,
    }
    hpas = (_hpa("demo-DisableByRollout"),)
    waiting = _cloneset(readyReplicas=8, updatedReadyReplicas=4)
    assert CONTROL.finalize(_obs(waiting, partition=None, hpas=hpas)).actions == ()
    ready = _cloneset(readyReplicas=4, updatedReadyReplicas=4)
    [hpa] = CONTROL.finalize(_obs(ready, partition=None, hpas=hpas)).actions
    assert hpa.body["spec"]["scaleTargetRef"]["name"] == "demo"
    assert CONTROL.finalize(_obs(ready, partition=None, hpas=(_hpa("demo"),))).done


# -- a CloneSet scaled mid-release ------------------------------------------------------------------


def _pod(name: str, revision: str, *, created: str, ready: bool = True) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "labels": {
                keys.CONTROLLER_REVISION_HASH_LABEL: f"demo-{revision}",
                keys.POD_TEMPLATE_HASH_LABEL: revision,
            },
        },
        "status": {"conditions": [condition]},
    }


def _scaled(
    replicas: int, old: int, new: int, *, surge: str = "100%", observed: bool = True, **more: Any
) -> BatchReleaseObserved:
    """A CloneSet at a blue-green batch (partition cleared, maxSurge the batch's), scaled to `replicas`,
    with `old` + `new` pods listed (new ones created a minute apart, in order)."""
    cs = _cloneset(controlled=True)
    cs["spec"]["replicas"] = replicas
    cs["spec"]["updateStrategy"] = {
        "type": "ReCreate",
        "maxSurge": surge,
        "maxUnavailable": 0,
        "paused": False,
    }
    cs["status"] = {"observedGeneration": 2 if observed else 1, "replicas": old + new, "updatedReplicas": new}
    cs["status"] |= {"updatedReadyReplicas": new, "readyReplicas": old + new}
    pods = [_pod(f"old-{i}", "old", created="2026-11-22T10:00:00Z") for i in range(old)]
    pods += [_pod(f"new-{i}", "new", created=f"2026-11-22T11:{i:02d}:00Z", **more) for i in range(new)]
    release = _release().to_obj()
    release["spec"]["releasePlan"]["batches"][0]["canaryReplicas"] = surge  # maxSurge = the step's replicas
    release["status"] = {"updateRevision": "new"}
    return BatchReleaseObserved(
        release=BatchRelease.from_obj(release),
        workload=cs,
        now=NOW,
        update_revision="new",
        stable_revision="old",
        pods=tuple(pods),
    )


@pytest.mark.parametrize(
    ("replicas", "old", "new", "surge", "deleted"),
    [
        # 8 -> 5 at a 100% step: 3 new pods too many; 4 + 5 is what the CloneSet keeps (no surge left).
        (5, 4, 8, "100%", ["new-7", "new-6", "new-5"]),
        (4, 4, 8, "100%", ["new-7", "new-6", "new-5", "new-4"]),
        # At the step's share already: nothing.
        (8, 4, 8, "100%", []),
        (6, 4, 4, "100%", []),
        # 50% of 8 is 4, but with 4 new pods the CloneSet wants 8 + min(4, 4, 4) = 12 pods and would
        # surge 4 back: 6 are kept (8 + min(4, 4, 2) = 10 = 4 + 6), 2 go.
        (8, 4, 8, "50%", ["new-7", "new-6"]),
    ],
)
def test_a_scaled_in_cloneset_loses_only_the_new_pods_it_would_not_surge_back(
    replicas: int, old: int, new: int, surge: str, deleted: list[str]
) -> None:
    step = CONTROL.upgrade(_scaled(replicas, old, new, surge=surge), 0)
    assert [a.name for a in step.actions if isinstance(a, Delete)] == deleted
    assert all(a.kind == "Pod" and a.uid == f"uid-{a.name}" for a in step.actions if isinstance(a, Delete))
    assert step.done is not bool(deleted)


def test_not_ready_new_pods_go_first() -> None:
    obs = _scaled(5, 4, 8)
    pods = [*obs.pods[:-1], _pod("new-7", "new", created="2026-11-22T11:07:00Z")]
    pods[5] = _pod("new-1", "new", created="2026-11-22T11:01:00Z", ready=False)
    step = CONTROL.upgrade(dataclasses.replace(obs, pods=tuple(pods)), 0)
    assert [a.name for a in step.actions] == ["new-1", "new-7", "new-6"]


@pytest.mark.parametrize(
    "obs",
    [
        pytest.param(_scaled(5, 4, 8, observed=False), id="scale-not-observed"),
        pytest.param(
            dataclasses.replace(_scaled(5, 4, 8), pods=_scaled(5, 4, 8).pods[:-1]),
            id="status-counts-other-pods",
        ),
        pytest.param(dataclasses.replace(_scaled(5, 4, 8), update_revision="newer"), id="template-changed"),
    ],
)
def test_no_pod_is_deleted_while_the_cloneset_is_catching_up(obs: BatchReleaseObserved) -> None:
    assert not [a for a in CONTROL.upgrade(obs, 0).actions if isinstance(a, Delete)]


@pytest.mark.parametrize(
    ("replicas", "old", "new", "done"),
    [
        # 4 + 4 scaled to 6: the CloneSet wants 6 + min(6, 4, 2) = 8 pods, has 8: 4 new is all it makes.
        (6, 4, 4, True),
        # 4 + 4 scaled to 8: it wants 8 + 4 = 12, has 8: it is still creating; wait for 8.
        (8, 4, 4, False),
        (8, 4, 8, True),
        # 4 + 5 scaled to 6: 6 + min(6, 4, 1) = 7 < 9: five is all.
        (6, 4, 5, True),
    ],
)
def test_a_batch_is_done_once_the_cloneset_will_surge_no_further(
    replicas: int, old: int, new: int, done: bool
) -> None:
    assert CONTROL.check(_scaled(replicas, old, new), 0).done is done


def test_a_batch_still_waits_for_a_cloneset_behind_its_spec() -> None:
    assert CONTROL.check(_scaled(6, 4, 4, observed=False), 0).done is False


@pytest.mark.parametrize(
    ("replicas", "surge", "partition", "old", "new", "wanted"),
    [
        (4, 4, 0, 4, 0, 8),  # the first surge: 4 new beside 4 old
        (4, 4, 0, 4, 4, 4),  # every new pod there: no surge left
        (8, 8, 0, 4, 4, 12),
        (6, 6, 0, 4, 4, 8),
        (4, 2, 0, 4, 0, 6),  # 50%: maxSurge limits it
        (4, 4, 4, 4, 0, 4),  # partition 100%: nothing to update, no surge
        (4, 0, 0, 4, 0, 4),  # no maxSurge
    ],
)
def test_pods_wanted_is_openkruise_arithmetic(
    replicas: int, surge: int, partition: int, old: int, new: int, wanted: int
) -> None:
    assert pods_wanted(replicas, surge, partition, old, new) == wanted


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param({"partition": "100%", "maxSurge": 1}, id="initialize-settings"),
        pytest.param({"maxSurge": 2}, id="surge-below-the-batch"),
    ],
)
def test_a_batch_is_not_done_before_its_settings_are_on_the_cloneset(strategy: dict[str, Any]) -> None:
    """A cached CloneSet still under Initialize's partition wants no pod: that is no finished batch."""
    obs = _scaled(4, 4, 0)
    assert obs.workload is not None
    cs = {
        **obs.workload,
        "spec": {**obs.workload["spec"], "updateStrategy": {"type": "ReCreate", **strategy}},
    }
    assert CONTROL.check(dataclasses.replace(obs, workload=cs), 0).done is False
