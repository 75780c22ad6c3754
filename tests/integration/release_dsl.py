"""A small given/when/then vocabulary for release scenarios on the real cluster.

Every wait is bounded and says what it waited for; pods are counted the way a user would with
`kubectl get pods -l app=<name>`: Ready, not terminating, grouped by image.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.builders import deployment, set_image_patch
from tests.integration.waiting import eventually

V1, V2, V3 = "demo:v1", "demo:v2", "demo:v3"


def _ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conds
    )


def paused_at(step: int, sub: str = "canaryStatus") -> Callable[[Obj], bool]:
    """Whether a Rollout is paused at `step` (`sub`: canaryStatus, or blueGreenStatus)."""

    def paused(ro: Obj) -> bool:
        status = ro.get("status", {}).get(sub) or {}
        return status.get("currentStepIndex") == step and status.get("currentStepState") == "StepPaused"

    return paused


def completed(*, succeeded: bool = True) -> Callable[[Obj], bool]:
    """Whether a Rollout is Healthy with its Succeeded condition True (False: rolled back)."""

    def done(ro: Obj) -> bool:
        st = ro.get("status", {})
        conds = {c["type"]: c for c in st.get("conditions", [])}
        ok = conds.get("Succeeded", {}).get("status") == ("True" if succeeded else "False")
        return bool(st.get("phase") == "Healthy" and ok)

    return done


@dataclasses.dataclass
class Release:
    kube: KubeClient
    namespace: str
    name: str = "demo"
    rollout_resource: r.Resource = r.ROLLOUT
    sub: str = "canaryStatus"  # "blueGreenStatus" for a blue-green Rollout

    # -- given ---------------------------------------------------------------------------------

    async def given_deployment(self, replicas: int = 5, image: str = V1) -> None:
        await self.kube.create(
            r.DEPLOYMENT, deployment(self.name, self.namespace, replicas=replicas, image=image)
        )
        await self.then_pods({image: replicas}, what=f"{replicas} {image} pods")

    async def given_rollout(self, obj: Obj) -> None:
        obj = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": self.namespace}}
        self.rollout_resource = r.ROLLOUT_V1ALPHA1 if obj["apiVersion"].endswith("v1alpha1") else r.ROLLOUT
        await self.kube.create(self.rollout_resource, obj)
        # Healthy first, then the first-deploy "completed" sub-status one pass later: wait for both.
        await eventually(
            self.rollout,
            lambda ro: (ro.get("status", {}).get(self.sub) or {}).get("currentStepState") == "Completed",
            what="Rollout Healthy with its first deploy completed",
        )
        await eventually(
            self.deployment,
            lambda d: "rollouts.kruise.io/workload-type" in d["metadata"].get("labels", {}),
            what="workload labelled for the webhook",
        )

    # -- when ----------------------------------------------------------------------------------

    async def when_image(self, image: str) -> None:
        await self.kube.patch(
            r.DEPLOYMENT, self.name, set_image_patch(image), self.namespace, patch_type="strategic"
        )

    async def when_approved(self) -> None:
        """kubectl-kruise's approval: currentStepState StepPaused -> StepReady on the status subresource."""
        body = {"status": {self.sub: {"currentStepState": "StepReady"}}}
        await self.kube.patch(r.ROLLOUT, self.name, body, self.namespace, subresource="status")

    async def when_rollout_patched(self, patch: dict[str, Any]) -> None:
        await self.kube.patch(r.ROLLOUT, self.name, patch, self.namespace)

    async def when_status_patched(self, patch: dict[str, Any]) -> None:
        await self.kube.patch(r.ROLLOUT, self.name, {"status": patch}, self.namespace, subresource="status")

    # -- then ----------------------------------------------------------------------------------

    async def rollout(self) -> Obj:
        return await self.kube.get(r.ROLLOUT, self.name, self.namespace)

    async def deployment(self) -> Obj:
        return await self.kube.get(r.DEPLOYMENT, self.name, self.namespace)

    async def pods(self) -> list[Obj]:
        listed = await self.kube.list(r.POD, self.namespace, label_selector=f"app={self.name}")
        return [p for p in listed["items"] if _ready(p)]

    async def pod_images(self) -> dict[str, int]:
        pods = await self.kube.list(r.POD, self.namespace, label_selector=f"app={self.name}")
        live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
        return dict(collections.Counter(p["spec"]["containers"][0]["image"] for p in live))

    async def then_pods(self, images: dict[str, int], *, what: str, timeout: float = 90) -> None:
        await eventually(self.pod_images, lambda seen: seen == images, what=what, timeout=timeout)

    async def then_paused_at(self, step: int, *, timeout: float = 90) -> Obj:
        paused = paused_at(step, self.sub)
        return await eventually(self.rollout, paused, what=f"paused at step {step}", timeout=timeout)

    async def then_completed(self, *, succeeded: bool = True, timeout: float = 120) -> Obj:
        done = completed(succeeded=succeeded)
        return await eventually(
            self.rollout, done, what=f"completed (succeeded={succeeded})", timeout=timeout
        )

    async def canary_deployments(self) -> list[Obj]:
        listed = await self.kube.list(
            r.DEPLOYMENT, self.namespace, label_selector=f"rollouts.kruise.io/canary-deployment={self.name}"
        )
        return [d for d in listed["items"] if not d["metadata"].get("deletionTimestamp")]
