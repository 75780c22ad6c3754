"""The chaos tier: its own local cluster (the suite restarts its API server), started for this package.

Set GRAYLANE_CHAOS_CLUSTER=<name> to run against a cluster already started under that name by
`graylane cluster up --name <name>` (its API server is restarted during the run, and it is not
stopped afterwards). The GRAYLANE_CHAOS_* knobs are in tests/chaos/settings.py; with
GRAYLANE_CHAOS_KEEP_LOGS=<dir> the control plane's logs are copied there before the cluster is removed.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graylane.kube.client import KubeClient
from tests.chaos.cluster import ChaosCluster, pick_apiserver_port
from tests.chaos.settings import ChaosSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/test_chaos" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="package")
def chaos_settings() -> ChaosSettings:
    settings = ChaosSettings.from_env()
    print(f"chaos settings: {settings.describe()}")
    return settings


@pytest.fixture(scope="package")
def chaos_cluster() -> Iterator[ChaosCluster]:
    given = os.environ.get("GRAYLANE_CHAOS_CLUSTER")
    if given:
        cluster = ChaosCluster(name=given)
        if not cluster.exists() or not cluster.running():
            pytest.fail(f"GRAYLANE_CHAOS_CLUSTER={given}: no running cluster of that name", pytrace=False)
        yield cluster
        return
    cluster = ChaosCluster(
        name=f"gl-chaos-{os.getpid()}", apiserver_port=pick_apiserver_port(random.Random())
    )
    try:
        cluster.up(nodes=3)
    except Exception as err:  # the tier must fail loudly, never skip
        cluster.down()
        pytest.fail(f"the chaos cluster could not start: {err}", pytrace=False)
    try:
        yield cluster
    finally:
        _keep_logs(cluster)
        cluster.down()


def _keep_logs(cluster: ChaosCluster) -> None:
    """Copy the control plane's logs (kube-controller-manager, kube-apiserver, ...) to
    GRAYLANE_CHAOS_KEEP_LOGS before the cluster goes: a release stuck in the native rollout is
    explained there, and the cluster's directory is removed with it."""
    keep = os.environ.get("GRAYLANE_CHAOS_KEEP_LOGS", "").strip()
    logs = cluster.workdir / "clusters" / cluster.name / "logs"
    if keep and logs.is_dir():
        shutil.copytree(logs, Path(keep) / cluster.name, dirs_exist_ok=True)
        print(f"control-plane logs kept in {Path(keep) / cluster.name}")


@pytest.fixture(scope="package")
async def chaos_kube(chaos_cluster: ChaosCluster) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(str(chaos_cluster.kubeconfig_path))
    try:
        yield client
    finally:
        await client.close()
