"""Self-signed TLS material for the webhook server: a CA, a serving certificate it signs, and their files.

The API server only calls webhooks over HTTPS and checks the serving certificate against the caBundle we
register, so graylane makes its own small PKI, as Kruise Rollout does (it keeps it in the Secret
`kruise-rollout-webhook-certs`; we keep it in a directory so that a process outside the cluster can use it):

- a CA valid for 10 years and a serving certificate valid for 1 year, with the DNS names asked for plus the
  IP 127.0.0.1 as subject alternative names;
- files in a directory (`default_directory(name)` unless one is passed), reused across restarts while still
  valid for more than `RENEW_BEFORE` and issued for the same names; otherwise renewed. The CA is kept when
  only the serving certificate needs renewing, so the caBundle registered in the cluster stays correct.

Every function takes `now`: this module never reads the clock. It must not talk to the cluster (the
installer injects the caBundle) nor build SSL contexts for clients.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_VALIDITY",
    "LOOPBACK",
    "RENEW_BEFORE",
    "SERVING_VALIDITY",
    "CertSource",
    "CertStore",
    "LocalCertSource",
    "ServingCerts",
    "default_directory",
    "issue",
    "server_ssl_context",
]

CA_VALIDITY = dt.timedelta(days=3650)
SERVING_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start an hour in the past so that an API server whose clock runs slightly behind ours
# does not reject a certificate issued a moment ago as "not yet valid".
BACKDATE = dt.timedelta(hours=1)
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


def default_directory(name: str) -> Path:
    """`$XDG_CACHE_HOME/graylane/webhook-certs/<name>` (`~/.cache/...` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graylane" / "webhook-certs" / name


@dataclasses.dataclass(frozen=True)
class ServingCerts:
    """One consistent set of PEM material: the CA, and the serving certificate and key it signed."""

    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca_pem)

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def not_after(self) -> dt.datetime:
        """When the serving certificate expires."""
        return self.cert.not_valid_after_utc

    @property
    def dns_names(self) -> tuple[str, ...]:
        return tuple(sorted(_sans(self.cert).get_values_for_type(x509.DNSName)))

    def needs_rotation(self, now: dt.datetime) -> bool:
        """True when the serving certificate or the CA expires within `RENEW_BEFORE` of `now`."""
        return not (_fresh(self.cert, now) and _fresh(self.ca, now))

    def ca_reusable(self, now: dt.datetime) -> bool:
        return _fresh(self.ca, now)

    def valid(self) -> bool:
        """The certificate was issued by the CA, and each key belongs to its certificate."""
        try:
            return (
                _issued_by(self.cert, self.ca)
                and _same_key(self.cert, self.key_pem)
                and _same_key(self.ca, self.ca_key_pem)
            )
        except ValueError:  # a PEM that does not parse
            return False

    def serves(self, dns_names: Sequence[str]) -> bool:
        """Issued for exactly these DNS names plus 127.0.0.1, by our CA, with the key we hold."""
        sans = _sans(self.cert)
        return (
            sorted(sans.get_values_for_type(x509.DNSName)) == sorted(set(dns_names))
            and LOOPBACK in sans.get_values_for_type(x509.IPAddress)
            and _issued_by(self.cert, self.ca)
            and _same_key(self.cert, self.key_pem)
            and _same_key(self.ca, self.ca_key_pem)
        )


@dataclasses.dataclass(frozen=True)
class CertStore:
    """The directory with one webhook server's PEM files, and the names its certificate must carry."""

    directory: Path
    dns_names: tuple[str, ...] = ("localhost",)

    @classmethod
    def for_name(cls, name: str, dns_names: Sequence[str], directory: Path | None = None) -> CertStore:
        return cls(directory or default_directory(name), tuple(dns_names))

    @property
    def cert_file(self) -> Path:
        return self.directory / TLS_CERT

    @property
    def key_file(self) -> Path:
        return self.directory / TLS_KEY

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_CERT

    def load(self) -> ServingCerts | None:
        """The material on disk, or None when a file is missing or does not parse."""
        try:
            certs = ServingCerts(*(self._read(n) for n in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)))
            _ = (certs.cert, certs.ca)  # parse now, so that a damaged file means "regenerate"
        except (OSError, ValueError):
            return None
        return certs

    def ensure(self, now: dt.datetime) -> ServingCerts:
        """Reuse the files if still good at `now`; else renew the serving certificate (and CA if needed)."""
        current = self.load()
        if current is not None and self._good(current, now):
            return current
        keep = current if current is not None and current.ca_reusable(now) and _ca_valid(current) else None
        fresh = issue(self.dns_names, now, ca=keep)
        self.write(fresh)
        return fresh

    def _good(self, certs: ServingCerts, now: dt.datetime) -> bool:
        return not certs.needs_rotation(now) and certs.serves(self.dns_names)

    def _read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def write(self, certs: ServingCerts) -> None:
        """Replace the files with `certs` (each file atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Keys before certificates: a reader that races us then sees a new key with an old certificate,
        # which `serves()` rejects, rather than a silently mismatched pair.
        _write_atomic(self.directory / CA_KEY, certs.ca_key_pem, 0o600)
        _write_atomic(self.directory / TLS_KEY, certs.key_pem, 0o600)
        _write_atomic(self.directory / CA_CERT, certs.ca_pem, 0o644)
        _write_atomic(self.directory / TLS_CERT, certs.cert_pem, 0o644)


class CertSource(Protocol):
    """Where the webhook server's material comes from: `ensure` makes the store's files good at `now`."""

    @property
    def store(self) -> CertStore: ...

    async def ensure(self, now: dt.datetime) -> ServingCerts: ...


@dataclasses.dataclass(frozen=True)
class LocalCertSource:
    """URL mode: the files are the only copy (one process, outside the cluster)."""

    store: CertStore

    async def ensure(self, now: dt.datetime) -> ServingCerts:
        return self.store.ensure(now)


def issue(dns_names: Sequence[str], now: dt.datetime, *, ca: ServingCerts | None = None) -> ServingCerts:
    """A serving certificate for `dns_names` (plus 127.0.0.1), signed by `ca`'s CA or by a new CA."""
    ca_pem, ca_key_pem = (ca.ca_pem, ca.ca_key_pem) if ca is not None else _new_ca(now)
    return _issue_serving(ca_pem, ca_key_pem, dns_names, now)


def server_ssl_context(store: CertStore) -> ssl.SSLContext:
    """A server context loaded from the store's files; `load_cert_chain` again rotates it in place."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(store.cert_file, store.key_file)
    return context


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


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


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


def _ca_valid(certs: ServingCerts) -> bool:
    return _same_key(certs.ca, certs.ca_key_pem)


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


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
