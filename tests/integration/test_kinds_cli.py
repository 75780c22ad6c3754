"""Issue 16 acceptance: `graylane plan`, `status`, `history` and `undo` for every workload kind.

`plan` reads the workload's replicas from the cluster (a DaemonSet's are its nodes) and plans the
partition each kind gets, which the release then shows at each pause; `status` counts stable and new pods
by the kind's revision label; `history` and `undo` use the workload's ControllerRevisions (the
StatefulSet and DaemonSet controllers keep them; OpenKruise's controller does too, but the driver that
plays it here records none, so `history` is empty and `undo` says why).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from graylane.api.workloads import CLONESET, DAEMONSET, STATEFULSET, WorkloadKind
from graylane.cli.main import cli
from graylane.kube.client import KubeClient
from tests.integration.kinds_fixtures import V1, V2, KindRelease, openkruise_crds

__all__ = ["openkruise_crds"]  # fixtures
pytestmark = pytest.mark.usefixtures("openkruise_crds", "graylane_controller")


async def graylane(kubeconfig: Path, namespace: str, *args: str) -> Result:
    argv = [*args, "--kubeconfig", str(kubeconfig), "-n", namespace]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


async def as_json(kubeconfig: Path, namespace: str, *args: str) -> Any:
    result = await graylane(kubeconfig, namespace, *args, "-o", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("kind", "replicas", "planned"),
    [
        pytest.param(STATEFULSET, 4, [1, 2, 4], id="StatefulSet"),
        pytest.param(DAEMONSET, 3, [1, 2, 3], id="DaemonSet"),
        pytest.param(CLONESET, 4, [1, 2, 4], id="CloneSet"),
    ],
)
async def test_plan_status_history_and_undo(
    kube: KubeClient, namespace: str, kubeconfig: Path, kind: WorkloadKind, replicas: int, planned: list[int]
) -> None:
    rel = KindRelease(kube, namespace, kind, replicas=replicas)
    async with rel.controller():
        await rel.given_workload()
        await rel.given_rollout()

        plan = await as_json(kubeconfig, namespace, "plan", "demo")
        assert (plan["replicas"], plan["style"]) == (replicas, "partition")
        assert [s["canary_pods"] for s in plan["steps"]] == planned

        await rel.when_image(V2)
        await rel.then_paused_at(1)
        await rel.then_pods({V1: replicas - 1, V2: 1}, what="step 1 as planned")
        status = await as_json(kubeconfig, namespace, "status", "demo")
        assert (status["canary"], status["stable"]) == (
            {"ready": 1, "total": 1},
            {"ready": replicas - 1, "total": replicas - 1},
        )
        assert status["canary_wanted"] == planned[0]

        history = await as_json(kubeconfig, namespace, "history", "demo")
        undo = await graylane(kubeconfig, namespace, "undo", "demo")
        if kind.openkruise:
            assert history == []
            assert undo.exit_code == 1
            assert "has no ControllerRevision" in undo.output
            return
        assert [row["note"] for row in history] == ["stable", "current template"]
        assert [row["images"] for row in history] == [[V1], [V2]]
        assert undo.exit_code == 0, undo.output
        assert f"rolled back: {kind.kind.lower()}/demo to stable revision 1" in undo.output

        await rel.then_released({V1: replicas}, what="undone: every pod on the old revision", succeeded=False)
