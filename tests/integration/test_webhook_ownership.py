"""Issue 10 item 5: only the leader points the CRD conversion and the webhook configurations at itself.

Two `graylane controller` processes in URL mode on the real cluster. A standby that starts leaves the
configurations alone, and killing it changes nothing for admission; killing the leader (SIGKILL, so the
lease is not released) hands the configurations to the new leader once it takes the lease.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from graylane.api import crdgen
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.leader import DEFAULT_LEASE_NAME
from graylane.webhook import install as inst
from tests.integration.builders import deployment
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.test_canary_seed import two_steps_v1beta1
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("controller_stopped")  # the session's controller must not lead meanwhile
LEASE_NAMESPACE = "kruise-rollout"
CONVERTED_CRD = "rollouts.rollouts.kruise.io"


@pytest.fixture
def pair(kubeconfig: Path, tmp_path: Path) -> Iterator[tuple[ControllerProcess, ControllerProcess]]:
    a = ControllerProcess(kubeconfig, tmp_path, identity="owner-a")
    b = ControllerProcess(kubeconfig, tmp_path, identity="owner-b")
    try:
        yield a, b
    finally:
        for proc in (a, b):
            proc.stop()


async def holder(kube: KubeClient) -> str:
    lease = await kube.get_or_none(r.LEASE, DEFAULT_LEASE_NAME, LEASE_NAMESPACE)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


async def pointed_ports(kube: KubeClient) -> set[int | None]:
    """The ports every webhook and the Rollout CRD's conversion call, as configured now."""
    urls = []
    for res, name in (
        (r.MUTATING_WEBHOOK, inst.MUTATING_CONFIGURATION),
        (r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION),
    ):
        config = await kube.get(res, name)
        urls += [w["clientConfig"].get("url", "") for w in config["webhooks"]]
    crd = await kube.get(r.CRD, CONVERTED_CRD)
    urls.append(crd["spec"]["conversion"]["webhook"]["clientConfig"].get("url", ""))
    return {urlparse(u).port for u in urls}


async def wait_owner(kube: KubeClient, proc: ControllerProcess, within: float = 60) -> None:
    await eventually(
        lambda: holder(kube), lambda h: h == proc.identity, what=f"{proc.identity} leads", timeout=within
    )
    await eventually(
        lambda: pointed_ports(kube),
        lambda ports: ports == {proc.webhook_port},
        what=f"configurations pointing at {proc.identity} (port {proc.webhook_port})",
        timeout=within,
    )


async def admission_works(kube: KubeClient, namespace: str, tag: str) -> None:
    """Both webhooks answer: an invalid Rollout is refused by the validating webhook (a 422 from it, not a
    call failure), a valid one is admitted, and a labelled Deployment's update passes the mutating one."""
    bad: dict[str, Any] = copy.deepcopy(two_steps_v1beta1("canary"))
    bad["metadata"] = {"name": f"bad-{tag}", "namespace": namespace}
    bad["spec"]["strategy"]["canary"]["steps"][0]["replicas"] = 0
    with pytest.raises(ApiError) as refused:
        await kube.create(r.ROLLOUT, bad, namespace)
    assert refused.value.code == 422, refused.value
    assert "replicas must be positive number" in refused.value.message
    good: dict[str, Any] = copy.deepcopy(two_steps_v1beta1("canary"))
    good["metadata"] = {"name": f"ok-{tag}", "namespace": namespace}
    good["spec"]["workloadRef"]["name"] = f"app-{tag}"
    await kube.create(r.ROLLOUT, good, namespace)
    labels = {inst.WORKLOAD_TYPE_LABEL: "deployment"}
    await kube.create(r.DEPLOYMENT, deployment(f"plain-{tag}", namespace, replicas=1, labels=labels))
    patch = {"metadata": {"annotations": {"touched": tag}}}
    await kube.patch(r.DEPLOYMENT, f"plain-{tag}", patch, namespace)


async def test_a_standby_never_redirects_admission_and_the_new_leader_takes_it_over(
    kube: KubeClient, namespace: str, pair: tuple[ControllerProcess, ControllerProcess]
) -> None:
    a, b = pair
    await asyncio.to_thread(a.start)
    await asyncio.to_thread(a.wait_ready)
    await wait_owner(kube, a)

    await asyncio.to_thread(b.start)
    await asyncio.to_thread(b.wait_ready)  # informers synced: it ran its whole start-up
    await asyncio.sleep(5)  # two lease retries: it campaigned and stayed a standby
    assert await holder(kube) == a.identity
    assert await pointed_ports(kube) == {a.webhook_port}, "the standby re-pointed the configurations"

    await asyncio.to_thread(b.kill)
    await admission_works(kube, namespace, "after-standby-death")
    assert await pointed_ports(kube) == {a.webhook_port}

    await asyncio.to_thread(b.start)
    await asyncio.to_thread(b.wait_ready)
    await asyncio.to_thread(a.kill)  # no lease release: b takes over once the lease expires
    await wait_owner(kube, b, within=90)
    await admission_works(kube, namespace, "after-leader-death")


def test_the_crds_are_the_ones_the_leader_installs() -> None:
    """The CRD whose conversion the test reads is one install() converts (a check on the test itself)."""
    names = {
        crd["metadata"]["name"]
        for crd in inst.crd_objects(crdgen.render_all())
        if "conversion" in crd["spec"]
    }
    assert CONVERTED_CRD in names
