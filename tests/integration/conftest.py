"""Integration tier: one real local cluster per test session (built if missing), a namespace per test.

The tier never skips: if the cluster cannot be built or started the session errors and says why.
Set GRAYLANE_TEST_KUBECONFIG to run against an already-running cluster instead (it is not stopped).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graylane.cluster.local import LocalCluster
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.waiting import eventually


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    given = os.environ.get("GRAYLANE_TEST_KUBECONFIG")
    if given:
        yield Path(given)
        return
    name = f"gl-test-{os.getpid()}"
    path = tmp_path_factory.mktemp("cluster") / "kubeconfig.yaml"
    cluster = LocalCluster(name=name, kubeconfig=path)
    try:
        cluster.up(nodes=3)
    except Exception as err:  # the tier must fail loudly, never skip
        cluster.down()
        pytest.fail(f"the local cluster could not start: {err}", pytrace=False)
    try:
        yield path
    finally:
        cluster.down()


@pytest.fixture(scope="session")
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(str(kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        await kube.delete(r.NAMESPACE, name)


@pytest.fixture(scope="session")
def controller_process(
    kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    """The session's `graylane controller` (started on first use); it points CRDs and webhooks at itself."""
    proc = ControllerProcess(kubeconfig, tmp_path_factory.mktemp("controller"), identity="session")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def graylane_controller(controller_process: ControllerProcess) -> ControllerProcess:
    """The session's controller, running, ready and leading with its webhooks installed (restarted if an
    earlier test stopped it)."""
    if controller_process.proc is None or controller_process.proc.poll() is not None:
        controller_process.start()
    controller_process.wait_ready()
    controller_process.wait_installed()
    return controller_process


@pytest.fixture(scope="module")
async def controller_stopped(controller_process: ControllerProcess, kube: KubeClient) -> None:
    """For tests that write Rollout status by hand: no controller may overwrite it meanwhile.

    Earlier tests' namespaces finish terminating first: their Rollouts' finalizers need the controller,
    and a controller started later (test_rbac's) would otherwise finalise them into namespaces that
    refuse its Events."""
    if controller_process.proc is not None and controller_process.proc.poll() is None:
        await eventually(
            lambda: _terminating(kube),
            lambda terminating: not terminating,
            what="earlier tests' namespaces gone",
            timeout=180,
        )
    controller_process.stop()


async def _terminating(kube: KubeClient) -> dict[str, list[str]]:
    """Each terminating namespace with what its status says is left (content and finalizers remaining)."""
    listed = await kube.list(r.NAMESPACE)
    return {
        n["metadata"]["name"]: [
            f"{c.get('type')}: {c.get('message')}"
            for c in n["status"].get("conditions") or []
            if c.get("status") == "True"
        ]
        for n in listed["items"]
        if (n.get("status") or {}).get("phase") == "Terminating"
    }
