"""Fixtures: graylane's webhook server in the test process, and the cluster's CRDs and webhooks pointed at it.

- `webhook_server` (session): the HTTPS server on 127.0.0.1, on a free port, behind `webhook_mutator`
  (override that fixture to put a real `WorkloadMutator` behind `/mutate-apps-v1-deployment`).
- `installed_graylane` (session): `install()` in URL mode once; at session end the two webhook
  configurations are deleted (the CRDs stay: deleting them deletes every Rollout, and the cluster is torn
  down with the session anyway). For sessions where nothing else installs graylane.
- `webhooks_in_process` (module): points the cluster at the in-process server for one module, then puts
  back whatever was registered before (e.g. the session's controller process, which installs itself), so
  later tests talk to the webhooks they expect.

Import what you use (and what it depends on), e.g. in conftest.py::

    from tests.integration.webhook_fixtures import (  # noqa: F401
        installed_graylane, webhook_mutator, webhook_server,
    )
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graylane.api import crdgen
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.resources import Resource
from graylane.webhook import install as inst
from graylane.webhook.certs import CertStore
from graylane.webhook.server import (
    AllowUnchanged,
    KubeRolloutLister,
    WebhookServer,
    WorkloadMutator,
    build_app,
)
from tests.integration.waiting import eventually

INSTALL_NAMESPACE = "kruise-rollout"
Obj = dict[str, Any]
CONFIGURATIONS = (
    (r.MUTATING_WEBHOOK, inst.MUTATING_CONFIGURATION),
    (r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION),
)


@dataclasses.dataclass(frozen=True)
class InstalledGraylane:
    server: WebhookServer
    url_base: str
    ca_pem: bytes
    namespace: str


@pytest.fixture(scope="session")
def webhook_mutator() -> WorkloadMutator:
    return AllowUnchanged()


@pytest.fixture(scope="session")
async def webhook_server(
    kube: KubeClient, webhook_mutator: WorkloadMutator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebhookServer]:
    store = CertStore(tmp_path_factory.mktemp("webhook-certs"), ("localhost",))
    async with WebhookServer(build_app(KubeRolloutLister(kube), webhook_mutator), store, port=0) as server:
        yield server


async def point_at(kube: KubeClient, server: WebhookServer) -> InstalledGraylane:
    ca_pem = server.certs.ca_pem
    await inst.install(
        kube, url_base=server.url_base, service=None, ca_pem=ca_pem, namespace=INSTALL_NAMESPACE
    )
    return InstalledGraylane(server, server.url_base, ca_pem, INSTALL_NAMESPACE)


@pytest.fixture(scope="session")
async def installed_graylane(
    kube: KubeClient, webhook_server: WebhookServer
) -> AsyncIterator[InstalledGraylane]:
    try:
        yield await point_at(kube, webhook_server)
    finally:
        await inst.uninstall(kube)


@pytest.fixture(scope="module")
async def webhooks_in_process(
    kube: KubeClient, webhook_server: WebhookServer
) -> AsyncIterator[InstalledGraylane]:
    before = await Snapshot.take(kube)
    try:
        yield await point_at(kube, webhook_server)
    finally:
        await before.restore(kube)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The webhook configurations and CRD conversion settings as they were, to put back afterwards."""

    configurations: dict[str, tuple[Resource, Obj | None]]
    conversions: dict[str, Obj]

    @classmethod
    async def take(cls, kube: KubeClient) -> Snapshot:
        configurations = {name: (res, await kube.get_or_none(res, name)) for res, name in CONFIGURATIONS}
        conversions: dict[str, Obj] = {}
        for crd in inst.crd_objects(crdgen.render_all()):
            live = await kube.get_or_none(r.CRD, crd["metadata"]["name"])
            if live is not None and "conversion" in live["spec"]:
                conversions[crd["metadata"]["name"]] = live["spec"]["conversion"]
        return cls(configurations, conversions)

    async def restore(self, kube: KubeClient) -> None:
        for name, (res, old) in self.configurations.items():
            await _put_back(kube, res, name, old)
        for name, conversion in self.conversions.items():
            ops = [{"op": "replace", "path": "/spec/conversion", "value": conversion}]
            await kube.patch(r.CRD, name, ops, patch_type="json")


async def _put_back(kube: KubeClient, res: Resource, name: str, old: Obj | None) -> None:
    current = await kube.get_or_none(res, name)
    if old is None:
        await kube.delete(res, name)
        return
    meta = {k: old["metadata"][k] for k in ("name", "labels", "annotations") if k in old["metadata"]}
    body = {**old, "metadata": meta}
    if current is None:
        await kube.create(res, body)
    else:
        await kube.replace(
            res, {**body, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
        )


async def create_unvalidated(
    kube: KubeClient, resource: Resource, obj: Obj, namespace: str | None = None
) -> None:
    """Create `obj` after the validating configuration was deleted. The API server drops a deleted
    configuration from its admission chain shortly after, not at once: until then the create is still
    sent to vrollout.kb.io (refused by it, or failing to reach a stopped server), so it is repeated."""

    async def created() -> bool:
        try:
            await kube.create(resource, obj, namespace)
        except ApiError as err:
            if "vrollout.kb.io" in err.message:
                return False  # still in the admission chain
            raise
        return True

    await eventually(created, lambda done: done, what="a create no longer sent to the validating webhook")
