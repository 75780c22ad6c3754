"""`graylane status` as a CI gate and `promote --full`, on the real cluster with the session controller:
status waits for the end and exits 0 only on Healthy, shows the traffic the Ingress and HTTPRoute route
now (read back from them), and promote --full skips every remaining step."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graylane.cli.main import cli
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    http_route,
    ingress,
    service,
    traffic_controller,
)

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
pytestmark = pytest.mark.usefixtures("traffic_controller")

STEPS = [
    {"replicas": 1, "traffic": "20%", "pause": {}},
    {"replicas": 2, "traffic": "40%", "pause": {}},
    {"replicas": 3, "traffic": "60%", "pause": {}},
    {"replicas": "100%", "traffic": "100%", "pause": {}},
]


async def graylane(kubeconfig: Path, namespace: str, *args: str) -> Result:
    argv = [*args, "--kubeconfig", str(kubeconfig), "-n", namespace]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


@dataclasses.dataclass(frozen=True)
class Exited:
    exit_code: int
    stdout: str
    stderr: str


async def gate(kubeconfig: Path, namespace: str, *args: str) -> Exited:
    """`graylane status ...` as a CI job runs it: its own process (CliRunner swaps the process-wide
    stdout, so two of them cannot run at once)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graylane.cli.main",
        "status",
        *args,
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Exited(proc.returncode, out.decode(), err.decode())


async def _given(kube: KubeClient, namespace: str) -> Release:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await kube.create(r.HTTPROUTE, http_route(namespace))
    await rel.given_deployment(replicas=5)
    routing = {"ingress": {"name": "web"}, "gateway": {"httpRouteName": "web-route"}}
    await rel.given_rollout(canary_rollout(routing, STEPS))
    return rel


async def test_status_shows_routed_traffic_and_gates_on_the_end_of_a_full_promotion(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = await _given(kube, namespace)
    healthy = await graylane(kubeconfig, namespace, "status", "demo", "--timeout", "30")
    assert healthy.exit_code == 0, healthy.output  # nothing released yet: already Healthy

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 1}, what="step 1")
    now = await graylane(kubeconfig, namespace, "status", "demo", "-o", "json")
    assert now.exit_code == 0, now.output  # running, not failed: a one-shot status does not fail
    view = json.loads(now.stdout)
    assert view["outcome"] == "Progressing"
    assert view["traffic"]["applied_weight"] == 20
    assert view["traffic"]["applied"] == [
        "Ingress web-canary: canary 20% / stable 80%",
        "HTTPRoute web-route: canary 20% / stable 80%",
    ]
    text = await graylane(kubeconfig, namespace, "status", "demo")
    assert "Traffic now" in text.stdout
    assert "Ingress web-canary: canary 20% / stable 80%" in text.stdout
    assert "✔" not in text.stdout  # no green tick while a release waits for a person

    waiting = asyncio.create_task(gate(kubeconfig, namespace, "demo", "--timeout", "240"))
    promoted = await graylane(kubeconfig, namespace, "promote", "demo", "--full", "--timeout", "180")
    assert promoted.exit_code == 0, promoted.output
    assert promoted.stdout.split("\n")[:2] == [
        "rollout.rollouts.kruise.io/demo jumped to the last step (4)",
        # The last step is at 100%: it needs no approval, the release goes straight on to finalise.
        "rollout.rollouts.kruise.io/demo promoted fully: all steps done, the release is finalising",
    ]
    waited = await waiting
    assert waited.exit_code == 0, waited.output
    assert "demo Healthy" in waited.stdout.strip().split("\n")[-1]
    await rel.then_pods({V2: 5}, what="every pod on v2")
    ro = await rel.rollout()
    assert ro["status"]["canaryStatus"]["currentStepIndex"] == 4  # steps 2 and 3 were skipped

    done = json.loads((await graylane(kubeconfig, namespace, "status", "demo", "-o", "json")).stdout)
    assert done["traffic"]["applied_weight"] == 0  # canary Ingress gone, route restored


async def test_status_exits_1_on_a_cancelled_release_and_on_timeout(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = await _given(kube, namespace)
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    timed_out = await graylane(kubeconfig, namespace, "status", "demo", "--timeout", "2s")
    assert timed_out.exit_code == 1
    assert "exceeded timeout (2s): Progressing" in timed_out.stderr

    waiting = asyncio.create_task(gate(kubeconfig, namespace, "demo", "-t", "3m"))
    await graylane(kubeconfig, namespace, "undo", "demo")
    cancelled = await waiting
    assert cancelled.exit_code == 1, cancelled.output
    assert "Error: the release is Cancelled" in cancelled.stderr
