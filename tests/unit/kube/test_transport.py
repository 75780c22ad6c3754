"""Both transports against a local HTTP server: the same answers, credentials and their refresh after a
401, query encoding, and watch streams whose lines are longer than any read buffer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, TransportName

TRANSPORTS = ["httpx", "aiohttp"]
BIG = "x" * 300_000  # one watch line far over aiohttp's 64 KiB line buffer


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], str]] = []  # method, path, query, Authorization
        self.valid_token = "t1"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.seen.append((request.method, request.path, dict(request.query), auth))
        if auth != f"Bearer {self.valid_token}":
            status = {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "who are you"}
            return web.json_response(status, status=401)
        if request.query.get("watch") == "true":
            events = [
                {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "2"}, "big": BIG}},
                {"type": "MODIFIED", "object": {"metadata": {"name": "a", "resourceVersion": "3"}}},
            ]
            resp = web.StreamResponse()
            await resp.prepare(request)
            for event in events:  # in small pieces, as a real stream arrives
                line = json.dumps(event).encode() + b"\n"
                for start in range(0, len(line), 10_000):
                    await resp.write(line[start : start + 10_000])
            await resp.write_eof()
            return resp
        body = await request.read()
        return web.json_response({"method": request.method, "body": json.loads(body) if body else None})


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, int]]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield srv, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def config(port: int, user: dict[str, Any]) -> Any:
    return KubeConfig.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
            "current-context": "x",
        }
    ).get()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_requests_bodies_and_queries_travel_the_same(
    server: tuple[Server, int], transport: TransportName
) -> None:
    srv, port = server
    async with KubeClient(config(port, {"token": "t1"}), transport=transport) as kube:
        answer = await kube.patch(r.DEPLOYMENT, "web", {"spec": {"replicas": 2}}, "ns")
        listed = await kube.list(r.POD, "ns", label_selector="app=a,pod-template-hash in (h1,h2)", limit=5)
    assert answer == {"method": "PATCH", "body": {"spec": {"replicas": 2}}}
    assert listed["method"] == "GET"
    method, path, query, auth = srv.seen[-1]
    assert (method, path, auth) == ("GET", "/api/v1/namespaces/ns/pods", "Bearer t1")
    assert query == {"labelSelector": "app=a,pod-template-hash in (h1,h2)", "limit": "5"}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_rotated_token_file_is_read_again_after_a_401(
    server: tuple[Server, int], transport: TransportName, tmp_path: Path
) -> None:
    srv, port = server
    token = tmp_path / "token"
    token.write_text("t1")
    async with KubeClient(config(port, {"tokenFile": str(token)}), transport=transport) as kube:
        await kube.get(r.ROLLOUT, "ro", "ns")
        token.write_text("t2")  # the kubelet rotated it
        srv.valid_token = "t2"
        await kube.get(r.ROLLOUT, "ro", "ns")  # 401 with the old one, then the new one
        srv.valid_token = "nobody"
        with pytest.raises(ApiError) as refused:
            await kube.get(r.ROLLOUT, "ro", "ns")  # one refresh only, then the 401 is the answer
    assert refused.value.code == 401
    assert [auth for *_, auth in srv.seen] == [
        "Bearer t1",
        "Bearer t1",
        "Bearer t2",
        "Bearer t2",
        "Bearer t2",
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_watch_lines_of_any_length(server: tuple[Server, int], transport: TransportName) -> None:
    _, port = server
    async with KubeClient(config(port, {"token": "t1"}), transport=transport) as kube:
        events = [
            (kind, obj["metadata"]["resourceVersion"]) async for kind, obj in kube.watch(r.ROLLOUT, "ns")
        ]
        objects = [obj async for _, obj in kube.watch(r.ROLLOUT, "ns")]
    big = objects[0]
    assert events == [("ADDED", "2"), ("MODIFIED", "3")]
    assert big["big"] == BIG
