"""Self-signed TLS material for the webhook server: a CA, a serving certificate it signs (cryptography).

The API server only calls webhooks over HTTPS and checks the serving certificate against the caBundle we
register, so graylane makes its own small PKI, as Kruise Rollout does (it keeps it in the Secret
`kruise-rollout-webhook-certs`; we keep it in a directory so that a process outside the cluster can use it):

- a CA valid for 10 years and a serving certificate valid for 1 year, with the DNS names asked for plus the
  IP 127.0.0.1 as subject alternative names;
- files in a directory (certfiles.CertStore), reused across restarts while still valid for more than
  `RENEW_BEFORE` and issued for the same names; otherwise renewed (`renew`). The CA is kept when only the
  serving certificate needs renewing, so the caBundle registered in the cluster stays correct.

This module parses and signs, so it imports `cryptography`; the controller process never imports it but
runs `renew` in a child process (certchild.py), `python -m graylane.webhook.certs` reading one JSON
request on stdin and answering on stdout. The crypto-free types live in certfiles.py and are re-exported
here for tools and tests.

Every function takes `now`: this module never reads the clock. It must not talk to the cluster (the
installer injects the caBundle) nor build SSL contexts for clients.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import sys
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from graylane.webhook.certchild import LocalCertSource
from graylane.webhook.certfiles import (
    BACKDATE,
    CA_VALIDITY,
    RENEW_BEFORE,
    SERVING_VALIDITY,
    CertFacts,
    CertSource,
    CertStore,
    ServingCerts,
    default_directory,
    server_ssl_context,
)

__all__ = [
    "CA_VALIDITY",
    "LOOPBACK",
    "RENEW_BEFORE",
    "SERVING_VALIDITY",
    "CertSource",
    "CertStore",
    "LocalCertSource",
    "ServingCerts",
    "consistent",
    "default_directory",
    "dns_names_of",
    "facts_of",
    "issue",
    "load_certificate",
    "parse",
    "renew",
    "server_ssl_context",
    "serves",
]

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def load_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def facts_of(certs: ServingCerts) -> CertFacts:
    """The dates of the serving certificate and of the CA (raises ValueError on a PEM that does not parse)."""
    cert, ca = load_certificate(certs.cert_pem), load_certificate(certs.ca_pem)
    return CertFacts(
        cert.not_valid_before_utc, cert.not_valid_after_utc, ca.not_valid_before_utc, ca.not_valid_after_utc
    )


def parse(certs: ServingCerts | None) -> ServingCerts | None:
    """`certs` with its dates, or None when it is None or a certificate does not parse."""
    if certs is None:
        return None
    try:
        return ServingCerts(certs.ca_pem, certs.ca_key_pem, certs.cert_pem, certs.key_pem, facts_of(certs))
    except ValueError:
        return None


def dns_names_of(certs: ServingCerts) -> tuple[str, ...]:
    return tuple(sorted(_sans(load_certificate(certs.cert_pem)).get_values_for_type(x509.DNSName)))


def consistent(certs: ServingCerts) -> bool:
    """The certificate was issued by the CA, and each key belongs to its certificate."""
    try:
        cert, ca = load_certificate(certs.cert_pem), load_certificate(certs.ca_pem)
        return _issued_by(cert, ca) and _same_key(cert, certs.key_pem) and _same_key(ca, certs.ca_key_pem)
    except ValueError:  # a PEM that does not parse
        return False


def serves(certs: ServingCerts, dns_names: Sequence[str]) -> bool:
    """Issued for exactly these DNS names plus 127.0.0.1, by our CA, with the key we hold."""
    sans = _sans(load_certificate(certs.cert_pem))
    return (
        sorted(sans.get_values_for_type(x509.DNSName)) == sorted(set(dns_names))
        and LOOPBACK in sans.get_values_for_type(x509.IPAddress)
        and consistent(certs)
    )


def renew(
    current: ServingCerts | None,
    dns_names: Sequence[str],
    now: dt.datetime,
    *,
    whole_set_for_ca: bool = False,
) -> tuple[ServingCerts, bool]:
    """(`current` with its dates, False) when it is good at `now` for `dns_names`; else (new material,
    True): a new serving certificate, signed by `current`'s CA while that CA is good (and, with
    `whole_set_for_ca`, the whole set consistent), else by a new CA."""
    parsed = parse(current)
    if parsed is not None and not parsed.needs_rotation(now) and serves(parsed, dns_names):
        return parsed, False
    keep = None
    if parsed is not None and parsed.ca_reusable(now):
        good = consistent(parsed) if whole_set_for_ca else _same_key(parsed.ca, parsed.ca_key_pem)
        keep = parsed if good else None
    return issue(dns_names, now, ca=keep), True


def issue(dns_names: Sequence[str], now: dt.datetime, *, ca: ServingCerts | None = None) -> ServingCerts:
    """A serving certificate for `dns_names` (plus 127.0.0.1), signed by `ca`'s CA or by a new CA."""
    ca_pem, ca_key_pem = (ca.ca_pem, ca.ca_key_pem) if ca is not None else _new_ca(now)
    made = _issue_serving(ca_pem, ca_key_pem, dns_names, now)
    return ServingCerts(made.ca_pem, made.ca_key_pem, made.cert_pem, made.key_pem, facts_of(made))


# -- issuing -----------------------------------------------------------------------------------------


def _new_ca(now: dt.datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graylane-webhook-ca")])
    cert = (
        _builder(name, name, key.public_key(), now, CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _issue_serving(
    ca_pem: bytes, ca_key_pem: bytes, dns_names: Sequence[str], now: dt.datetime
) -> ServingCerts:
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (list(dns_names) or ["127.0.0.1"])[0])])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(set(dns_names))]
    sans.append(x509.IPAddress(LOOPBACK))
    cert = (
        _builder(subject, ca.subject, key.public_key(), now, SERVING_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ServingCerts(ca_pem, ca_key_pem, _cert_pem(cert), _key_pem(key))


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- checking ----------------------------------------------------------------------------------------


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _same_key(cert: x509.Certificate, key_pem: bytes) -> bool:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    ours = _public_der(cert.public_key())
    return ours is not None and ours == _public_der(key.public_key())


def _public_der(key: object) -> bytes | None:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None  # we only ever issue EC keys; anything else is someone else's file
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- files ---------------------------------------------------------------------------------------------


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# -- the child process (certchild.py) ----------------------------------------------------------------


_PEM_KEYS = ("ca", "caKey", "cert", "key")


def _pems(certs: ServingCerts) -> dict[str, str]:
    parts = (certs.ca_pem, certs.ca_key_pem, certs.cert_pem, certs.key_pem)
    return dict(zip(_PEM_KEYS, (base64.b64encode(p).decode() for p in parts), strict=True))


def _child(request: dict[str, Any]) -> dict[str, Any]:
    raw = request.get("current")
    current = ServingCerts.of([base64.b64decode(raw[k]) for k in _PEM_KEYS]) if raw else None
    now = dt.datetime.fromisoformat(request["now"])
    names = list(request["dnsNames"])
    fresh, issued = renew(current, names, now, whole_set_for_ca=bool(request.get("wholeSetForCa")))
    facts = fresh.dates()
    dates = (facts.not_before, facts.not_after, facts.ca_not_before, facts.ca_not_after)
    return {"certs": _pems(fresh), "dates": [d.isoformat() for d in dates], "issued": issued}


if __name__ == "__main__":
    json.dump(_child(json.load(sys.stdin)), sys.stdout)
