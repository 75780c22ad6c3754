"""An unavailable graylane never blocks changes to workloads that have no Rollout (issue 13).

The policy (as Kruise's, see README "When graylane is down"): the workload webhook only sees UPDATEs of
Deployments labelled `rollouts.kruise.io/workload-type` (graylane puts that label on a Rollout's workload)
and never the controller's own (`control-plane: controller-manager`); it fails closed (failurePolicy Fail)
because letting a new revision through unpaused would release it to every pod at once, bypassing the
Rollout. So with the webhooks unreachable: unlabelled Deployments are created, updated, scaled and
deleted as usual; a Rollout's workload cannot get a new revision and Rollouts cannot be created or changed
until graylane is back.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.webhook import install as inst
from graylane.webhook.certs import issue
from tests.integration.builders import deployment, set_image_patch
from tests.integration.controller_fixtures import free_port
from tests.integration.test_canary_seed import two_steps_v1beta1
from tests.integration.webhook_fixtures import Snapshot

pytestmark = pytest.mark.usefixtures("controller_stopped")


@pytest.fixture
async def graylane_down(kube: KubeClient) -> AsyncIterator[str]:
    """The webhooks registered at a 127.0.0.1 port nothing listens on; put back afterwards."""
    before = await Snapshot.take(kube)
    dead = f"https://127.0.0.1:{free_port()}"
    ca = issue(["localhost"], dt.datetime.now(dt.UTC)).ca_pem
    await inst.install(kube, url_base=dead, service=None, ca_pem=ca, namespace="kruise-rollout")
    try:
        yield dead
    finally:
        await before.restore(kube)


async def test_workloads_without_a_rollout_are_never_blocked(
    kube: KubeClient, namespace: str, graylane_down: str
) -> None:
    started = time.monotonic()
    await kube.create(r.DEPLOYMENT, deployment("plain", namespace, replicas=2))
    await kube.patch(r.DEPLOYMENT, "plain", set_image_patch("demo:v2"), namespace, patch_type="strategic")
    await kube.patch(r.DEPLOYMENT, "plain", {"spec": {"replicas": 3}}, namespace)
    own = deployment("graylane-itself", namespace, replicas=1, labels={"control-plane": "controller-manager"})
    own["metadata"]["labels"][inst.WORKLOAD_TYPE_LABEL] = "deployment"  # even if labelled, ours is skipped
    await kube.create(r.DEPLOYMENT, own)
    await kube.patch(
        r.DEPLOYMENT, "graylane-itself", set_image_patch("demo:v2"), namespace, patch_type="strategic"
    )
    await kube.delete(r.DEPLOYMENT, "plain", namespace)
    print(f"5 writes of Rollout-free Deployments with graylane down: {time.monotonic() - started:.2f}s")
    dep = await kube.get(r.DEPLOYMENT, "graylane-itself", namespace)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "demo:v2"


async def test_a_rollouts_workload_and_rollouts_wait_for_graylane(
    kube: KubeClient, namespace: str, graylane_down: str
) -> None:
    labels = {inst.WORKLOAD_TYPE_LABEL: "deployment"}
    await kube.create(
        r.DEPLOYMENT, deployment("released", namespace, replicas=2, labels=labels)
    )  # CREATE passes
    with pytest.raises(ApiError) as held:
        await kube.patch(
            r.DEPLOYMENT, "released", set_image_patch("demo:v2"), namespace, patch_type="strategic"
        )
    assert 'failed calling webhook "mdeployment.kb.io"' in held.value.message
    rollout = copy.deepcopy(two_steps_v1beta1("partition"))
    rollout["metadata"] = {"name": "new", "namespace": namespace}
    with pytest.raises(ApiError) as refused:
        await kube.create(r.ROLLOUT, rollout, namespace)
    assert 'failed calling webhook "vrollout.kb.io"' in refused.value.message
    await kube.delete(r.DEPLOYMENT, "released", namespace)  # deleting is never held


def test_the_configuration_says_so() -> None:
    endpoint = inst.Endpoint(b"ca", url_base="https://127.0.0.1:1")
    hooks = {w["name"]: w for w in inst.mutating_configuration(endpoint)["webhooks"]}
    assert hooks["mdeployment.kb.io"]["rules"] == [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments"]}
    ]
    for mutating in hooks.values():  # every workload kind's webhook, alike
        assert mutating["failurePolicy"] == "Fail"
        assert [rule["operations"] for rule in mutating["rules"]] == [["UPDATE"]] * len(mutating["rules"])
        assert {"key": inst.WORKLOAD_TYPE_LABEL, "operator": "Exists"} in mutating["objectSelector"][
            "matchExpressions"
        ]
        assert {"key": "control-plane", "operator": "NotIn", "values": ["controller-manager"]} in mutating[
            "objectSelector"
        ]["matchExpressions"]
