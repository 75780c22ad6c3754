"""KubeVela's kruise-rollout trait, replayed (seed 002; ../shared/reference/ecosystem.md).

KubeVela cannot be built here, so the test sends what it was seen to send: the objects its webservice,
scaler and gateway traits render, the Rollout its kruise-rollout trait renders (the seed file, applied as
it is), and the exact requests of `vela workflow suspend` (a full update setting paused), `resume` (a
full update with paused false, then a full PUT of the v1alpha1 status with currentStepState StepReady
and without finalisingStep and nextStepIndex, from KubeVela's v0.3.0 structs) and `rollback` (the
workload's template reverted, paused false). `vela status` shows the Rollout's status.message, read as
v1alpha1, and calls the trait healthy iff status.phase is Healthy.

Before this change the resume's status PUT was refused (the CRD required the two fields), as by Kruise
since v0.6.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from tests.integration.traffic_fixtures import NGINX, get_or_none
from tests.integration.waiting import eventually
from tests.seeds import seed_documents

pytestmark = pytest.mark.usefixtures("graylane_controller")

NAME = "canary-demo"
V1, V2 = "barnett/canarydemo:v1", "barnett/canarydemo:v2"
COMPONENT = {"app.oam.dev/component": NAME}
CONFIRM = "and you need manually confirm to enter the next step"


def _rendered_workload(namespace: str) -> list[tuple[r.Resource, Obj]]:
    """What KubeVela renders for seed 002's component: webservice + scaler (Deployment), gateway
    (Service and Ingress, class nginx, host canary-demo.com, path /version)."""
    labels = {"app.oam.dev/name": NAME, **COMPONENT}
    container = {"name": NAME, "image": V1, "ports": [{"containerPort": 8090, "name": "port-8090"}]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": COMPONENT},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {"selector": COMPONENT, "ports": [{"name": "port-8090", "port": 8090, "targetPort": 8090}]},
    }
    backend = {"service": {"name": NAME, "port": {"number": 8090}}}
    path = {"path": "/version", "pathType": "ImplementationSpecific", "backend": backend}
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "canary-demo.com", "http": {"paths": [path]}}],
        },
    }
    return [(r.DEPLOYMENT, deployment), (r.SERVICE, service), (r.INGRESS, ingress)]


async def _on_conflict_retry(write: Callable[[], Awaitable[None]], attempts: int = 10) -> None:
    """A read-modify-write retried on 409, as client-go's RetryOnConflict does (the controller writes the
    same object meanwhile); any other refusal, e.g. a schema error, fails at once."""
    for _ in range(attempts - 1):
        try:
            await write()
            return
        except ApiError as err:
            if not err.conflict:
                raise
    await write()


class Vela:
    """The requests the `vela` CLI and vela-core send for this application, and what `vela status` shows."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace

    async def up(self) -> None:
        for res, obj in _rendered_workload(self.namespace):
            await self.kube.create(res, obj)
        [rollout] = seed_documents("002-trait-rendered-rollout.yaml")
        await self.kube.create(r.ROLLOUT_V1ALPHA1, rollout, self.namespace)

    async def release(self, image: str) -> None:
        """`vela up` of a new publishVersion: the Deployment rendered again with the new image (retried on
        409 as vela-core's apply is: the Deployment controller and graylane write the object too)."""

        async def put() -> None:
            dep = await self.kube.get(r.DEPLOYMENT, NAME, self.namespace)
            dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
            await self.kube.replace(r.DEPLOYMENT, dep)

        await _on_conflict_retry(put)

    async def _update_paused(self, paused: bool) -> None:
        async def put() -> None:
            rollout = await self.kube.get(r.ROLLOUT_V1ALPHA1, NAME, self.namespace)
            rollout["spec"]["strategy"]["paused"] = paused
            await self.kube.replace(r.ROLLOUT_V1ALPHA1, rollout)

        await _on_conflict_retry(put)

    async def suspend(self) -> None:
        await self._update_paused(True)

    async def resume(self) -> None:
        await self._update_paused(False)

        async def put_status() -> None:
            rollout = await self.kube.get(r.ROLLOUT_V1ALPHA1, NAME, self.namespace)
            canary = dict(rollout["status"]["canaryStatus"])
            canary.pop("finalisingStep", None)
            canary.pop("nextStepIndex", None)
            canary["currentStepState"] = "StepReady"
            rollout["status"]["canaryStatus"] = canary
            await self.kube.replace(r.ROLLOUT_V1ALPHA1, rollout, subresource="status")

        await _on_conflict_retry(put_status)

    async def rollback(self) -> None:
        """The app restored from its last good revision (v1), then the Rollout unpaused."""
        await self.release(V1)
        await self._update_paused(False)

    async def status(self) -> tuple[bool, str]:
        """(healthy, message) as `vela status` shows the kruise-rollout trait."""
        rollout = await self.kube.get(r.ROLLOUT_V1ALPHA1, NAME, self.namespace)
        st = rollout.get("status") or {}
        return st.get("phase") == "Healthy", str(st.get("message", ""))

    async def then_status(self, healthy: bool, message: str, *, timeout: float = 120) -> None:
        await eventually(
            self.status,
            lambda seen: seen == (healthy, message),
            what=f"vela status {message!r}",
            timeout=timeout,
        )

    async def images(self) -> dict[str, int]:
        listed = await self.kube.list(r.POD, self.namespace, label_selector=f"app.oam.dev/component={NAME}")
        live = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
        return dict(collections.Counter(p["spec"]["containers"][0]["image"] for p in live))

    async def then_images(self, want: dict[str, int], what: str) -> None:
        await eventually(self.images, lambda seen: seen == want, what=what, timeout=120)

    async def canary_weight(self) -> str | None:
        canary = await get_or_none(self.kube, r.INGRESS, f"{NAME}-canary", self.namespace)
        if canary is None:
            return None
        return str((canary["metadata"].get("annotations") or {}).get(NGINX + "canary-weight"))


async def _at_step_one(kube: KubeClient, namespace: str) -> Vela:
    vela = Vela(kube, namespace)
    await vela.up()
    await vela.then_images({V1: 5}, "5 v1 pods")
    await vela.then_status(True, "workload deployment is completed")
    await vela.release(V2)
    await vela.then_status(False, f"Rollout is in step(1/2), {CONFIRM}")
    await vela.then_images({V1: 5, V2: 1}, "1 canary pod (5 x 20%)")
    await eventually(vela.canary_weight, lambda w: w == "20", what="canary Ingress weight 20")
    return vela


async def test_vela_resume_twice_completes_the_release(kube: KubeClient, namespace: str) -> None:
    vela = await _at_step_one(kube, namespace)

    await vela.resume()  # refused by the API server before: finalisingStep / nextStepIndex required
    await vela.then_status(False, f"Rollout is in step(2/2), {CONFIRM}")
    await vela.then_images({V1: 5, V2: 5}, "5 canary pods (5 x 90%, rounded up)")
    await eventually(vela.canary_weight, lambda w: w == "90", what="canary Ingress weight 90")
    rollout = await kube.get(r.ROLLOUT, NAME, namespace)
    assert rollout["status"]["canaryStatus"]["nextStepIndex"] == -1, "the controller wrote it back"

    await vela.resume()
    await vela.then_status(True, "Rollout progressing has been completed", timeout=180)
    await vela.then_images({V2: 5}, "all v2, the canary removed")
    assert await vela.canary_weight() is None


async def test_vela_suspend_then_rollback_returns_to_v1(kube: KubeClient, namespace: str) -> None:
    vela = await _at_step_one(kube, namespace)

    await vela.suspend()
    await eventually(
        lambda: kube.get(r.ROLLOUT_V1ALPHA1, NAME, namespace),
        lambda ro: any(
            c.get("type") == "Progressing" and c.get("reason") == "Paused"
            for c in (ro.get("status") or {}).get("conditions") or []
        ),
        what="the Rollout paused",
    )
    healthy, _ = await vela.status()
    assert not healthy

    await vela.rollback()
    await vela.then_status(True, "Rollout progressing has been cancelled", timeout=180)
    await vela.then_images({V1: 5}, "every pod v1 again")
    assert await vela.canary_weight() is None
