"""Blue-green style for a Deployment: the knobs it sets, per batch, and exactly what it restores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.batchrelease import BatchRelease
from graylane.batchrelease.bluegreen_style import (
    MAX_PROGRESS_SECONDS,
    MAX_READY_SECONDS,
    BlueGreenDeployment,
    OriginalSetting,
    hpa_for,
)
from graylane.batchrelease.partition_style import control_info
from graylane.batchrelease.planner import BatchReleaseObserved, Patch, Step

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
CONTROL = BlueGreenDeployment()
SAVED = '{"maxUnavailable":"25%","maxSurge":"25%","minReadySeconds":7,"progressDeadlineSeconds":600}'


def _release(partition: int | None = 0) -> BatchRelease:
    return BatchRelease.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "br-uid", "generation": 1},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "releasePlan": {
                    "batches": [{"canaryReplicas": "50%"}, {"canaryReplicas": "100%"}],
                    "batchPartition": partition,
                    "rollingStyle": "BlueGreen",
                },
            },
        }
    )


def _deployment(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "demo",
            "namespace": "ns",
            "generation": 4,
            "resourceVersion": "42",
            "annotations": {},
        },
        "spec": {
            "replicas": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            **spec,
        },
        "status": {"observedGeneration": 4, "replicas": 5, "updatedReplicas": 0},
    }


def _under_control(**status: Any) -> dict[str, Any]:
    dep = _deployment(
        minReadySeconds=MAX_READY_SECONDS,
        progressDeadlineSeconds=MAX_PROGRESS_SECONDS,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        paused=True,
    )
    dep["metadata"]["annotations"] = {
        keys.BATCH_RELEASE_CONTROL_ANNOTATION: control_info(_release()),
        keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: SAVED,
    }
    dep["status"].update(status)
    return dep


def _rs(revision: str, *, ready: int = 0, min_ready: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": f"demo-{revision}", "labels": {"pod-template-hash": revision}},
        "spec": {"replicas": 5, "minReadySeconds": min_ready},
        "status": {"readyReplicas": ready},
    }


def _hpa(target: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}},
    }


def _obs(
    dep: dict[str, Any] | None, *, partition: int | None = 0, held: bool = True, **more: Any
) -> BatchReleaseObserved:
    return BatchReleaseObserved(
        release=_release(partition),
        workload=dep,
        now=NOW,
        update_revision="new",
        stable_revision="old",
        release_held=held,
        **more,
    )


def test_initialize_disables_the_hpa_holds_old_pods_and_saves_the_original_settings() -> None:
    dep = _deployment(minReadySeconds=7)
    step = CONTROL.initialize(_obs(dep, replica_sets=(_rs("old"),), hpas=(_hpa("demo"), _hpa("other"))))
    assert not step.done  # done once the patch is seen
    hpa, rs, deployment = step.actions
    assert hpa == Patch(
        "HorizontalPodAutoscaler",
        "demo-hpa",
        {
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "demo-DisableByRollout",
                }
            }
        },
    )
    assert rs == Patch("ReplicaSet", "demo-old", {"spec": {"minReadySeconds": MAX_READY_SECONDS}})
    assert deployment.guard == "42"
    body = deployment.body
    # Go's field order and omitempty: the annotation reads as Kruise writes it.
    assert (
        body["metadata"]["annotations"][keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION]
        == '{"maxUnavailable":"25%","maxSurge":"25%","minReadySeconds":7,"progressDeadlineSeconds":600}'
    )
    assert body["spec"] == {
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "minReadySeconds": MAX_READY_SECONDS,
        "progressDeadlineSeconds": MAX_PROGRESS_SECONDS,
    }


def test_initialize_is_done_once_the_deployment_is_under_control() -> None:
    assert CONTROL.initialize(_obs(_under_control())).done


def test_a_second_initialize_never_saves_its_own_values_as_the_users() -> None:
    """The first Initialize landed with another BatchRelease's control-info: the saved settings stay."""
    dep = _under_control()
    dep["metadata"]["annotations"][keys.BATCH_RELEASE_CONTROL_ANNOTATION] = '{"uid":"someone-else"}'
    deployment = CONTROL.initialize(_obs(dep)).actions[-1]
    saved = json.loads(
        deployment.body["metadata"]["annotations"][keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION]
    )
    assert saved == {
        "maxUnavailable": "25%",
        "maxSurge": "25%",
        "minReadySeconds": 7,
        "progressDeadlineSeconds": 600,
    }


def test_defaults_are_saved_for_a_deployment_without_a_rolling_update() -> None:
    dep = _deployment()
    del dep["spec"]["strategy"]
    saved = OriginalSetting().filled_from(dep)
    assert saved.dump() == '{"maxUnavailable":"25%","maxSurge":"25%","progressDeadlineSeconds":600}'


@pytest.mark.parametrize(("batch", "surge"), [(0, "50%"), (1, "100%")])
def test_each_batch_unpauses_and_raises_max_surge(batch: int, surge: str) -> None:
    step = CONTROL.upgrade(_obs(_under_control()), batch)
    assert step.done
    [patch] = step.actions
    assert patch.body == {
        "spec": {
            "paused": False,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}},
        }
    }
    assert patch.guard == "42"


def test_a_batch_already_surged_does_nothing() -> None:
    dep = _under_control()
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "100%"
    assert CONTROL.upgrade(_obs(dep), 0).actions == ()


def test_a_deployment_not_under_blue_green_settings_is_never_surged() -> None:
    step = CONTROL.upgrade(_obs(_deployment()), 0)
    assert (step.done, step.actions) == (False, ())


@pytest.mark.parametrize(
    ("batch", "updated", "ready", "done"),
    [
        (0, 3, 3, True),  # 50% of 5 is 2.5, rounded up: 3 new pods beside the 5 old ones
        (0, 3, 2, False),
        (1, 5, 5, True),
        (1, 4, 4, False),
    ],
)
def test_batch_readiness_counts_the_new_replica_set(batch: int, updated: int, ready: int, done: bool) -> None:
    dep = _under_control(updatedReplicas=updated)
    obs = _obs(dep, replica_sets=(_rs("old", ready=5), _rs("new", ready=ready)))
    assert CONTROL.check(obs, batch).done is done


def test_finalize_restores_every_saved_setting_and_the_old_replica_sets() -> None:
    obs = _obs(
        _under_control(), partition=None, replica_sets=(_rs("old", min_ready=MAX_READY_SECONDS), _rs("new"))
    )
    step = CONTROL.finalize(obs)
    assert not step.done
    rs, dep = step.actions
    assert rs == Patch("ReplicaSet", "demo-old", {"spec": {"minReadySeconds": 7}})
    assert dep.guard == ""  # fixed values from the annotation the same patch removes
    assert dep.body == {
        "metadata": {
            "annotations": {
                keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION: None,
                keys.BATCH_RELEASE_CONTROL_ANNOTATION: None,
            },
            "labels": {keys.STABLE_REVISION_LABEL: None},
        },
        "spec": {
            "paused": False,
            "minReadySeconds": 7,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        },
    }


def _restored(**status: Any) -> dict[str, Any]:
    dep = _deployment(minReadySeconds=7)
    dep["status"].update(status)
    return dep


def test_finalize_waits_for_every_pod_updated_and_ready_then_re_enables_the_hpa() -> None:
    hpas = (_hpa("demo-DisableByRollout"),)
    waiting = _restored(replicas=10, updatedReplicas=5, readyReplicas=10, availableReplicas=5)
    assert CONTROL.finalize(_obs(waiting, partition=None, hpas=hpas)).actions == ()
    ready = _restored(replicas=5, updatedReplicas=5, readyReplicas=5, availableReplicas=5)
    step = CONTROL.finalize(_obs(ready, partition=None, hpas=hpas))
    assert not step.done
    [patch] = step.actions
    assert patch.body["spec"]["scaleTargetRef"]["name"] == "demo"
    assert CONTROL.finalize(_obs(ready, partition=None, hpas=(_hpa("demo"),))).done


def test_a_continuous_release_leaves_the_workload_as_it_is() -> None:
    step = CONTROL.finalize(_obs(_under_control(), partition=0, held=True))
    assert (step.done, step.actions) == (True, ())


def test_hpa_lookup_ignores_other_workloads_and_kinds() -> None:
    other_kind = {
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "demo"}
        },
    }
    assert hpa_for([other_kind, _hpa("other")], "Deployment", "demo") is None
    assert hpa_for([_hpa("demo-DisableByRollout")], "Deployment", "demo") is not None


# -- a Deployment scaled mid-release ---------------------------------------------------------------


def _scaled_rs(revision: str, replicas: int, desired: int) -> dict[str, Any]:
    rs = _rs(revision)
    rs["metadata"]["resourceVersion"] = f"rv-{revision}"
    rs["metadata"]["annotations"] = {"deployment.kubernetes.io/desired-replicas": str(desired)}
    rs["spec"]["replicas"] = replicas
    return rs


def _scaled_to(replicas: int, surge: str, *sets: dict[str, Any]) -> BatchReleaseObserved:
    dep = _under_control()
    dep["spec"]["replicas"] = replicas
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = surge
    return _obs(dep, replica_sets=sets)


def _replicas(patches: tuple[Patch, ...]) -> dict[str, tuple[int, str]]:
    return {p.name: (p.body["spec"]["replicas"], p.guard) for p in patches}


@pytest.mark.parametrize(
    ("replicas", "old", "new", "want"),
    [
        # 1 + 1 scaled to 7 at 50%: the controller's proportions left 5 old + 6 new; 7 + 4 wanted.
        (7, 5, 6, {"demo-old": (7, "rv-old"), "demo-new": (4, "rv-new")}),
        # 5 + 6 scaled to 3: 2 old + 3 new; 3 + 2 wanted.
        (3, 2, 3, {"demo-old": (3, "rv-old"), "demo-new": (2, "rv-new")}),
        # An old pod too many would keep the new ones below the batch: the old ones go to replicas.
        (5, 6, 2, {"demo-old": (5, "rv-old")}),
        # 8 old + 4 new is what 4 + 2 scaled to 8 gives: right already, nothing to do.
        (8, 8, 4, {}),
    ],
)
def test_a_scaled_deployment_keeps_every_old_pod_and_the_batchs_new_ones(
    replicas: int, old: int, new: int, want: dict[str, tuple[int, str]]
) -> None:
    obs = _scaled_to(replicas, "50%", _scaled_rs("old", old, replicas), _scaled_rs("new", new, replicas))
    step = CONTROL.upgrade(obs, 0)
    if want:
        assert (step.done, _replicas(step.actions)) == (False, want)
    else:
        assert step.done  # on to the surge, which is set already
        assert step.actions == ()


def test_a_scale_the_deployment_controller_has_not_applied_yet_is_waited_for() -> None:
    # The Deployment says 7, its ReplicaSets were last scaled for 2: the controller's proportions come.
    obs = _scaled_to(7, "50%", _scaled_rs("old", 1, 2), _scaled_rs("new", 1, 2))
    assert CONTROL.upgrade(obs, 0) == Step(False)


def test_old_replica_sets_scaled_to_zero_long_ago_do_not_hold_the_rebalance() -> None:
    older = _scaled_rs("older", 0, 3)  # an earlier release's: its annotation is from another size
    obs = _scaled_to(7, "50%", older, _scaled_rs("old", 5, 7), _scaled_rs("new", 6, 7))
    assert _replicas(CONTROL.upgrade(obs, 0).actions) == {
        "demo-old": (7, "rv-old"),
        "demo-new": (4, "rv-new"),
    }
