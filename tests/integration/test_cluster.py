"""The local cluster is a real one: Deployments get Ready pods on kwok nodes and roll natively."""

from __future__ import annotations

from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.builders import deployment, set_image_patch
from tests.integration.waiting import eventually


def _rolled_out(dep: dict[str, Any], replicas: int) -> bool:
    st = dep.get("status", {})
    return bool(
        st.get("observedGeneration") == dep["metadata"]["generation"]
        and st.get("updatedReplicas") == replicas
        and st.get("readyReplicas") == replicas
        and st.get("availableReplicas") == replicas
        and st.get("replicas") == replicas
    )


async def _pods(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    return list((await kube.list(r.POD, namespace, label_selector="app=demo"))["items"])


async def test_deployment_gets_ready_pods_on_kwok_nodes(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=5))

    await eventually(
        lambda: kube.get(r.DEPLOYMENT, "demo", namespace),
        lambda d: _rolled_out(d, 5),
        what="5 ready replicas",
    )

    pods = await _pods(kube, namespace)
    assert len(pods) == 5
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert all(p["status"]["podIP"].startswith("10.123.") for p in pods)


async def test_native_rolling_update_completes(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=5))
    await eventually(
        lambda: kube.get(r.DEPLOYMENT, "demo", namespace), lambda d: _rolled_out(d, 5), what="v1 ready"
    )

    await kube.patch(r.DEPLOYMENT, "demo", set_image_patch("demo:v2"), namespace, patch_type="strategic")

    await eventually(
        lambda: kube.get(r.DEPLOYMENT, "demo", namespace),
        lambda d: _rolled_out(d, 5),
        what="v2 rolled out",
        timeout=120,
    )
    images = {
        p["spec"]["containers"][0]["image"]
        for p in await eventually(
            lambda: _pods(kube, namespace), lambda ps: len(ps) == 5, what="old pods gone"
        )
    }
    assert images == {"demo:v2"}
    replicasets = (await kube.list(r.REPLICASET, namespace))["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, 5]
