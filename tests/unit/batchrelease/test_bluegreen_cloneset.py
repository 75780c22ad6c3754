"""Blue-green style for an OpenKruise CloneSet: Kruise's knobs, per batch, and the restore."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.batchrelease.bluegreen_cloneset import BlueGreenCloneSet
from graylane.batchrelease.bluegreen_style import MAX_READY_SECONDS
from graylane.batchrelease.partition_style import control_info
from graylane.batchrelease.planner import BatchReleaseObserved, Patch

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
