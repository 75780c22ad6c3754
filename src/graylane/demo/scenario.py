"""The demo's releases, told one line per step: a weighted canary with approvals, then a rollback.

Every wait is bounded; every step says what graylane did and what it waits for.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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


def sample_traffic_objects(
    parent_refs: list[dict[str, str]] | None = None,
) -> list[tuple[r.Resource, Obj]]:
    """The app's Service, an nginx Ingress and a Gateway API HTTPRoute in front of it."""
    meta = {"name": APP, "namespace": NAMESPACE}
    backend = {"service": {"name": APP, "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    service_spec = {"selector": {"app": APP}, "ports": [{"port": 80, "targetPort": 8080}]}
    ingress_spec = {"ingressClassName": "nginx", "rules": [{"host": "demo.local", "http": {"paths": [path]}}]}
    route_spec = {
        "parentRefs": parent_refs or [{"name": "demo-gateway"}],
        "hostnames": ["demo.local"],
        "rules": [{"backendRefs": [{"name": APP, "port": 80}]}],
    }
    return [
        (r.SERVICE, {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": service_spec}),
        (
            r.INGRESS,
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": ingress_spec},
        ),
        (
            r.HTTPROUTE,
            {
                "apiVersion": r.HTTPROUTE.api_version,
                "kind": "HTTPRoute",
                "metadata": meta,
                "spec": route_spec,
            },
        ),
    ]


def sample_rollout() -> Obj:
    """A weighted canary with approval, then an A/B test by header for 5 s, then everything."""
    routing = {
        "service": APP,
        "ingress": {"classType": "nginx", "name": APP},
        "gateway": {"httpRouteName": APP},
    }
    steps = [
        {"traffic": "20%", "replicas": 1, "pause": {}},
        {
            "matches": [{"headers": [{"name": "x-canary", "value": "beta"}]}],
            "replicas": 1,
            "pause": {"duration": 5},
        },
        {"replicas": "100%"},
    ]
    canary = {"enableExtraWorkloadForCanary": True, "trafficRoutings": [routing], "steps": steps}
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "strategy": {"canary": canary},
        },
    }


class Requests(Protocol):
    """Real requests through the gateways (graylane.demo.traffic), one line of counts per call."""

    async def weights(self, shown: Callable[[dict[str, int]], bool]) -> str: ...

    async def header(self, name: str, value: str, image: str) -> str: ...


class Scenario:
    def __init__(
        self,
        kube: KubeClient,
        say: Callable[[str], None],
        step: Callable[[], Awaitable[None]],
        requests: Requests | None = None,
        parent_refs: list[dict[str, str]] | None = None,
    ):
        self.kube, self.say, self.pause_between = kube, say, step
        self.requests, self.parent_refs = requests, parent_refs

    async def requests_line(
        self,
        when: str,
        shown: Callable[[dict[str, int]], bool] | None = None,
        header: tuple[str, str, str] | None = None,
    ) -> None:
        """Print what answered real requests (when the demo can send them) once the gateway shows the
        step (`shown` of a small batch's counts, or the header's requests all on one image)."""
        if self.requests is None:
            return
        if header is not None:
            line = await self.requests.header(*header)
        else:
            line = await self.requests.weights(shown or (lambda _counts: True))
        self.say(f"requests {when}: {line}")

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
        for res in (r.ROLLOUT, r.DEPLOYMENT, r.SERVICE, r.INGRESS, r.HTTPROUTE):
            await self.kube.delete(res, APP, NAMESPACE)
        for _ in range(120):
            if await self.kube.get_or_none(r.ROLLOUT, APP, NAMESPACE) is None and not await self.pods():
                return
            await asyncio.sleep(0.5)
        raise DemoError("the previous demo objects did not go away")

    async def deploy(self) -> None:
        await self.kube.create(r.DEPLOYMENT, sample_deployment("demo:v1"))
        for res, obj in sample_traffic_objects(self.parent_refs):
            await self.kube.create(res, obj)
        await self.kube.create(r.ROLLOUT, sample_rollout())
        await self.wait_for("the Rollout to be Healthy", lambda ro: _phase(ro) == "Healthy")
        self.say(
            "deployed demo:v1 behind Service, Ingress (nginx) and HTTPRoute demo, with a Rollout of 3 steps "
            f"(20% with approval, A/B by header x-canary: beta, all); pods {await self.pods()}"
        )
        await self.requests_line("before the release", lambda c: set(c) == {"demo:v1"})

    async def traffic(self) -> str:
        """What graylane wrote into the gateways, as a user would read it with kubectl."""
        canary = await self.kube.get_or_none(r.INGRESS, f"{APP}-canary", NAMESPACE)
        notes = (canary or {}).get("metadata", {}).get("annotations", {})
        keys = ("canary-weight", "canary-by-header", "canary-by-header-value")
        ingress = (
            ", ".join(
                f"{k}={notes[f'nginx.ingress.kubernetes.io/{k}']}"
                for k in keys
                if f"nginx.ingress.kubernetes.io/{k}" in notes
            )
            or "no canary Ingress"
        )
        route = await self.kube.get(r.HTTPROUTE, APP, NAMESPACE)
        return f"Ingress {ingress}; HTTPRoute {_route_summary(route)}"

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
        self.say(f"traffic at step 1 (weighted canary): {await self.traffic()}")
        await self.requests_line("at step 1", lambda c: "demo:v2" in c)
        await self.pause_between()
        await self.approve()
        self.say("approved step 1 (status currentStepState StepPaused -> StepReady, as kubectl-kruise does)")
        ro = await self.wait_for("step 2 to pause", lambda ro: _state(ro) == (2, "StepPaused"))
        self.say(f"step 2/3: {ro['status']['message']}; pods {await self.pods()}")
        self.say(f"traffic at step 2 (A/B test by header): {await self.traffic()}")
        await self.requests_line("at step 2", header=("x-canary", "beta", "demo:v2"))
        ro = await self.wait_for("the release to complete", _completed)
        self.say(f"completed: {ro['status']['message']}; pods {await self.pods()}")
        self.say(f"traffic after completion: {await self.traffic()}")
        await self.requests_line("after completion", lambda c: set(c) == {"demo:v2"})

    async def rollback(self) -> None:
        await self.pause_between()
        self.say("releasing demo:v3, then rolling back to demo:v2 at step 1")
        await self.set_image("demo:v3")
        await self.wait_for("step 1 to pause", lambda ro: _state(ro) == (1, "StepPaused"))
        self.say(f"step 1/3 with demo:v3; pods {await self.pods()}")
        await self.requests_line("at step 1 with demo:v3", lambda c: "demo:v3" in c)
        await self.set_image("demo:v2")
        ro = await self.wait_for("the rollback to finish", lambda ro: _completed(ro, succeeded="False"))
        self.say(f"rolled back: {ro['status']['message']}; pods {await self.pods()}")
        await self.requests_line("after the rollback", lambda c: set(c) == {"demo:v2"})


def _route_summary(route: Obj) -> str:
    """'demo 80 / demo-canary 20' per rule; a header match is shown in front of its rule."""
    rules = []
    for rule in route.get("spec", {}).get("rules", []):
        refs = " / ".join(f"{b['name']} {b.get('weight', 1)}" for b in rule.get("backendRefs", []))
        headers = [f"{h['name']}={h['value']}" for m in rule.get("matches", []) for h in m.get("headers", [])]
        rules.append(f"[{' & '.join(headers)}] {refs}" if headers else refs)
    return "; ".join(rules)


def _phase(ro: Obj) -> str:
    return str(ro.get("status", {}).get("phase", ""))


def _state(ro: Obj) -> tuple[int, str]:
    sub: dict[str, Any] = ro.get("status", {}).get("canaryStatus") or {}
    return int(sub.get("currentStepIndex", 0)), str(sub.get("currentStepState", ""))


def _completed(ro: Obj, succeeded: str = "True") -> bool:
    conds = {c["type"]: c for c in ro.get("status", {}).get("conditions", [])}
    return _phase(ro) == "Healthy" and conds.get("Succeeded", {}).get("status") == succeeded
