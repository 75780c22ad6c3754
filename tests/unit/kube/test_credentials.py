"""The controller's credentials, read by lightkube in a child process (kube/credentials.py): the same values
lightkube reads in-process, TLS with the kubeconfig's CA and client certificate, a token file read again
after a 401, and errors that say what is wrong."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig

from graylane.kube import credentials as creds
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.webhook.certs import ServingCerts, issue


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, server: str, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
                "current-context": "x",
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def certs() -> ServingCerts:
    return issue(["localhost"], dt.datetime.now(dt.UTC))


class Server:
    def __init__(self) -> None:
        self.seen: list[str] = []  # the Authorization header of each request
        self.valid_token = "t1"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.seen.append(auth)
        if auth != f"Bearer {self.valid_token}":
            status = {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "who are you"}
            return web.json_response(status, status=401)
        return web.json_response({"kind": "Rollout", "metadata": {"name": request.path.rsplit("/", 1)[-1]}})


async def serve(tls: ssl.SSLContext | None) -> AsyncIterator[tuple[Server, int]]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        yield srv, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[Server, int]]:
    async for pair in serve(None):
        yield pair


@pytest.fixture
async def https_server(certs: ServingCerts, tmp_path: Path) -> AsyncIterator[tuple[Server, int]]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (tmp_path / "srv.crt").write_bytes(certs.cert_pem)
    (tmp_path / "srv.key").write_bytes(certs.key_pem)
    tls.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    async for pair in serve(tls):
        yield pair


def test_the_child_reads_what_lightkube_reads_in_process(certs: ServingCerts, tmp_path: Path) -> None:
    user = {
        "client-certificate-data": b64(certs.cert_pem),
        "client-key-data": b64(certs.key_pem),
        "token": "t1",
    }
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        "https://127.0.0.1:6443/",
        {"certificate-authority-data": b64(certs.ca_pem)},
        user,
    )
    child = creds.resolve(str(path))
    in_process = creds.from_single(KubeConfig.from_file(path).get())
    assert child == in_process  # `refresh` is not compared
    assert (child.server, child.namespace, child.authorization, child.has_auth) == (
        "https://127.0.0.1:6443",
        "ns",
        "Bearer t1",
        True,
    )
    assert (child.ca, child.cert, child.key, child.insecure) == (
        certs.ca_pem,
        certs.cert_pem,
        certs.key_pem,
        False,
    )


def test_a_ca_file_named_relative_to_the_kubeconfig_and_a_token_file_are_read(
    certs: ServingCerts, tmp_path: Path
) -> None:
    (tmp_path / "ca.crt").write_bytes(certs.ca_pem)
    (tmp_path / "token").write_text("from-a-file")
    user = {"tokenFile": str(tmp_path / "token")}  # lightkube reads a token file from the working directory
    path = write_kubeconfig(
        tmp_path / "kubeconfig", "https://127.0.0.1:6443", {"certificate-authority": "ca.crt"}, user
    )
    resolved = creds.resolve(str(path))
    assert (resolved.ca, resolved.cert, resolved.authorization) == (certs.ca_pem, None, "Bearer from-a-file")


async def test_https_trusts_the_kubeconfig_ca_and_loads_its_client_certificate(
    https_server: tuple[Server, int], certs: ServingCerts, tmp_path: Path
) -> None:
    srv, port = https_server
    user = {
        "client-certificate-data": b64(certs.cert_pem),
        "client-key-data": b64(certs.key_pem),
        "token": "t1",
    }
    cluster = {"certificate-authority-data": b64(certs.ca_pem)}
    path = write_kubeconfig(tmp_path / "kubeconfig", f"https://localhost:{port}", cluster, user)
    async with KubeClient.from_kubeconfig(str(path), transport="aiohttp") as kube:
        got = await kube.get(r.ROLLOUT, "ro", "ns")
        assert kube.namespace == "ns"
    assert got["metadata"]["name"] == "ro"
    assert srv.seen == ["Bearer t1"]


def test_the_private_copies_for_ssl_are_removed_once_loaded(
    certs: ServingCerts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    resolved = creds.Credentials(
        "https://127.0.0.1:6443", "ns", ca=certs.ca_pem, cert=certs.cert_pem, key=certs.key_pem
    )
    context = resolved.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 1
    assert list(tmp_path.iterdir()) == []


async def test_a_server_certificate_from_another_ca_is_refused(
    https_server: tuple[Server, int], tmp_path: Path
) -> None:
    _, port = https_server
    other = issue(["localhost"], dt.datetime.now(dt.UTC))  # a CA of its own
    cluster = {"certificate-authority-data": b64(other.ca_pem)}
    path = write_kubeconfig(tmp_path / "kubeconfig", f"https://localhost:{port}", cluster, {"token": "t1"})
    async with KubeClient.from_kubeconfig(str(path), transport="aiohttp") as kube:
        with pytest.raises(ssl.SSLCertVerificationError):
            await kube.get(r.ROLLOUT, "ro", "ns")


async def test_a_rotated_token_file_is_read_again_by_a_new_child_after_a_401(
    http_server: tuple[Server, int], tmp_path: Path
) -> None:
    srv, port = http_server
    token = tmp_path / "token"
    token.write_text("t1")
    path = write_kubeconfig(
        tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", {}, {"tokenFile": str(token)}
    )
    async with KubeClient.from_kubeconfig(str(path), transport="aiohttp") as kube:
        await kube.get(r.ROLLOUT, "ro", "ns")
        token.write_text("t2")  # the kubelet rotated it
        srv.valid_token = "t2"
        await kube.get(r.ROLLOUT, "ro", "ns")  # 401 with the old one, then the new one
        srv.valid_token = "nobody"
        with pytest.raises(ApiError) as refused:
            await kube.get(r.ROLLOUT, "ro", "ns")  # one refresh only, then the 401 is the answer
    assert refused.value.code == 401
    assert srv.seen == ["Bearer t1", "Bearer t1", "Bearer t2", "Bearer t2", "Bearer t2"]


def test_no_credentials_means_no_header_and_no_refresh(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", {}, {})
    resolved = creds.resolve(str(path))
    assert (resolved.authorization, resolved.has_auth, resolved.ssl_context()) == (None, False, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("missing",), "ConfigError"),
        (("KUBECONFIG", "nope"), "ConfigError: Context 'nope' not found"),
    ],
)
def test_errors_say_what_is_wrong(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", {}, {"token": "t"})
    target = str(tmp_path / "absent") if args[0] == "missing" else str(path)
    context = args[1] if len(args) > 1 else None
    with pytest.raises(creds.CredentialsError, match=message):
        creds.resolve(target, context)


def test_the_child_prints_plain_json(tmp_path: Path) -> None:
    """The parent parses one JSON document: nothing else (a warning, a log line) may reach stdout."""
    import subprocess
    import sys

    path = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1", {}, {"token": "t"})
    proc = subprocess.run(
        [sys.executable, "-m", "graylane.kube.credentials", json.dumps([str(path), None])],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(proc.stdout)["authorization"] == "Bearer t"
