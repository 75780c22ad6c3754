"""Service mode's shared serving certificate: the Secret `kruise-rollout-webhook-certs` on the real API
server, replicas converging on one certificate, and a TLS handshake under the Service's DNS name."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

from graylane.kube.client import KubeClient
from graylane.webhook.cert_secret import (
    SECRET,
    SECRET_NAME,
    SecretCertSource,
    certs_from_secret,
    service_dns_names,
)
from graylane.webhook.certs import CertStore
from graylane.webhook.install import SERVICE_NAME
from graylane.webhook.server import KubeRolloutLister, WebhookServer, build_app


async def test_replicas_racing_share_one_certificate_for_the_service(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    names = service_dns_names(SERVICE_NAME, namespace)
    now = dt.datetime.now(dt.UTC)
    sources = [
        SecretCertSource(kube, namespace, CertStore(tmp_path / f"replica-{i}", tuple(names)))
        for i in range(3)
    ]
    got = await asyncio.gather(*(s.ensure(now) for s in sources))
    assert len({c.cert_pem for c in got}) == 1, "every replica serves the one certificate"
    secret = await kube.get(SECRET, SECRET_NAME, namespace)
    assert set(secret["data"]) == {"ca-cert.pem", "ca-key.pem", "cert.pem", "key.pem", "tls.crt", "tls.key"}
    stored = certs_from_secret(secret)
    assert stored is not None
    assert stored.cert_pem == got[0].cert_pem
    assert f"{SERVICE_NAME}.{namespace}.svc" in stored.dns_names

    # Due for renewal: the first replica to notice replaces it (same CA), the others adopt that one.
    later = now + dt.timedelta(days=340)
    renewed = await sources[1].ensure(later)
    assert renewed.cert_pem != got[0].cert_pem
    assert renewed.ca_pem == got[0].ca_pem
    assert (await sources[2].ensure(later)).cert_pem == renewed.cert_pem


async def test_the_server_answers_under_the_service_name(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    names = service_dns_names(SERVICE_NAME, namespace)
    source = SecretCertSource(kube, namespace, CertStore(tmp_path / "certs", tuple(names)))
    app = build_app(KubeRolloutLister(kube))
    async with WebhookServer(app, source, host="127.0.0.1", port=0) as server:
        context = ssl.create_default_context(cadata=server.certs.ca_pem.decode())
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname=f"{SERVICE_NAME}.{namespace}.svc"
        )
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
