"""Issue 10's release defects, reproduced deterministically: the Rollout and BatchRelease controllers on the
runtime, driven against the FakeApi with the interleavings that broke releases on a loaded cluster
(a cache that has not caught up with the controller's own write, a Rollout deleted before any
BatchRelease existed). Each test failed on the code before the runtime (see the commit that added it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.runtime.fakeapi import FakeApi
from tests.unit.runtime.harness import harness
from tests.unit.runtime.scenario import NS, batch_release, deployment, last_step_ready, rollout, template

from graylane.api import keys
from graylane.kube import resources as r
from graylane.kube.client import Obj

KEY = f"{NS}/demo"
OURS = (
    keys.IN_PROGRESSING_ANNOTATION,
    keys.BATCH_RELEASE_CONTROL_ANNOTATION,
    keys.DEPLOYMENT_STRATEGY_ANNOTATION,
    keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION,
)


def handed_back(dep: Obj) -> list[str]:
    """What is left of a release on the workload (empty: handed back to its native controller)."""
    left = [f"annotation {k}" for k in OURS if k in (dep["metadata"].get("annotations") or {})]
    if keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL in (dep["metadata"].get("labels") or {}):
        left.append("controlled-by label")
    if dep["spec"].get("paused"):
        left.append("paused")
    if dep["spec"].get("strategy", {}).get("type") == "Recreate":
        left.append("strategy Recreate")
    return left


def canaries(api: FakeApi) -> list[Obj]:
    return [
        o
        for (plural, _, _), o in api.objects.items()
        if plural == "deployments" and keys.CANARY_DEPLOYMENT_LABEL in (o["metadata"].get("labels") or {})
    ]


@pytest.mark.parametrize("style", ["Partition", "Canary"])
async def test_a_rollout_woken_before_its_own_status_write_is_cached_does_not_undo_the_hand_back(
    style: str,
) -> None:
    """Issue 10, defects 1 and 2: partition style reported success with the Deployment still paused
    (Recreate, annotations, label); canary style re-paused the stable Deployment after finalisation."""
    api = FakeApi()
    last_step_ready(api, style)
    async with harness(api) as h:
        api.hold("rollouts")  # the Rollout's cache lags behind its own status write
        await h.reconcile("rollout", KEY)  # last step done: finalising asks for batchPartition null
        await h.settle()
        await h.reconcile("batchrelease", KEY)  # Finalizing is stored first
        await h.settle()
        await h.reconcile("rollout", KEY)  # woken by the BatchRelease's event, from the old status
        await h.settle()
        await h.reconcile("batchrelease", KEY)
        api.release("rollouts")
        await h.run_until_quiet(["rollout", "batchrelease"])

        ro = api.stored(r.ROLLOUT, "demo")
        assert ro is not None
        succeeded = [c for c in ro["status"]["conditions"] if c["type"] == "Succeeded"]
        assert (ro["status"]["phase"], [c["status"] for c in succeeded]) == ("Healthy", ["True"])
        dep = api.stored(r.DEPLOYMENT, "demo")
        assert dep is not None
        assert handed_back(dep) == []
        if style == "Partition":
            assert dep["spec"]["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            }
        assert canaries(api) == []
        assert api.stored(r.BATCHRELEASE, "demo") is None


def _held_by_webhook(style: str) -> Obj:
    """The Deployment right after `kubectl set image`: paused, in-progressing, nothing else yet."""
    dep = deployment(style, batch_release(style))
    dep["metadata"]["annotations"] = {keys.IN_PROGRESSING_ANNOTATION: json.dumps({"rolloutName": "demo"})}
    dep["metadata"]["labels"].pop(keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL, None)
    dep["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    dep["status"]["updatedReplicas"] = 0
    return dep


def _healthy_rollout(style: str) -> Obj:
    healthy = {"phase": "Healthy", "observedGeneration": 1, "message": "rollout is healthy"}
    return rollout(style, status=healthy)


def _rollout_in_step_one(style: str) -> Obj:
    status: dict[str, Any] = {
        "phase": "Progressing",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "InRolling",
                "message": "Rollout is in Progressing",
                "lastUpdateTime": "2026-01-01T00:00:05Z",
                "lastTransitionTime": "2026-01-01T00:00:05Z",
            }
        ],
        "canaryStatus": {
            "stableRevision": "h1",
            "currentStepIndex": 1,
            "nextStepIndex": 2,
            "currentStepState": "StepUpgrade",
            "lastUpdateTime": "2026-01-01T00:00:05Z",
        },
    }
    return rollout(style, status=status)


def _fresh_batch_release(style: str) -> Obj:
    br = batch_release(style)
    br["spec"]["releasePlan"]["batchPartition"] = 0
    br.pop("status")
    return br


@pytest.mark.parametrize("style", ["Partition", "Canary"])
@pytest.mark.parametrize(
    "moment", ["before the Rollout saw the release", "before the BatchRelease took control"]
)
async def test_deleting_a_rollout_just_after_a_release_started_leaves_the_workload_rolling(
    style: str, moment: str
) -> None:
    """Issue 10, defect 3: deleting a Rollout 0.3-0.9 s after a release started left the Deployment
    paused forever (template v2, pods v1)."""
    api = FakeApi()
    api.put(r.DEPLOYMENT, _held_by_webhook(style))
    api.put(r.REPLICASET, _stable_replica_set())
    if moment == "before the Rollout saw the release":
        api.put(r.ROLLOUT, _healthy_rollout(style))
    else:
        api.put(r.ROLLOUT, _rollout_in_step_one(style))
        api.put(r.BATCHRELEASE, _fresh_batch_release(style))
    async with harness(api) as h:
        await api.remove(r.ROLLOUT, "demo", NS)  # held by its finalizer: marked for deletion
        # The Deployment controller writes the Deployment's status at the same moment: the first
        # guarded hand-back loses the race, as it did on a loaded cluster.
        api.fail("patch", "deployments", 409, "Conflict", "the object has been modified")
        await h.run_until_quiet(["rollout", "batchrelease"])

        assert api.stored(r.ROLLOUT, "demo") is None  # finalised and gone
        dep = api.stored(r.DEPLOYMENT, "demo")
        assert dep is not None
        assert handed_back(dep) == []
        assert canaries(api) == []


def _stable_replica_set() -> Obj:
    return {
        "metadata": {
            "name": "demo-h1",
            "namespace": NS,
            "labels": {"app": "demo", "pod-template-hash": "h1"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "demo",
                    "uid": "dep-uid",
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": 5, "template": template("demo:v1", "h1")},
        "status": {"replicas": 5, "readyReplicas": 5, "availableReplicas": 5},
    }


async def test_a_canary_batch_never_gets_a_second_canary_deployment_from_a_lagging_cache() -> None:
    """Issue 10, defect 4: a canary-style batch of 1 was seen with 2 new pods Ready, a second canary
    Deployment created while the first was not cached yet."""
    api = FakeApi()
    api.put(r.DEPLOYMENT, _held_by_webhook("Canary"))
    api.put(r.REPLICASET, _stable_replica_set())
    api.put(r.BATCHRELEASE, _fresh_batch_release("Canary"))
    async with harness(api) as h:
        await h.reconcile("batchrelease", KEY)  # Preparing is stored first
        await h.settle()
        api.hold("deployments")  # the canary's creation lags in the cache
        for _ in range(3):
            await h.reconcile("batchrelease", KEY)
            await h.settle()
        assert len(canaries(api)) == 1
        api.release("deployments")
        await h.run_until_quiet(["batchrelease"])
        assert len(canaries(api)) == 1
        assert api.count("create", "deployments") == 1
