"""Releases of every workload kind on the real cluster: OpenKruise's CRDs, workload builders, a small DSL.

StatefulSets and DaemonSets are driven by the cluster's own controllers (kube-controller-manager);
CloneSets, Advanced StatefulSets and Advanced DaemonSets by `KruiseDriver` (kruise_driver.py), against
OpenKruise's real CRDs (data/thirdparty/openkruise, installed once per session by `openkruise_crds`:
the session's controller is running already, so it finds those kinds as their CRDs appear).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from graylane.api import keys
from graylane.api.workloads import (
    ADVANCED_DAEMONSET,
    ADVANCED_STATEFULSET,
    CLONESET,
    DAEMONSET,
    STATEFULSET,
    Family,
    WorkloadKind,
)
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.observe.workload_kinds import resource_of
from graylane.webhook.install import wait_established
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.kruise_driver import KruiseDriver
from tests.integration.release_dsl import completed, paused_at
from tests.integration.waiting import eventually

CRD_DIR = Path(__file__).parent / "data" / "thirdparty" / "openkruise"
V1, V2 = "demo:v1", "demo:v2"
NODES = 3  # the cluster's kwok nodes: a DaemonSet's pods
THREE_STEPS: list[dict[str, Any]] = [
    {"replicas": 1, "pause": {}},
    {"replicas": "50%", "pause": {}},
    {"replicas": "100%"},
]
# Every key a release writes on a workload: none may be left once it is over.
RELEASE_ANNOTATIONS = (
    keys.IN_PROGRESSING_ANNOTATION,
    keys.BATCH_RELEASE_CONTROL_ANNOTATION,
    keys.DAEMONSET_ORIGINAL_UPDATE_STRATEGY_ANNOTATION,
    keys.DAEMONSET_PARTITION_ANNOTATION,
    keys.DAEMONSET_BATCH_REVISION_ANNOTATION,
    keys.DAEMONSET_STABLE_REVISION_ANNOTATION,
    keys.DAEMONSET_CANARY_REVISION_ANNOTATION,
)


async def install_openkruise_crds(kube: KubeClient) -> list[str]:
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        doc = yaml.safe_load(await asyncio.to_thread(path.read_text))
        try:
            await kube.create(r.CRD, doc)
        except ApiError as err:
            if not err.already_exists:
                raise
        names.append(doc["metadata"]["name"])
    async with asyncio.timeout(60):
        await wait_established(kube, names)
    return names


@pytest.fixture(scope="session")
async def openkruise_crds(kube: KubeClient) -> list[str]:
    """OpenKruise's CloneSet, Advanced StatefulSet and Advanced DaemonSet CRDs (v1.9.0, as released)."""
    return await install_openkruise_crds(kube)


def workload(kind: WorkloadKind, name: str, namespace: str, *, replicas: int = 4, image: str = V1) -> Obj:
    """A workload of `kind` with one container; pods labelled app=<name>."""
    app = {"app": name}
    spec: Obj = {
        "selector": {"matchLabels": app},
        "template": {"metadata": {"labels": app}, "spec": {"containers": [{"name": "main", "image": image}]}},
    }
    if kind.family is Family.STATEFULSET_LIKE:
        spec |= {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel"}
    elif kind.family is Family.CLONESET:
        spec |= {"replicas": replicas, "updateStrategy": {"type": "ReCreate"}}
    elif kind.family is Family.ADVANCED_DAEMONSET:
        spec |= {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"rollingUpdateType": "Standard"}}
        }
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def rollout(kind: WorkloadKind, name: str, steps: list[dict[str, Any]] | None = None, **canary: Any) -> Obj:
    # Users name Advanced DaemonSets in v1alpha1 (Kruise Rollout's docs); graylane matches by group.
    version = "v1alpha1" if kind is ADVANCED_DAEMONSET else kind.version
    ref = {
        "apiVersion": f"{kind.group}/{version}" if kind.group else version,
        "kind": kind.kind,
        "name": name,
    }
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"workloadRef": ref, "strategy": {"canary": {"steps": steps or THREE_STEPS, **canary}}},
    }


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclasses.dataclass
class KindRelease:
    """Given a workload of some kind and its Rollout; when its image changes; then its pods say so."""

    kube: KubeClient
    namespace: str
    kind: WorkloadKind
    name: str = "demo"
    replicas: int = 4
    sub: str = "canaryStatus"  # "blueGreenStatus" for a blue-green Rollout

    @property
    def resource(self) -> r.Resource:
        return resource_of(self.kind)

    @property
    def size(self) -> int:
        return NODES if self.kind in (DAEMONSET, ADVANCED_DAEMONSET) else self.replicas

    @contextlib.asynccontextmanager
    async def controller(self) -> AsyncIterator[None]:
        """OpenKruise's controller for an OpenKruise kind (the driver); the real one runs already."""
        if not self.kind.openkruise:
            yield
            return
        async with KruiseDriver(self.kube, self.kind, self.namespace, self.name).running():
            yield

    # -- given --------------------------------------------------------------------------------------

    async def given_workload(self) -> None:
        body = workload(self.kind, self.name, self.namespace, replicas=self.replicas)
        await self.kube.create(self.resource, body, self.namespace)
        await self.then_pods({V1: self.size}, what=f"{self.size} {V1} pods")

    async def given_rollout(self, body: Obj | None = None) -> None:
        body = body or rollout(self.kind, self.name)
        body = {**body, "metadata": {**body["metadata"], "namespace": self.namespace}}
        await self.kube.create(r.ROLLOUT, body, self.namespace)
        await eventually(
            self.rollout,
            lambda ro: (ro.get("status", {}).get(self.sub) or {}).get("currentStepState") == "Completed",
            what="Rollout Healthy with its first deploy completed",
        )
        await eventually(
            self.workload,
            lambda w: keys.WORKLOAD_TYPE_LABEL in w["metadata"].get("labels", {}),
            what="workload labelled for the webhook",
        )

    # -- when ---------------------------------------------------------------------------------------

    async def when_image(self, image: str) -> None:
        body = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
        # A JSON merge patch (OpenKruise's kinds take no strategic merge): the one container is replaced.
        await self.kube.patch(self.resource, self.name, body, self.namespace)

    async def when_approved(self) -> None:
        body = {"status": {self.sub: {"currentStepState": "StepReady"}}}
        await self.kube.patch(r.ROLLOUT, self.name, body, self.namespace, subresource="status")

    async def when_scaled(self, replicas: int) -> None:
        self.replicas = replicas
        await self.kube.patch(self.resource, self.name, {"spec": {"replicas": replicas}}, self.namespace)

    # -- then ---------------------------------------------------------------------------------------

    async def rollout(self) -> Obj:
        return await self.kube.get(r.ROLLOUT, self.name, self.namespace)

    async def workload(self) -> Obj:
        return await self.kube.get(self.resource, self.name, self.namespace)

    async def pods(self) -> list[Obj]:
        listed = await self.kube.list(r.POD, self.namespace, label_selector=f"app={self.name}")
        return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]

    async def pod_images(self) -> dict[str, int]:
        """Ready pods by image (a pod that is not Ready yet is not counted)."""
        pods = [p for p in await self.pods() if _ready(p)]
        return dict(collections.Counter(p["spec"]["containers"][0]["image"] for p in pods))

    async def then_pods(self, images: dict[str, int], *, what: str, timeout: float = 120) -> None:
        async def settled() -> tuple[dict[str, int], int]:
            return await self.pod_images(), len(await self.pods())

        await eventually(
            settled, lambda seen: seen == (images, sum(images.values())), what=what, timeout=timeout
        )

    async def then_paused_at(self, step: int, *, timeout: float = 120) -> Obj:
        paused = paused_at(step, self.sub)
        return await eventually(self.rollout, paused, what=f"paused at step {step}", timeout=timeout)

    async def then_completed(self, *, succeeded: bool = True, timeout: float = 180) -> Obj:
        done = completed(succeeded=succeeded)
        return await eventually(
            self.rollout, done, what=f"completed (succeeded={succeeded})", timeout=timeout
        )

    async def then_nothing_left_behind(self) -> None:
        """No release key on the workload, no partition holding pods back, no BatchRelease."""

        def clean(obj: Obj) -> bool:
            annotations = obj["metadata"].get("annotations") or {}
            return not any(k in annotations for k in RELEASE_ANNOTATIONS) and not _holds(self.kind, obj)

        await eventually(self.workload, clean, what="the workload handed back with nothing of ours left")
        await eventually(
            lambda: self.kube.get_or_none(r.BATCHRELEASE, self.name, self.namespace),
            lambda br: br is None,
            what="the BatchRelease gone",
        )

    async def then_released(self, images: dict[str, int], *, what: str, succeeded: bool = True) -> Obj:
        """Completed (`succeeded=False`: rolled back), `images` the pods, nothing of the release left."""
        ro = await self.then_completed(succeeded=succeeded)
        await self.then_pods(images, what=what)
        await self.then_nothing_left_behind()
        return ro

    # -- the scenarios the kinds' files share -------------------------------------------------------

    async def given_paused_at_step_two(
        self, pods: dict[str, int], *, what: str, rollout_body: Obj | None = None
    ) -> None:
        """The workload and its Rollout, the image changed to V2, step 1 approved: paused at step 2
        with `pods`."""
        await self.given_workload()
        await self.given_rollout(rollout_body)
        await self.when_image(V2)
        await self.then_paused_at(1)
        await self.when_approved()
        await self.then_paused_at(2)
        await self.then_pods(pods, what=what)

    async def when_restarted_at_step_two(self, controller: ControllerProcess, pods: dict[str, int]) -> None:
        """graylane stopped and started again at step 2's pause: the pause and its pods must hold."""
        await asyncio.to_thread(controller.stop)
        await asyncio.to_thread(controller.start)
        await asyncio.to_thread(controller.wait_ready, 90)
        await self.then_paused_at(2)
        await self.then_pods(pods, what="step 2 held across the restart")

    async def batch_labels(self, image: str) -> dict[str, int]:
        """rollout-batch-id -> pods of `image` carrying the rollout-id and that batch id."""
        found: collections.Counter[str] = collections.Counter()
        for pod in await self.pods():
            labels = pod["metadata"].get("labels") or {}
            if pod["spec"]["containers"][0]["image"] == image and labels.get(keys.ROLLOUT_ID_LABEL):
                found[labels.get(keys.ROLLOUT_BATCH_ID_LABEL, "")] += 1
        return dict(found)


def _holds(kind: WorkloadKind, obj: Obj) -> bool:
    """Whether anything of the release still holds pods back (a native StatefulSet's partition is
    defaulted to 0 by the API server; every other kind's must be gone)."""
    strategy = obj["spec"].get("updateStrategy") or {}
    if kind is DAEMONSET:
        return strategy.get("type") != "RollingUpdate"
    if kind is CLONESET:
        return "partition" in strategy or bool(strategy.get("paused"))
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if kind is STATEFULSET:
        return bool(partition)
    assert kind in (ADVANCED_STATEFULSET, ADVANCED_DAEMONSET)
    return partition is not None
