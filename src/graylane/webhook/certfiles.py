"""The webhook server's TLS material as the controller process holds it: PEM bytes, dates, files.

What it does: `ServingCerts` is one consistent set of PEMs (CA, CA key, serving certificate and key)
with the four dates that decide when to renew (`CertFacts`), so the server's hourly check
(`needs_rotation`) is a comparison of datetimes; `CertStore` is the directory holding the files;
`server_ssl_context` loads them into an SSL context.

Why apart from certs.py: parsing and issuing certificates needs `cryptography`, whose bindings (with a
statically linked OpenSSL) are about 10 MB of the controller's resident memory. The controller never
imports it: certs.py does that work in a short-lived child process (certchild.py) and hands back the
PEMs and their dates. The few members below that parse (`ca`, `cert`, `dns_names`, `valid`, `serves`,
or `needs_rotation` without dates) import certs.py when called: tools and tests use them.

What it must not do: import `cryptography` at module level, read the clock, or talk to the cluster.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "BACKDATE",
    "CA_VALIDITY",
    "RENEW_BEFORE",
    "SERVING_VALIDITY",
    "CertFacts",
    "CertSource",
    "CertStore",
    "ServingCerts",
    "default_directory",
    "server_ssl_context",
]

CA_VALIDITY = dt.timedelta(days=3650)
SERVING_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start an hour in the past so that an API server whose clock runs slightly behind ours
# does not reject a certificate issued a moment ago as "not yet valid".
BACKDATE = dt.timedelta(hours=1)

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


def default_directory(name: str) -> Path:
    """`$XDG_CACHE_HOME/graylane/webhook-certs/<name>` (`~/.cache/...` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graylane" / "webhook-certs" / name


@dataclasses.dataclass(frozen=True)
class CertFacts:
    """The validity windows of the serving certificate and of the CA (UTC)."""

    not_before: dt.datetime
    not_after: dt.datetime
    ca_not_before: dt.datetime
    ca_not_after: dt.datetime


def _fresh(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    return not_before <= now and not_after - now > RENEW_BEFORE


@dataclasses.dataclass(frozen=True)
class ServingCerts:
    """One consistent set of PEM material: the CA, and the serving certificate and key it signed.

    `facts` holds the dates when known (always, for material from certs.py); equality is by the PEMs.
    """

    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    facts: CertFacts | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, pems: Sequence[bytes], facts: CertFacts | None = None) -> ServingCerts:
        """From the four PEMs in field order (CA, CA key, certificate, key)."""
        ca, ca_key, cert, key = pems
        return cls(ca, ca_key, cert, key, facts)

    def dates(self) -> CertFacts:
        if self.facts is not None:
            return self.facts
        from graylane.webhook import certs  # parses the PEMs (cryptography)

        return certs.facts_of(self)

    @property
    def not_after(self) -> dt.datetime:
        """When the serving certificate expires."""
        return self.dates().not_after

    def needs_rotation(self, now: dt.datetime) -> bool:
        """True when the serving certificate or the CA expires within `RENEW_BEFORE` of `now`."""
        dates = self.dates()
        serving = _fresh(dates.not_before, dates.not_after, now)
        return not (serving and _fresh(dates.ca_not_before, dates.ca_not_after, now))

    def ca_reusable(self, now: dt.datetime) -> bool:
        dates = self.dates()
        return _fresh(dates.ca_not_before, dates.ca_not_after, now)

    # -- parsing (imports cryptography: tools and tests) ------------------------------------------

    @property
    def ca(self) -> x509.Certificate:
        from graylane.webhook import certs

        return certs.load_certificate(self.ca_pem)

    @property
    def cert(self) -> x509.Certificate:
        from graylane.webhook import certs

        return certs.load_certificate(self.cert_pem)

    @property
    def dns_names(self) -> tuple[str, ...]:
        from graylane.webhook import certs

        return certs.dns_names_of(self)

    def valid(self) -> bool:
        """The certificate was issued by the CA, and each key belongs to its certificate."""
        from graylane.webhook import certs

        return certs.consistent(self)

    def serves(self, dns_names: Sequence[str]) -> bool:
        """Issued for exactly these DNS names plus 127.0.0.1, by our CA, with the key we hold."""
        from graylane.webhook import certs

        return certs.serves(self, dns_names)


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

    def read(self) -> ServingCerts | None:
        """The files as they are (not parsed: see `load`), or None when one is missing."""
        try:
            return ServingCerts.of([self._read(n) for n in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)])
        except OSError:
            return None

    def load(self) -> ServingCerts | None:
        """The material on disk with its dates, or None when a file is missing or does not parse."""
        from graylane.webhook import certs

        return certs.parse(self.read())

    def ensure(self, now: dt.datetime) -> ServingCerts:
        """Reuse the files if still good at `now`; else renew the serving certificate (and CA if needed).

        In this process (cryptography is imported); the controller uses certchild.LocalCertSource.
        """
        from graylane.webhook import certs

        fresh, issued = certs.renew(self.read(), self.dns_names, now)
        if issued:
            self.write(fresh)
        return fresh

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


def server_ssl_context(store: CertStore) -> ssl.SSLContext:
    """A server context loaded from the store's files; `load_cert_chain` again rotates it in place."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(store.cert_file, store.key_file)
    return context


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
