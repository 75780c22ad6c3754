"""Helpers of the seed tests: apply seed files byte for byte with kubectl, follow Rollouts by name."""

from __future__ import annotations

import asyncio
import collections
import subprocess
from typing import Any

from tests.integration.waiting import eventually
from tests.seeds import seed_path

from graylane.cluster import build
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.trafficlab.lab import TrafficLab


async def kubectl(lab: TrafficLab, *args: str) -> str:
    """kubectl inside the lab's namespace, as a user following the page would run it."""
    assert lab.ns is not None
    exe = str(build.binaries(build.Versions())["kubectl"])
    argv = lab.ns.command([exe, "--kubeconfig", str(lab.kubeconfig), *args])
    proc = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


async def apply_seed(lab: TrafficLab, namespace: str, name: str) -> None:
    # ../shared/seeds: the page's bytes as they are
    await kubectl(lab, "apply", "-n", namespace, "-f", str(seed_path(name)))


async def rollout(kube: KubeClient, namespace: str, name: str) -> Obj:
    return await kube.get(r.ROLLOUT, name, namespace)


def _sub(ro: Obj) -> dict[str, Any]:
    return (ro.get("status") or {}).get("canaryStatus") or {}


async def first_deploy_done(kube: KubeClient, namespace: str, name: str) -> None:
    await eventually(
        lambda: rollout(kube, namespace, name),
        lambda ro: _sub(ro).get("currentStepState") == "Completed",
        what=f"{name} Healthy with its first deploy completed",
        timeout=90,
    )


async def paused_at(kube: KubeClient, namespace: str, name: str, step: int) -> Obj:
    return await eventually(
        lambda: rollout(kube, namespace, name),
        lambda ro: (
            _sub(ro).get("currentStepIndex") == step and _sub(ro).get("currentStepState") == "StepPaused"
        ),
        what=f"{name} paused at step {step}",
        timeout=120,
    )


async def approve(kube: KubeClient, namespace: str, name: str) -> None:
    body = {"status": {"canaryStatus": {"currentStepState": "StepReady"}}}
    await kube.patch(r.ROLLOUT, name, body, namespace, subresource="status")


async def completed(kube: KubeClient, namespace: str, name: str, *, succeeded: bool = True) -> Obj:
    def done(ro: Obj) -> bool:
        st = ro.get("status", {})
        conds = {c["type"]: c for c in st.get("conditions", [])}
        return st.get("phase") == "Healthy" and conds.get("Succeeded", {}).get("status") == str(succeeded)

    return await eventually(
        lambda: rollout(kube, namespace, name), done, what=f"{name} completed", timeout=180
    )


def _selector(app: str) -> str:
    """`app=<app>`, or a whole label selector when given one."""
    return app if "=" in app else f"app={app}"


async def live_pods(kube: KubeClient, namespace: str, app: str) -> list[Obj]:
    listed = await kube.list(r.POD, namespace, label_selector=_selector(app))
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def images(kube: KubeClient, namespace: str, app: str) -> dict[str, int]:
    pods = await live_pods(kube, namespace, app)
    return dict(sorted(collections.Counter(p["spec"]["containers"][0]["image"] for p in pods).items()))


async def then_images(kube: KubeClient, namespace: str, app: str, want: dict[str, int], what: str) -> None:
    await eventually(lambda: images(kube, namespace, app), lambda got: got == want, what=what, timeout=120)
