"""Service mode: one webhook PKI shared by every replica through the Secret `kruise-rollout-webhook-certs`.

Behind the Service `kruise-rollout-webhook-service` the API server may call any replica, so they must all
serve a certificate for the Service's DNS names signed by the one CA the configurations trust. As Kruise
does, the material lives in a Secret of the controller's namespace, with Kruise's keys (`ca-cert.pem`,
`ca-key.pem`, `cert.pem`, `key.pem`, and `tls.crt`/`tls.key` for tools that expect those):

- `sync_secret` reads the Secret; if it holds good material for the wanted names (CertStore's rules:
  issued by the CA, matching keys, not due for renewal) it is written to the replica's CertStore
  directory; otherwise fresh material is issued (the CA kept when still good) and written to the Secret
  first, with a create (or a resourceVersion-guarded replace), so when replicas race exactly one write
  wins and the others adopt it on their next read;
- the webhook server then loads the directory as in URL mode, and `SecretCertSource.ensure` is how it
  rotates: the Secret first, the files after.

`service_dns_names` are the names the certificate carries. This module must not point the webhook
configurations anywhere (install.py does, on the leader) nor serve anything.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
from typing import Any, Final

from graylane.kube.client import ApiError, KubeClient
from graylane.kube.resources import Resource
from graylane.webhook.certchild import renew_in_child
from graylane.webhook.certfiles import CertStore, ServingCerts

__all__ = [
    "SECRET",
    "SECRET_NAME",
    "SecretCertSource",
    "certs_from_secret",
    "secret_body",
    "service_dns_names",
    "sync_secret",
]

SECRET: Final = Resource("", "v1", "secrets", "Secret")
SECRET_NAME: Final = "kruise-rollout-webhook-certs"
CA_CERT, CA_KEY, CERT, KEY = "ca-cert.pem", "ca-key.pem", "cert.pem", "key.pem"
TLS_CERT, TLS_KEY = "tls.crt", "tls.key"
ATTEMPTS: Final = 5
log = logging.getLogger(__name__)
Obj = dict[str, Any]


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a client may use for the Service; the API server uses `<service>.<namespace>.svc`."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def certs_from_secret(secret: Obj | None) -> ServingCerts | None:
    """The material in the Secret, or None when a key is missing or not base64."""
    data = (secret or {}).get("data") or {}
    try:
        parts = [base64.b64decode(data[k], validate=True) for k in (CA_CERT, CA_KEY, CERT, KEY)]
    except (KeyError, ValueError, TypeError):
        return None
    return ServingCerts.of(parts)


def secret_body(name: str, namespace: str, certs: ServingCerts) -> Obj:
    values = {
        CA_CERT: certs.ca_pem,
        CA_KEY: certs.ca_key_pem,
        CERT: certs.cert_pem,
        KEY: certs.key_pem,
        TLS_CERT: certs.cert_pem,
        TLS_KEY: certs.key_pem,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "graylane"},
        },
        "data": {k: base64.b64encode(v).decode() for k, v in values.items()},
    }


async def sync_secret(
    client: KubeClient, namespace: str, store: CertStore, now: dt.datetime, name: str = SECRET_NAME
) -> ServingCerts:
    """Make the Secret hold good material for `store.dns_names` and copy it into the store's files."""
    for _ in range(ATTEMPTS):
        secret = await client.get_or_none(SECRET, name, namespace)
        # Checked (issued by the CA, matching keys, not due, these names) and, if need be, renewed with
        # the CA kept while the whole set is good: in a child process (certchild.py).
        fresh, issued = await renew_in_child(
            certs_from_secret(secret), store.dns_names, now, whole_set_for_ca=True
        )
        if not issued:
            store.write(fresh)
            return fresh
        body = secret_body(name, namespace, fresh)
        try:
            if secret is None:
                await client.create(SECRET, body, namespace)
            else:
                body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                await client.replace(SECRET, body)
        except ApiError as err:
            if err.conflict or err.already_exists:
                continue  # another replica wrote first: adopt what it wrote on the next read
            raise
        log.info("webhook certificate written to Secret %s/%s", namespace, name)
        store.write(fresh)
        return fresh
    raise RuntimeError(f"Secret {namespace}/{name} kept changing; gave up after {ATTEMPTS} attempts")


@dataclasses.dataclass(frozen=True)
class SecretCertSource:
    """The webhook server's certificate source in Service mode: the Secret, mirrored into `store`."""

    client: KubeClient
    namespace: str
    store: CertStore
    name: str = SECRET_NAME

    async def ensure(self, now: dt.datetime) -> ServingCerts:
        return await sync_secret(self.client, self.namespace, self.store, now, self.name)
