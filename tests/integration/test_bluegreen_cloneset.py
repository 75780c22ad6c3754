"""Issue 17 acceptance, CloneSet: a blue-green release on OpenKruise's CRD schema (the API server
validates every field graylane writes), the CloneSet's pods played by kruise_driver.py.

The driver plays kruise-manager's recorded partition behaviour, plus what OpenKruise documents for
`maxSurge` (not recorded: see the driver): extra pods of the update revision beside the old ones, an
old pod removed only while enough pods stay available (ready for minReadySeconds), and a scale-in that
removes pods of other revisions first. Kruise's docs ask for 100% replicas in every CloneSet blue-green
step ("Known Issues"), so the steps here are 100% + 0% traffic, then 100% + 100% traffic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from graylane.api import keys
from graylane.api.workloads import CLONESET
from graylane.batchrelease.bluegreen_style import MAX_READY_SECONDS
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds
from tests.integration.traffic_fixtures import ingress, nginx_annotations, service
from tests.integration.waiting import eventually

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")

STEPS: list[dict[str, Any]] = [
    {"replicas": "100%", "traffic": "0%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]


def blue_green_rollout() -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": CLONESET.api_version, "kind": "CloneSet", "name": "demo"},
            "strategy": {
                "blueGreen": {
                    "steps": STEPS,
                    "trafficRoutings": [
                        {"service": "web", "gracePeriodSeconds": 1, "ingress": {"name": "web"}}
                    ],
                }
            },
        },
    }


def hpa(namespace: str) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": CLONESET.api_version, "kind": "CloneSet", "name": "demo"},
            "minReplicas": 4,
            "maxReplicas": 8,
        },
    }


@dataclasses.dataclass
class BlueGreenCloneSet(KindRelease):
    sub: str = "blueGreenStatus"

    async def given_app(self) -> Obj:
        await self.given_workload()
        await self.kube.create(r.SERVICE, service(self.namespace))
        await self.kube.create(r.INGRESS, ingress(self.namespace))
        await self.kube.create(r.HPA, hpa(self.namespace))
        body = blue_green_rollout()
        body["metadata"]["namespace"] = self.namespace
        await self.kube.create(r.ROLLOUT, body, self.namespace)
        await eventually(
            self.rollout,
            lambda ro: (ro.get("status", {}).get(self.sub) or {}).get("currentStepState") == "Completed",
            what="Rollout Healthy with its first deploy completed",
        )
        return await self.workload()

    async def canary_weight(self) -> str | None:
        found = await self.kube.get_or_none(r.INGRESS, "web-canary", self.namespace)
        return nginx_annotations(found).get("canary-weight") if found is not None else None

    async def left_behind(self, before: Obj) -> list[str]:
        found: list[str] = []
        cs = await self.workload()
        ours = {keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION, keys.BATCH_RELEASE_CONTROL_ANNOTATION}
        ours |= {keys.IN_PROGRESSING_ANNOTATION}
        found += sorted(ours & set(cs["metadata"].get("annotations") or {}))
        # Absent and 0 mean the same (Kruise writes the saved 0 back explicitly).
        if (cs["spec"].get("minReadySeconds") or 0) != (before["spec"].get("minReadySeconds") or 0):
            found.append(f"spec.minReadySeconds {cs['spec'].get('minReadySeconds')!r}")
        strategy, original = (
            cs["spec"].get("updateStrategy") or {},
            before["spec"].get("updateStrategy") or {},
        )
        for field in ("partition", "paused"):
            if strategy.get(field) not in (None, False):
                found.append(f"updateStrategy.{field} {strategy.get(field)!r}")
        for field in ("maxSurge", "maxUnavailable"):
            if strategy.get(field) != original.get(field, {"maxSurge": "0%", "maxUnavailable": "20%"}[field]):
                found.append(f"updateStrategy.{field} {strategy.get(field)!r}")
        target = (await self.kube.get(r.HPA, "demo", self.namespace))["spec"]["scaleTargetRef"]["name"]
        if target != "demo":
            found.append(f"HPA target {target}")
        svc = await self.kube.get(r.SERVICE, "web", self.namespace)
        if svc["spec"]["selector"] != {"app": "demo"}:
            found.append(f"stable Service selector {svc['spec']['selector']}")
        for res, name in ((r.SERVICE, "web-canary"), (r.INGRESS, "web-canary"), (r.BATCHRELEASE, "demo")):
            if await self.kube.get_or_none(res, name, self.namespace) is not None:
                found.append(f"{res.kind} {name}")
        return found

    async def then_handed_back(self, before: Obj, image: str) -> None:
        await self.then_pods({image: self.replicas}, what=f"{self.replicas} {image} pods and nothing else")
        left = await eventually(
            lambda: self.left_behind(before), lambda found: not found, what="nothing left behind", timeout=120
        )
        assert left == []


async def test_cloneset_blue_green_switches_traffic_and_restores_the_cloneset(
    kube: KubeClient, namespace: str
) -> None:
    rel = BlueGreenCloneSet(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        before = await rel.given_app()
        await rel.when_image(V2)
        await rel.then_paused_at(1)
        await rel.then_pods({V1: 4, V2: 4}, what="step 1: 4 old + 4 new pods")
        cs = await rel.workload()
        assert cs["spec"]["minReadySeconds"] == MAX_READY_SECONDS
        assert cs["spec"]["updateStrategy"]["maxSurge"] == "100%"
        assert cs["spec"]["updateStrategy"]["maxUnavailable"] == 0
        assert "partition" not in cs["spec"]["updateStrategy"]
        assert cs["metadata"]["annotations"][keys.ORIGINAL_DEPLOYMENT_STRATEGY_ANNOTATION] == (
            '{"maxUnavailable":"20%","maxSurge":"0%"}'
        )
        hpa_obj = await kube.get(r.HPA, "demo", namespace)
        assert hpa_obj["spec"]["scaleTargetRef"]["name"] == "demo-DisableByRollout"
        assert await rel.canary_weight() == "0"

        await rel.when_approved()
        await rel.then_paused_at(2)
        await eventually(rel.canary_weight, lambda w: w == "100", what="100% on the new pods")
        await rel.then_pods({V1: 4, V2: 4}, what="the old pods still up at the last step")

        await rel.when_approved()
        await rel.then_completed()
        await rel.then_handed_back(before, V2)


async def test_cloneset_blue_green_rollback_returns_to_the_old_pods(kube: KubeClient, namespace: str) -> None:
    rel = BlueGreenCloneSet(kube, namespace, CLONESET, replicas=4)
    async with rel.controller():
        before = await rel.given_app()
        await rel.when_image(V2)
        await rel.then_paused_at(1)
        await rel.then_pods({V1: 4, V2: 4}, what="step 1: 4 old + 4 new pods")

        await rel.when_image(V1)

        await rel.then_completed(succeeded=False)
        await rel.then_handed_back(before, V1)
