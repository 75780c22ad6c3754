"""Every rollout verb of the CLI, driven through click's CliRunner against the real cluster and controller.

The commands run in a worker thread (each calls asyncio.run) while the test's own loop polls the cluster.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from graylane.cli.main import cli
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.test_canary_seed import seed_one_v1alpha1, two_steps_v1beta1
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")
SERVICE_ACCOUNT = r.Resource("", "v1", "serviceaccounts", "ServiceAccount")
NOT_STEP_PAUSED = "does not allow to approve, because current canary state is not 'StepPaused'"


async def graylane(kubeconfig: Path, namespace: str, *args: str) -> Result:
    argv = [*args, "--kubeconfig", str(kubeconfig), "-n", namespace]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


async def ok(kubeconfig: Path, namespace: str, *args: str) -> str:
    result = await graylane(kubeconfig, namespace, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


async def reason(rel: Release) -> str:
    ro = await rel.rollout()
    conds = {c["type"]: c for c in ro["status"].get("conditions", [])}
    return str(conds.get("Progressing", {}).get("reason", ""))


async def then_releasing_at(rel: Release, step: int) -> None:
    """Paused at `step` of a running release (a cancelled one keeps its last step state in status)."""

    def paused(ro: dict[str, Any]) -> bool:
        sub = ro["status"].get("canaryStatus") or {}
        at = (sub.get("currentStepIndex"), sub.get("currentStepState"))
        return ro["status"].get("phase") == "Progressing" and at == (step, "StepPaused")

    await eventually(rel.rollout, paused, what=f"a running release paused at step {step}", timeout=90)


async def test_approve_pause_resume_and_the_read_verbs_during_a_release(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())

    refused = await graylane(kubeconfig, namespace, "approve", "demo")
    assert refused.exit_code == 1
    assert NOT_STEP_PAUSED in refused.output

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 1}, what="1 canary pod")

    data = json.loads(await ok(kubeconfig, namespace, "status", "demo", "-o", "json"))
    assert (data["step"], data["steps_total"], data["state"]) == (1, 2, "StepPaused")
    assert (data["canary"], data["stable"], data["canary_wanted"]) == (
        {"ready": 1, "total": 1},
        {"ready": 5, "total": 5},
        1,
    )
    assert data["waiting"]["kind"] == "approval"

    assert (
        await ok(kubeconfig, namespace, "pause", "rollout/demo") == "rollout.rollouts.kruise.io/demo paused\n"
    )
    await eventually(lambda: reason(rel), lambda got: got == "Paused", what="Progressing reason Paused")
    assert (await rel.rollout())["status"][
        "message"
    ] == "Rollout has been paused, you can resume it by kube-cli"
    assert "already paused" in await ok(kubeconfig, namespace, "pause", "demo")
    assert "paused by the user" in await ok(kubeconfig, namespace, "status", "demo")
    assert await ok(kubeconfig, namespace, "resume", "demo") == "rollout.rollouts.kruise.io/demo resumed\n"
    await eventually(lambda: reason(rel), lambda got: got == "InRolling", what="back to InRolling")

    restart = await graylane(kubeconfig, namespace, "restart", "demo")
    assert restart.exit_code == 1
    assert "can't restart paused deployment/demo: a release is in progress" in restart.output

    listed = await ok(kubeconfig, namespace, "list")
    assert listed.split("\n")[0].split() == ["NAME", "STATUS", "STEP", "STATE", "MESSAGE", "AGE"]
    assert listed.split("\n")[1].split()[:4] == ["demo", "Progressing", "1/2", "StepPaused"]

    assert await ok(kubeconfig, namespace, "approve", "demo") == "rollout.rollouts.kruise.io/demo approved\n"
    await rel.then_paused_at(2)
    await rel.then_pods({V1: 5, V2: 2}, what="2 canary pods")

    described = await ok(kubeconfig, namespace, "describe", "demo")
    assert "BATCH ID" in described
    assert described.count(" canary ") >= 2  # the two canary pods, listed with their version
    history = await ok(kubeconfig, namespace, "history", "demo")
    assert "canary Deployment" in history
    assert V1 in history
    assert V2 in history

    await ok(kubeconfig, namespace, "approve", "demo")
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="all pods on v2")
    done = json.loads(await ok(kubeconfig, namespace, "status", "demo", "-o", "json"))
    assert [s["state"] for s in done["steps"]] == ["done", "done"]


async def test_undo_at_step_one_cancels_and_every_pod_is_v1(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    fast = await graylane(kubeconfig, namespace, "undo", "demo", "--fast")
    assert fast.exit_code == 1
    assert "--fast applies to blue-green releases only" in fast.output

    said = await ok(kubeconfig, namespace, "undo", "demo")
    assert said.startswith(
        "rollout.rollouts.kruise.io/demo rolled back: deployment/demo to stable revision 1"
    )
    ro = await rel.then_completed(succeeded=False)
    assert ro["status"]["message"] == "Rollout progressing has been cancelled"
    await rel.then_pods({V1: 5}, what="every pod on v1")
    assert await rel.canary_deployments() == []

    cancelled = await graylane(kubeconfig, namespace, "status", "demo", "-o", "json")
    assert cancelled.exit_code == 1  # as `kubectl argo rollouts status`: a rolled-back release fails a gate
    status = json.loads(cancelled.stdout)
    assert [s["state"] for s in status["steps"]] == ["cancelled", "cancelled"]
    assert status["outcome"] == "Cancelled"
    assert "Error: the release is Cancelled" in cancelled.stderr
    nothing = await graylane(kubeconfig, namespace, "abort", "demo")
    assert nothing.exit_code == 1
    assert "nothing to abort" in nothing.output

    assert "restarted" in await ok(kubeconfig, namespace, "restart", "demo")
    await then_releasing_at(rel, 1)  # under a Rollout, a restart is released through the steps
    await rel.then_pods({V1: 6}, what="1 restarted canary pod next to 5 stable ones")


async def test_abort_then_retry_restarts_the_release(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(two_steps_v1beta1("partition"))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 4, V2: 1}, what="partition step 1")

    assert "aborted" in await ok(kubeconfig, namespace, "abort", "demo")
    await rel.then_completed(succeeded=False)
    await rel.then_pods({V1: 5}, what="aborted back to v1")

    assert "retried" in await ok(kubeconfig, namespace, "retry", "demo")
    await then_releasing_at(rel, 1)
    await rel.then_pods({V1: 4, V2: 1}, what="retried release at step 1")
    again = await graylane(kubeconfig, namespace, "retry", "demo")
    assert again.exit_code == 1
    assert "nothing to retry" in again.output
    await ok(kubeconfig, namespace, "approve", "demo")
    await rel.then_paused_at(2)
    await ok(kubeconfig, namespace, "approve", "demo")
    await rel.then_completed()
    await rel.then_pods({V2: 5}, what="retried release completed")


async def test_piped_watch_prints_one_line_per_change(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(seed_one_v1alpha1())
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 5, V2: 1}, what="1 canary pod")

    waited = await graylane(
        kubeconfig, namespace, "status", "demo", "--watch", "--interval", "0.5", "--timeout", "3"
    )
    assert waited.exit_code == 1  # still paused for approval when the timeout passed
    assert "rollout status watch exceeded timeout (3s): Progressing" in waited.stderr
    lines = waited.stdout.strip().split("\n")
    assert len(lines) == 1, lines  # nothing changed in 3 s: no redraw, no repeated line
    assert lines[0].endswith(
        "demo Progressing step 1/2 StepPaused · canary 1/1 ready · stable 5/5 ready"
        " · waiting for approval: run `graylane approve demo`"
    )


async def test_wrong_name_and_missing_permission_exit_1(
    kube: KubeClient, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    for verb in (
        "approve",
        "pause",
        "resume",
        "undo",
        "abort",
        "retry",
        "restart",
        "status",
        "describe",
        "history",
    ):
        result = await graylane(kubeconfig, namespace, verb, "nope")
        assert result.exit_code == 1, (verb, result.output)
        assert 'rollouts.rollouts.kruise.io "nope" not found' in result.output, verb

    other = await graylane(kubeconfig, namespace, "approve", "deployment/demo")
    assert other.exit_code == 1
    assert "only rollouts are supported" in other.output

    nobody = await _kubeconfig_without_rights(kube, namespace, kubeconfig, tmp_path)
    denied = await graylane(nobody, namespace, "approve", "demo")
    assert denied.exit_code == 1
    assert "forbidden" in denied.output


async def _kubeconfig_without_rights(
    kube: KubeClient, namespace: str, kubeconfig: Path, tmp_path: Path
) -> Path:
    """A kubeconfig for a ServiceAccount with no role at all (RBAC is on in the local cluster)."""
    account: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}}
    await kube.create(SERVICE_ACCOUNT, account, namespace)
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    }
    token = await kube.request("POST", SERVICE_ACCOUNT.path(namespace, "nobody", "token"), body=request)
    config = yaml.safe_load(await asyncio.to_thread(kubeconfig.read_text))
    config["users"] = [
        {"name": u["name"], "user": {"token": token["status"]["token"]}} for u in config["users"]
    ]
    path = tmp_path / "nobody.kubeconfig"
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config))
    return path
