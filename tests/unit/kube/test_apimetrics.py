"""graylane_api_requests_total: verb/resource as Kubernetes names them, the status code, the User-Agent.

The client tests talk to a plain local HTTP server that records what it receives (no Kubernetes API
is imitated: it answers every path with the same small JSON body or a chosen status).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig
from prometheus_client import CollectorRegistry, generate_latest

from graylane.bench.stats import parse_counter
from graylane.kube import resources as r
from graylane.kube.apimetrics import ApiMetrics, request_labels
from graylane.kube.client import ApiError, KubeClient, TransportName, user_agent


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("GET", "/apis/rollouts.kruise.io/v1beta1/namespaces/ns/rollouts/ro", None, ("get", "rollouts")),
        ("GET", "/apis/rollouts.kruise.io/v1beta1/namespaces/ns/rollouts", None, ("list", "rollouts")),
        ("GET", "/apis/rollouts.kruise.io/v1beta1/rollouts", None, ("list", "rollouts")),
        ("GET", "/apis/apps/v1/replicasets", {"watch": "true"}, ("watch", "replicasets")),
        ("GET", "/api/v1/namespaces/ns/pods", {"limit": 500}, ("list", "pods")),
        ("POST", "/apis/apps/v1/namespaces/ns/deployments", None, ("create", "deployments")),
        (
            "PUT",
            "/apis/rollouts.kruise.io/v1beta1/namespaces/ns/rollouts/ro/status",
            None,
            ("update", "rollouts/status"),
        ),
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", None, ("patch", "deployments/scale")),
        ("DELETE", "/api/v1/namespaces/ns/pods/p", None, ("delete", "pods")),
        ("DELETE", "/api/v1/namespaces/ns/pods", None, ("deletecollection", "pods")),
        # Cluster-scoped resources, and the Namespace itself with its own subresources.
        ("GET", "/api/v1/namespaces/ns", None, ("get", "namespaces")),
        ("GET", "/api/v1/namespaces", None, ("list", "namespaces")),
        ("PUT", "/api/v1/namespaces/ns/finalize", None, ("update", "namespaces/finalize")),
        ("GET", "/api/v1/nodes/n1", None, ("get", "nodes")),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", None, ("update", "leases")),
        ("GET", "/version", None, ("get", "/version")),
        # OpenKruise's workloads share their plurals with apps/v1: labelled with their group.
        (
            "GET",
            "/apis/apps.kruise.io/v1beta1/statefulsets",
            {"watch": "1"},
            ("watch", "statefulsets.apps.kruise.io"),
        ),
        (
            "PATCH",
            "/apis/apps.kruise.io/v1alpha1/namespaces/ns/clonesets/web/status",
            None,
            ("patch", "clonesets.apps.kruise.io/status"),
        ),
        ("GET", "/apis/apps/v1/namespaces/ns/statefulsets", None, ("list", "statefulsets")),
    ],
)
def test_request_labels(
    method: str, path: str, params: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    assert request_labels(method, path, params) == expected


def test_the_resource_helpers_paths_label_back_to_their_plural() -> None:
    for res in (r.ROLLOUT, r.REPLICASET, r.POD, r.NAMESPACE, r.LEASE):
        assert request_labels("GET", res.path("ns", "x")) == ("get", res.plural)
        assert request_labels("GET", res.path("ns")) == ("list", res.plural)
        assert request_labels("PUT", res.path("ns", "x", "status")) == ("update", f"{res.plural}/status")


def test_the_counter_lives_on_the_given_registry_only() -> None:
    mine, other = CollectorRegistry(), CollectorRegistry()
    metrics = ApiMetrics(mine)
    metrics.observe("list", "rollouts", 200)
    metrics.observe("list", "rollouts", 500)

    counted = parse_counter(
        generate_latest(mine).decode(), "graylane_api_requests_total", ("verb", "resource", "code")
    )
    assert counted == {("list", "rollouts", "200"): 1, ("list", "rollouts", "500"): 1}
    assert metrics.count("list", "rollouts") == 2
    assert b"graylane_api_requests" not in generate_latest(other)
    ApiMetrics(other)  # a second process-wide owner elsewhere does not clash: nothing is global


# -- the client against a recording HTTP server --------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.agents: list[str] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.agents.append(request.headers.get("User-Agent", ""))
        if self.status >= 400:
            body = {"kind": "Status", "code": self.status, "reason": "NotFound", "message": "gone"}
            return web.json_response(body, status=self.status)
        if request.query.get("watch") == "true":
            return web.Response(text="")  # a watch that ends at once
        return web.json_response({"kind": "List", "items": [], "metadata": {"resourceVersion": "1"}})


def _config(port: int) -> Any:
    return KubeConfig.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
            "current-context": "x",
        }
    ).get()


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, int]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield rec, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def _counted(registry: CollectorRegistry) -> dict[tuple[str, ...], int]:
    text = generate_latest(registry).decode()
    return dict(parse_counter(text, "graylane_api_requests_total", ("verb", "resource", "code")))


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_the_client_sends_its_user_agent_and_counts_by_status(
    recorder: tuple[Recorder, int], transport: TransportName
) -> None:
    rec, port = recorder
    registry = CollectorRegistry()
    async with KubeClient(_config(port), metrics=ApiMetrics(registry), transport=transport) as kube:
        await kube.list(r.ROLLOUT, "ns")
        events = [event async for event in kube.watch(r.REPLICASET, "ns")]  # an empty stream
        rec.status = 404
        assert await kube.get_or_none(r.ROLLOUT, "ro", "ns") is None
        with pytest.raises(ApiError):
            await kube.patch(r.DEPLOYMENT, "web", {"spec": {}}, "ns", subresource="scale")

    assert events == []
    assert user_agent().startswith("graylane/")
    assert rec.agents == [user_agent()] * 4  # the watch pool sends it too
    assert _counted(registry) == {
        ("list", "rollouts", "200"): 1,
        ("watch", "replicasets", "200"): 1,
        ("get", "rollouts", "404"): 1,
        ("patch", "deployments/scale", "404"): 1,
    }


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_transport_error_is_counted_as_error(transport: TransportName) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    registry = CollectorRegistry()
    async with KubeClient(_config(port), metrics=ApiMetrics(registry), transport=transport) as kube:
        with pytest.raises(Exception, match="onnect"):
            await kube.get(r.ROLLOUT, "ro", "ns")
        with pytest.raises(Exception, match="onnect"):
            async for _ in kube.watch(r.ROLLOUT, "ns"):
                pass

    assert _counted(registry) == {("get", "rollouts", "error"): 1, ("watch", "rollouts", "error"): 1}
