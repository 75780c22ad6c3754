"""server.py: the routes via aiohttp's test client (stub lister and mutator), and the TLS server itself."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import test_utils, web
from cryptography import x509

from graylane.webhook import server as srv
from graylane.webhook.admission import AdmissionRequest
from graylane.webhook.certs import CertStore

NS = "ns1"
WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def v1beta1_rollout(name: str = "demo", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workloadRef": dict(WORKLOAD),
        "strategy": {"canary": {"steps": [{"replicas": 1}, {"replicas": "50%", "traffic": "50%"}]}},
    }
    body.update(spec)
    meta = {"name": name, "namespace": NS}
    return {"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout", "metadata": meta, "spec": body}


def v1alpha1_rollout() -> dict[str, Any]:
    annotations = {"rollouts.kruise.io/rolling-style": "partition", "rollouts.kruise.io/trafficrouting": "tr"}
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "old", "namespace": NS, "annotations": annotations},
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "strategy": {"canary": {"steps": [{"weight": 10}, {"weight": 40, "replicas": 3}]}},
        },
    }


def review(obj: dict[str, Any] | None, operation: str = "CREATE", **extra: Any) -> dict[str, Any]:
    version = (obj or {}).get("apiVersion", "rollouts.kruise.io/v1beta1").split("/")[-1]
    request: dict[str, Any] = {
        "uid": "uid-1",
        "kind": {"group": "rollouts.kruise.io", "version": version, "kind": "Rollout"},
        "resource": {"group": "rollouts.kruise.io", "version": version, "resource": "rollouts"},
        "namespace": NS,
        "name": (obj or {}).get("metadata", {}).get("name", ""),
        "operation": operation,
        "object": obj,
    }
    request.update(extra)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def deployment_review(obj: dict[str, Any], operation: str = "UPDATE", **extra: Any) -> dict[str, Any]:
    body = review(obj, operation, oldObject=copy.deepcopy(obj), **extra)
    body["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    body["request"]["resource"] = {"group": "apps", "version": "v1", "resource": "deployments"}
    return body


def deployment() -> dict[str, Any]:
    meta = {
        "name": "web",
        "namespace": NS,
        "uid": "d-uid",
        "labels": {"rollouts.kruise.io/workload-type": "deployment"},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {"replicas": 3}}


class StubLister:
    def __init__(self, rollouts: list[dict[str, Any]] | None = None, fail: bool = False) -> None:
        self.rollouts = rollouts or []
        self.fail = fail
        self.asked: list[str] = []

    async def list_rollouts(self, namespace: str) -> list[dict[str, Any]]:
        self.asked.append(namespace)
        if self.fail:
            raise ConnectionError("apiserver unreachable")
        return copy.deepcopy(self.rollouts)


class PausingMutator:
    """Pauses the Deployment, or raises what it is told to."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.seen: list[AdmissionRequest] = []

    async def mutate(self, request: AdmissionRequest) -> dict[str, Any] | None:
        self.seen.append(request)
        if self.error is not None:
            raise self.error
        changed = copy.deepcopy(request.object) or {}
        changed["spec"]["paused"] = True
        return changed


async def client_for(app: web.Application) -> test_utils.TestClient[web.Request, web.Application]:
    client = test_utils.TestClient(test_utils.TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def lister() -> StubLister:
    return StubLister()


@pytest.fixture
async def client(lister: StubLister) -> AsyncIterator[test_utils.TestClient[web.Request, web.Application]]:
    client = await client_for(srv.build_app(lister))
    yield client
    await client.close()


Client = test_utils.TestClient[web.Request, web.Application]


async def post(client: Client, path: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


# -- health and bad input ------------------------------------------------------------------------------


async def test_healthz(client: Client) -> None:
    resp = await client.get(srv.HEALTHZ_PATH)

    assert resp.status == 200
    assert await resp.text() == "ok"


@pytest.mark.parametrize("path", [srv.CONVERT_PATH, srv.VALIDATE_ROLLOUT_PATH, srv.MUTATE_DEPLOYMENT_PATH])
async def test_bad_json_is_a_400_with_a_message(client: Client, path: str) -> None:
    resp = await client.post(path, data=b"{not json", headers={"Content-Type": "application/json"})

    assert resp.status == 400
    assert "not valid JSON" in await resp.text()


@pytest.mark.parametrize("path", [srv.CONVERT_PATH, srv.VALIDATE_ROLLOUT_PATH, srv.MUTATE_DEPLOYMENT_PATH])
async def test_a_body_that_is_not_a_review_is_a_400(client: Client, path: str) -> None:
    resp = await client.post(path, json={"kind": "Pod"})

    assert resp.status == 400
    assert "expected kind" in await resp.text()


async def test_the_server_keeps_serving_after_bad_input(client: Client) -> None:
    await client.post(srv.VALIDATE_ROLLOUT_PATH, data=b"\xff\xfe")
    await client.post(srv.CONVERT_PATH, json=[1, 2])

    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(v1beta1_rollout()))

    assert answer["response"]["allowed"] is True


# -- conversion ------------------------------------------------------------------------------------------


def conversion_review(objects: list[dict[str, Any]], desired: str) -> dict[str, Any]:
    request = {"uid": "conv-1", "desiredAPIVersion": desired, "objects": objects}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": request}


async def convert(client: Client, obj: dict[str, Any], desired: str) -> dict[str, Any]:
    answer = await post(client, srv.CONVERT_PATH, conversion_review([obj], desired))
    response = answer["response"]
    assert answer["kind"] == "ConversionReview"
    assert response["uid"] == "conv-1"
    assert response["result"]["status"] == "Success", response["result"]
    [converted] = response["convertedObjects"]
    return dict(converted)


async def test_conversion_round_trip(client: Client) -> None:
    beta = await convert(client, v1alpha1_rollout(), "rollouts.kruise.io/v1beta1")

    assert beta["apiVersion"] == "rollouts.kruise.io/v1beta1"
    assert beta["spec"]["workloadRef"] == WORKLOAD
    canary = beta["spec"]["strategy"]["canary"]
    assert canary["steps"][0]["traffic"] == "10%"
    assert canary["steps"][0]["replicas"] == "10%"
    assert canary["steps"][1]["replicas"] == 3
    assert canary.get("enableExtraWorkloadForCanary", False) is False
    assert canary["trafficRoutingRef"] == "tr"

    alpha = await convert(client, beta, "rollouts.kruise.io/v1alpha1")

    assert alpha["apiVersion"] == "rollouts.kruise.io/v1alpha1"
    assert alpha["spec"]["objectRef"]["workloadRef"] == WORKLOAD
    assert [s["weight"] for s in alpha["spec"]["strategy"]["canary"]["steps"]] == [10, 40]
    assert alpha["metadata"]["annotations"]["rollouts.kruise.io/rolling-style"] == "partition"
    assert alpha["metadata"]["annotations"]["rollouts.kruise.io/trafficrouting"] == "tr"


async def test_conversion_to_the_same_version_returns_the_object(client: Client) -> None:
    obj = v1beta1_rollout()

    assert await convert(client, obj, "rollouts.kruise.io/v1beta1") == obj


async def test_conversion_keeps_the_order_of_objects(client: Client) -> None:
    objects = [v1beta1_rollout("a"), v1beta1_rollout("b"), v1beta1_rollout("c")]

    answer = await post(client, srv.CONVERT_PATH, conversion_review(objects, "rollouts.kruise.io/v1alpha1"))

    assert [o["metadata"]["name"] for o in answer["response"]["convertedObjects"]] == ["a", "b", "c"]


async def test_a_failed_conversion_is_a_failure_result_naming_the_object(client: Client) -> None:
    weird = v1beta1_rollout("weird")
    weird["apiVersion"] = "rollouts.kruise.io/v9"

    answer = await post(client, srv.CONVERT_PATH, conversion_review([weird], "rollouts.kruise.io/v1alpha1"))

    result = answer["response"]["result"]
    assert result["status"] == "Failure"
    assert "weird" in result["message"]
    assert answer["response"]["convertedObjects"] == []


# -- validation ------------------------------------------------------------------------------------------


async def test_a_valid_rollout_is_allowed(client: Client, lister: StubLister) -> None:
    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(v1beta1_rollout()))

    assert answer["response"] == {"uid": "uid-1", "allowed": True}
    assert lister.asked == [NS]


async def test_an_invalid_rollout_is_denied_with_422_and_the_message(client: Client) -> None:
    bad = v1beta1_rollout(strategy={"canary": {"steps": []}})

    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(bad))

    response = answer["response"]
    assert response["allowed"] is False
    assert response["uid"] == "uid-1"
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert "Spec.Strategy.Canary.Steps" in response["status"]["message"]
    assert "The number of Canary.Steps cannot be empty" in response["status"]["message"]


async def test_a_v1alpha1_rollout_is_validated_too(client: Client) -> None:
    bad = v1alpha1_rollout()
    bad["metadata"]["annotations"]["rollouts.kruise.io/rolling-style"] = "bluegreen"

    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(bad))

    assert answer["response"]["status"]["code"] == 422
    assert "Rolling style must be 'Canary', 'Partition' or empty" in answer["response"]["status"]["message"]


async def test_another_rollout_on_the_same_workload_is_a_conflict() -> None:
    lister = StubLister([v1beta1_rollout("first"), v1beta1_rollout("demo")])
    client = await client_for(srv.build_app(lister))
    try:
        answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(v1beta1_rollout("demo")))
    finally:
        await client.close()

    message = answer["response"]["status"]["message"]
    assert answer["response"]["status"]["code"] == 422
    assert f"This rollout conflict with Rollout({NS}/first)" in message


async def test_the_rollout_itself_is_not_a_conflict() -> None:
    client = await client_for(srv.build_app(StubLister([v1beta1_rollout("demo")])))
    try:
        answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(v1beta1_rollout("demo"), "UPDATE"))
    finally:
        await client.close()

    assert answer["response"]["allowed"] is True


async def test_immutable_fields_are_checked_against_the_old_object(client: Client) -> None:
    old = v1beta1_rollout()
    old["status"] = {"phase": "Progressing"}
    new = v1beta1_rollout(workloadRef={**WORKLOAD, "name": "other"})

    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(new, "UPDATE", oldObject=old))

    assert answer["response"]["status"]["code"] == 422
    assert "Rollout 'ObjectRef' field is immutable" in answer["response"]["status"]["message"]


@pytest.mark.parametrize(("operation", "extra"), [("DELETE", {}), ("UPDATE", {"subResource": "status"})])
async def test_deletes_and_subresources_are_not_validated(
    client: Client, lister: StubLister, operation: str, extra: dict[str, Any]
) -> None:
    bad = v1beta1_rollout(strategy={})

    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(bad, operation, **extra))

    assert answer["response"]["allowed"] is True
    assert lister.asked == []


async def test_a_failing_lister_is_an_error_not_an_allow() -> None:
    client = await client_for(srv.build_app(StubLister(fail=True)))
    try:
        answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(v1beta1_rollout()))
    finally:
        await client.close()

    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 500
    assert "apiserver unreachable" in answer["response"]["status"]["message"]


async def test_a_create_without_object_is_a_400(client: Client) -> None:
    answer = await post(client, srv.VALIDATE_ROLLOUT_PATH, review(None))

    assert answer["response"]["status"]["code"] == 400


# -- Deployment mutation hook ----------------------------------------------------------------------------


async def test_the_default_mutator_allows_unchanged(client: Client) -> None:
    answer = await post(client, srv.MUTATE_DEPLOYMENT_PATH, deployment_review(deployment()))

    assert answer["response"] == {"uid": "uid-1", "allowed": True}


async def mutate_with(mutator: PausingMutator, body: dict[str, Any]) -> dict[str, Any]:
    client = await client_for(srv.build_app(StubLister(), mutator))
    try:
        return (await post(client, srv.MUTATE_DEPLOYMENT_PATH, body))["response"]  # type: ignore[no-any-return]
    finally:
        await client.close()


async def test_a_changed_object_becomes_a_json_patch() -> None:
    response = await mutate_with(PausingMutator(), deployment_review(deployment()))

    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/spec/paused", "value": True}
    ]


async def test_a_rejection_is_an_errored_response() -> None:
    mutator = PausingMutator(srv.MutationRejected("cannot read the Rollout"))

    response = await mutate_with(mutator, deployment_review(deployment()))

    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"] == "cannot read the Rollout"


async def test_a_crashing_mutator_is_a_500_not_a_crash() -> None:
    response = await mutate_with(PausingMutator(KeyError("spec")), deployment_review(deployment()))

    assert response["allowed"] is False
    assert response["status"]["code"] == 500


@pytest.mark.parametrize(("operation", "extra"), [("CREATE", {}), ("UPDATE", {"subResource": "scale"})])
async def test_only_updates_of_the_object_reach_the_mutator(operation: str, extra: dict[str, Any]) -> None:
    mutator = PausingMutator()

    response = await mutate_with(mutator, deployment_review(deployment(), operation, **extra))

    assert response == {"uid": "uid-1", "allowed": True}
    assert mutator.seen == []


async def test_the_mutator_sees_a_blank_uid_filled_from_the_old_object() -> None:
    mutator = PausingMutator()
    new = deployment()
    del new["metadata"]["uid"]
    body = deployment_review(new)
    body["request"]["oldObject"] = deployment()

    await mutate_with(mutator, body)

    assert mutator.seen[0].object is not None
    assert mutator.seen[0].object["metadata"]["uid"] == "d-uid"


# -- the HTTPS server --------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def peer_certificate(port: int, ca_pem: bytes) -> x509.Certificate:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
    finally:
        writer.close()
        await writer.wait_closed()


async def https_get(port: int, ca_pem: bytes, path: str) -> tuple[int, str]:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_the_server_serves_https_on_a_free_port(tmp_path: Path) -> None:
    store = CertStore(tmp_path, ("localhost",))
    server = srv.WebhookServer(srv.build_app(StubLister()), store, port=0)

    async with server:
        port = server.port
        status, body = await https_get(port, server.certs.ca_pem, srv.HEALTHZ_PATH)
        assert server.url_base == f"https://127.0.0.1:{port}"

    assert port > 0
    assert (status, body) == (200, "ok")


async def test_access_lines_are_logged_at_debug_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = srv.WebhookServer(srv.build_app(StubLister()), CertStore(tmp_path, ("localhost",)), port=0)

    async with server:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            await https_get(server.port, server.certs.ca_pem, srv.HEALTHZ_PATH)
        quiet = [rec for rec in caplog.records if rec.name == "aiohttp.access"]
        with caplog.at_level(logging.DEBUG, logger="aiohttp.access"):
            await https_get(server.port, server.certs.ca_pem, srv.HEALTHZ_PATH)
        await asyncio.sleep(0)  # the access line is written after the response is sent

    lines = [rec for rec in caplog.records if rec.name == "aiohttp.access"]
    assert quiet == []
    assert [(rec.levelno, rec.getMessage()) for rec in lines] == [
        (logging.DEBUG, f"GET {srv.HEALTHZ_PATH} 200")
    ]


async def test_port_is_unknown_before_start(tmp_path: Path) -> None:
    server = srv.WebhookServer(srv.build_app(StubLister()), CertStore(tmp_path), port=0)

    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


async def test_rotation_swaps_the_served_certificate_in_place(tmp_path: Path) -> None:
    real_now = dt.datetime.now(dt.UTC)
    clock = Clock(real_now - dt.timedelta(days=340))
    ca_changes: list[bytes] = []

    async def on_ca_change(bundle: bytes) -> None:
        ca_changes.append(bundle)

    server = srv.WebhookServer(
        srv.build_app(StubLister()), CertStore(tmp_path), port=0, clock=clock, on_ca_change=on_ca_change
    )
    async with server:
        ca = server.certs.ca_pem
        before = await peer_certificate(server.port, ca)
        assert not await server.rotate_if_needed()

        clock.now = real_now
        assert await server.rotate_if_needed()
        after = await peer_certificate(server.port, ca)

    assert after.serial_number != before.serial_number
    assert after.not_valid_after_utc > before.not_valid_after_utc
    assert server.certs.ca_pem == ca
    assert ca_changes == []


async def test_a_new_ca_is_announced_with_both_cas_before_it_is_served(tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC)
    clock = Clock(start)
    bundles: list[bytes] = []

    async def on_ca_change(bundle: bytes) -> None:
        bundles.append(bundle)

    server = srv.WebhookServer(
        srv.build_app(StubLister()), CertStore(tmp_path), port=0, clock=clock, on_ca_change=on_ca_change
    )
    async with server:
        old_ca = server.certs.ca_pem
        clock.now = start + dt.timedelta(days=3640)
        assert await server.rotate_if_needed()
        new_ca = server.certs.ca_pem

    assert new_ca != old_ca
    assert bundles == [new_ca + old_ca]
