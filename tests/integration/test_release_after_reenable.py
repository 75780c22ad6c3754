"""A release after the Rollout was deleted and created again, then disabled mid-release and re-enabled.

Chaos seed 3, lane chaos-28071-07 (partition style, v1alpha1, nginx Ingress, 3 pods): release 1 deleted
the Rollout (the harness created it again), release 2 disabled it mid-release, the lane re-enabled it and
saw it Healthy, and release 3's image was never released: the Deployment rolled natively and the
Rollout stayed Healthy, still showing release 2's Progressing True/InRolling, for 300 s. The API server
had restarted between the re-enable and release 3's image: the image reached the webhook while the
Rollout informer had not listed again, and a cache that still shows the Rollout Disabled lets any
release through (a Disabled Rollout holds nothing, reference §2.8).

The lane's sequence here is driven step by step through the real controller, and the webhook's decision
for the next image is asked once more with its Rollout cache frozen at the Disabled Rollout, against
the API server as the controller left it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.webhook import admission as adm
from graylane.webhook.server import KubeRolloutLister
from graylane.webhook.workload import DeploymentMutator, KubeReplicaSetLister
from tests.integration.builders import set_image_patch
from tests.integration.release_dsl import V1, V2, V3, Release, paused_at
from tests.integration.traffic_fixtures import ingress, service
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

Obj = dict[str, Any]
NAME = "web"
V4 = "demo:v4"
REPLICAS = 3
IN_PROGRESSING = "rollouts.kruise.io/in-progressing"


def _rollout() -> Obj:
    """The lane's Rollout as the chaos harness writes it: v1alpha1, partition style, nginx Ingress."""
    steps = [
        {"replicas": 1, "pause": {}},
        {"replicas": "50%", "pause": {"duration": 1}},
        {"replicas": "100%"},
    ]
    routing = {"service": NAME, "gracePeriodSeconds": 0, "ingress": {"name": NAME, "classType": "nginx"}}
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "annotations": {"rollouts.kruise.io/rolling-style": "partition"}},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}},
            "strategy": {"canary": {"steps": steps, "trafficRoutings": [routing]}},
        },
    }


class FrozenRollouts:
    """The webhook's Rollout cache as it was before the re-enable reached it."""

    def __init__(self, rollouts: list[Obj]) -> None:
        self.rollouts = rollouts

    async def list_rollouts(self, namespace: str) -> list[Obj]:
        return copy.deepcopy(self.rollouts)


def _phase(phase: str) -> Callable[[Obj], bool]:
    def check(ro: Obj) -> bool:
        status = ro.get("status") or {}
        observed = status.get("observedGeneration") == ro["metadata"].get("generation")
        return bool(observed and status.get("phase") == phase)

    return check


def _revision(ro: Obj) -> str:
    return str((ro["status"].get("canaryStatus") or {}).get("canaryRevision") or "")


def _condition(ro: Obj, kind: str) -> Obj:
    return next((c for c in ro["status"].get("conditions") or [] if c["type"] == kind), {})


async def _no_rollout(rel: Release) -> bool:
    return await rel.kube.get_or_none(rel.rollout_resource, NAME, rel.namespace) is None


async def _handed_back(rel: Release, image: str) -> Obj:
    """The Deployment unpaused, free of the release's hold, and all its pods on `image`."""
    await rel.then_pods({image: REPLICAS}, what=f"{REPLICAS} {image} pods")
    return await eventually(
        rel.deployment,
        lambda d: (
            not d["spec"].get("paused") and IN_PROGRESSING not in (d["metadata"].get("annotations") or {})
        ),
        what="the Deployment handed back",
    )


async def _the_lane(kube: KubeClient, namespace: str) -> Release:
    await kube.create(r.SERVICE, service(namespace, NAME, app=NAME))
    await kube.create(r.INGRESS, ingress(namespace, NAME, NAME))
    rel = Release(kube, namespace, name=NAME)
    await rel.given_deployment(replicas=REPLICAS, image=V1)
    await rel.given_rollout(_rollout())
    return rel


async def _deleted_mid_release_and_created_again(rel: Release) -> None:
    await rel.when_image(V2)
    await eventually(rel.rollout, _phase("Progressing"), what="release 1 progressing")
    await rel.kube.delete(rel.rollout_resource, NAME, rel.namespace)
    await eventually(lambda: _no_rollout(rel), bool, what="the Rollout gone", timeout=120)
    await _handed_back(rel, V2)
    await rel.given_rollout(_rollout())


async def _disabled_mid_release(rel: Release) -> Obj:
    """Release 2 disabled once it runs its steps; returns the Disabled Rollout (v1beta1, as the webhook
    cache holds it)."""
    await rel.when_image(V3)
    await rel.then_paused_at(1)
    await rel.kube.patch(rel.rollout_resource, NAME, {"spec": {"disabled": True}}, rel.namespace)
    disabled = await eventually(rel.rollout, _phase("Disabled"), what="release 2 disabled")
    assert disabled["status"]["message"] == "Rollout is disabled"
    await _handed_back(rel, V3)
    return disabled


def _admission(old: Obj, new: Obj) -> adm.AdmissionRequest:
    return adm.AdmissionRequest(
        review_version="admission.k8s.io/v1",
        uid="release-3",
        operation="UPDATE",
        group="apps",
        version="v1",
        kind="Deployment",
        resource="deployments",
        sub_resource="",
        namespace=old["metadata"]["namespace"],
        name=NAME,
        object=new,
        old_object=old,
    )


async def test_a_release_after_delete_disable_and_reenable_is_run_by_the_rollout(
    kube: KubeClient, namespace: str
) -> None:
    rel = await _the_lane(kube, namespace)
    await _deleted_mid_release_and_created_again(rel)
    disabled = await _disabled_mid_release(rel)

    await rel.kube.patch(rel.rollout_resource, NAME, {"spec": {"disabled": False}}, namespace)
    healthy = await eventually(rel.rollout, _phase("Healthy"), what="re-enabled and Healthy")
    # Kruise's Disabling sets the phase and message only (reconcileRolloutDisabling): release 2's
    # Progressing True/InRolling stays through Disabled and Healthy until the next release.
    assert healthy["status"]["message"] == "rollout is healthy"
    assert _condition(healthy, "Progressing")["reason"] == "InRolling"

    # Release 3's image as the webhook is asked for it, its Rollout cache frozen at the Disabled Rollout.
    old = await rel.deployment()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = V4
    frozen, replica_sets = FrozenRollouts([disabled]), KubeReplicaSetLister(kube)
    cache_alone = await DeploymentMutator(frozen, replica_sets).mutate(_admission(old, new))
    assert cache_alone is None  # what let chaos seed 3's release through to the native controller
    decided = await DeploymentMutator(frozen, replica_sets, KubeRolloutLister(kube)).mutate(
        _admission(old, new)
    )
    assert decided is not None
    assert decided["spec"]["paused"] is True
    assert decided["metadata"]["annotations"][IN_PROGRESSING] == f'{{"rolloutName":"{NAME}"}}'

    # And the real release 3, through the controller's own webhook.
    stored = await kube.patch(r.DEPLOYMENT, NAME, set_image_patch(V4), namespace, patch_type="strategic")
    assert stored["spec"]["paused"] is True
    # Release 2's sub-status, kept through Disabled and Healthy, shows step 1 paused too: only a step 1
    # of release 3's revision, in phase Progressing, waits for this approval.
    ro = await eventually(
        rel.rollout,
        lambda o: _phase("Progressing")(o) and paused_at(1)(o) and _revision(o) != _revision(disabled),
        what="release 3 paused at step 1",
    )
    assert _condition(ro, "Progressing")["reason"] == "InRolling"
    await rel.when_approved()
    done = await rel.then_completed()
    assert done["status"]["message"] == "Rollout progressing has been completed"
    assert _condition(done, "Progressing")["status"] == "False"
    assert _condition(done, "Progressing")["reason"] == "Completed"
    await _handed_back(rel, V4)
