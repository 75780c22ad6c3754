"""The demo's releases, told one line per step: a weighted canary with approvals, then a rollback.

Every wait is bounded; every step says what graylane did and what it waits for.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj

__all__ = ["DemoError", "Scenario"]

NAMESPACE = "graylane-demo"
APP = "demo"


class DemoError(RuntimeError):
    pass


def sample_deployment(image: str, replicas: int = 5) -> Obj:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def sample_rollout() -> Obj:
    """The seed scenario: 1 pod with approval, then 2 pods with approval, then everything."""
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "strategy": {
                "canary": {
                    "enableExtraWorkloadForCanary": True,
                    "steps": [
                        {"replicas": 1, "pause": {}},
                        {"replicas": 2, "pause": {"duration": 5}},
                        {"replicas": "100%"},
                    ],
                }
            },
        },
    }


class Scenario:
    def __init__(self, kube: KubeClient, say: Callable[[str], None], step: Callable[[], Awaitable[None]]):
        self.kube, self.say, self.pause_between = kube, say, step

    async def pods(self) -> dict[str, int]:
        listed = await self.kube.list(r.POD, NAMESPACE, label_selector=f"app={APP}")
        live = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
        return dict(sorted(collections.Counter(p["spec"]["containers"][0]["image"] for p in live).items()))

    async def rollout(self) -> Obj:
        return await self.kube.get(r.ROLLOUT, APP, NAMESPACE)

    async def wait_for(self, what: str, check: Callable[[Obj], bool], timeout: float = 120) -> Obj:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ro = await self.rollout()
            if check(ro):
                return ro
            await asyncio.sleep(0.5)
        raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")

    async def reset(self) -> None:
        if await self.kube.get_or_none(r.NAMESPACE, NAMESPACE) is None:
            await self.kube.create(
                r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            )
        for res in (r.ROLLOUT, r.DEPLOYMENT):
            await self.kube.delete(res, APP, NAMESPACE)
        for _ in range(120):
            if await self.kube.get_or_none(r.ROLLOUT, APP, NAMESPACE) is None and not await self.pods():
                return
            await asyncio.sleep(0.5)
        raise DemoError("the previous demo objects did not go away")

    async def deploy(self) -> None:
        await self.kube.create(r.DEPLOYMENT, sample_deployment("demo:v1"))
        await self.kube.create(r.ROLLOUT, sample_rollout())
        await self.wait_for("the Rollout to be Healthy", lambda ro: _phase(ro) == "Healthy")
        self.say(f"deployed demo:v1 with a Rollout of 3 steps (1 pod, 2 pods, all); pods {await self.pods()}")

    async def set_image(self, image: str) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
        await self.kube.patch(r.DEPLOYMENT, APP, patch, NAMESPACE, patch_type="strategic")

    async def approve(self) -> None:
        body = {"status": {"canaryStatus": {"currentStepState": "StepReady"}}}
        await self.kube.patch(r.ROLLOUT, APP, body, NAMESPACE, subresource="status")

    async def canary_with_approval(self) -> None:
        self.say("releasing demo:v2 - graylane holds the native rolling update and follows the steps")
        await self.set_image("demo:v2")
        ro = await self.wait_for("step 1 to pause", lambda ro: _state(ro) == (1, "StepPaused"))
        self.say(f"step 1/3: {ro['status']['message']}; pods {await self.pods()}")
        await self.pause_between()
        await self.approve()
        self.say("approved step 1 (status currentStepState StepPaused -> StepReady, as kubectl-kruise does)")
        ro = await self.wait_for("step 2 to pause", lambda ro: _state(ro)[0] == 2)
        self.say(f"step 2/3: {ro['status']['message']}; pods {await self.pods()}")
        ro = await self.wait_for("the release to complete", _completed)
        self.say(f"completed: {ro['status']['message']}; pods {await self.pods()}")

    async def rollback(self) -> None:
        await self.pause_between()
        self.say("releasing demo:v3, then rolling back to demo:v2 at step 1")
        await self.set_image("demo:v3")
        await self.wait_for("step 1 to pause", lambda ro: _state(ro) == (1, "StepPaused"))
        self.say(f"step 1/3 with demo:v3; pods {await self.pods()}")
        await self.set_image("demo:v2")
        ro = await self.wait_for("the rollback to finish", lambda ro: _completed(ro, succeeded="False"))
        self.say(f"rolled back: {ro['status']['message']}; pods {await self.pods()}")


def _phase(ro: Obj) -> str:
    return str(ro.get("status", {}).get("phase", ""))


def _state(ro: Obj) -> tuple[int, str]:
    sub: dict[str, Any] = ro.get("status", {}).get("canaryStatus") or {}
    return int(sub.get("currentStepIndex", 0)), str(sub.get("currentStepState", ""))


def _completed(ro: Obj, succeeded: str = "True") -> bool:
    conds = {c["type"]: c for c in ro.get("status", {}).get("conditions", [])}
    return _phase(ro) == "Healthy" and conds.get("Succeeded", {}).get("status") == succeeded
