"""certs.py: the CA and serving certificate, their files, reuse across restarts and rotation (fake clock)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from graylane.webhook import certs
from graylane.webhook.certs import CertStore

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
NAMES = ("kruise-rollout-webhook-service.kruise-rollout.svc", "localhost")


@pytest.fixture
def store(tmp_path: Path) -> CertStore:
    return CertStore(tmp_path / "certs", NAMES)


def sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_first_ensure_writes_a_ca_and_a_serving_certificate(store: CertStore) -> None:
    made = store.ensure(NOW)

    assert made.ca.not_valid_after_utc == NOW + certs.CA_VALIDITY
    assert made.not_after == NOW + certs.SERVING_VALIDITY
    assert made.cert.not_valid_before_utc < NOW  # backdated for clock skew
    assert made.dns_names == tuple(sorted(NAMES))
    assert sans(made.cert).get_values_for_type(x509.IPAddress) == [certs.LOOPBACK]
    made.cert.verify_directly_issued_by(made.ca)
    assert made.ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert store.cert_file.read_bytes() == made.cert_pem
    assert store.ca_file.read_bytes() == made.ca_pem


def test_private_keys_are_readable_only_by_the_owner(store: CertStore) -> None:
    store.ensure(NOW)

    assert store.key_file.stat().st_mode & 0o777 == 0o600
    assert (store.directory / "ca.key").stat().st_mode & 0o777 == 0o600


def test_valid_files_are_reused_by_a_later_process(store: CertStore) -> None:
    first = store.ensure(NOW)

    again = CertStore(store.directory, tuple(reversed(NAMES))).ensure(NOW + 300 * DAY)

    assert again == first


@pytest.mark.parametrize(
    ("days", "due"),
    [(0, False), (334, False), (335, True), (336, True), (400, True)],
)
def test_needs_rotation_within_30_days_of_expiry(store: CertStore, days: int, due: bool) -> None:
    made = store.ensure(NOW)

    assert made.needs_rotation(NOW + days * DAY) is due


def test_needs_rotation_before_the_certificate_is_valid(store: CertStore) -> None:
    assert store.ensure(NOW).needs_rotation(NOW - DAY)


def test_a_due_serving_certificate_is_renewed_with_the_same_ca(store: CertStore) -> None:
    first = store.ensure(NOW)
    later = NOW + 340 * DAY

    renewed = store.ensure(later)

    assert renewed.ca_pem == first.ca_pem
    assert renewed.cert_pem != first.cert_pem
    assert renewed.not_after == later + certs.SERVING_VALIDITY
    assert not renewed.needs_rotation(later)
    assert store.load() == renewed


def test_other_names_get_a_new_serving_certificate_from_the_same_ca(store: CertStore) -> None:
    first = store.ensure(NOW)

    other = CertStore(store.directory, ("webhook.example",)).ensure(NOW)

    assert other.ca_pem == first.ca_pem
    assert other.dns_names == ("webhook.example",)


def test_a_ca_close_to_expiry_is_replaced(store: CertStore) -> None:
    first = store.ensure(NOW)
    late = NOW + certs.CA_VALIDITY - 10 * DAY

    renewed = store.ensure(late)

    assert renewed.ca_pem != first.ca_pem
    assert renewed.ca.not_valid_after_utc == late + certs.CA_VALIDITY
    renewed.cert.verify_directly_issued_by(renewed.ca)


@pytest.mark.parametrize("damaged", ["tls.crt", "tls.key", "ca.crt", "ca.key"])
def test_a_damaged_file_means_regenerate(store: CertStore, damaged: str) -> None:
    first = store.ensure(NOW)
    (store.directory / damaged).write_bytes(b"not PEM")

    again = store.ensure(NOW)

    assert again.cert_pem != first.cert_pem
    assert store.load() == again
    again.cert.verify_directly_issued_by(again.ca)


def test_a_missing_file_means_regenerate(store: CertStore) -> None:
    store.ensure(NOW)
    store.key_file.unlink()

    assert store.load() is None
    assert store.ensure(NOW).serves(NAMES)


def test_a_key_that_does_not_match_the_certificate_is_not_served(tmp_path: Path, store: CertStore) -> None:
    store.ensure(NOW)
    stranger = CertStore(tmp_path / "other", NAMES).ensure(NOW)
    store.key_file.write_bytes(stranger.key_pem)

    loaded = store.load()
    assert loaded is not None
    assert not loaded.serves(NAMES)
    assert store.ensure(NOW).serves(NAMES)


def test_a_certificate_from_another_ca_is_not_served(tmp_path: Path, store: CertStore) -> None:
    store.ensure(NOW)
    stranger = CertStore(tmp_path / "other", NAMES).ensure(NOW)
    store.cert_file.write_bytes(stranger.cert_pem)
    store.key_file.write_bytes(stranger.key_pem)

    loaded = store.load()
    assert loaded is not None
    assert not loaded.serves(NAMES)


def test_server_ssl_context_loads_the_files(store: CertStore) -> None:
    store.ensure(dt.datetime.now(dt.UTC))

    context = certs.server_ssl_context(store)

    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_default_directory_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    assert certs.default_directory("dev") == tmp_path / "graylane" / "webhook-certs" / "dev"
    assert CertStore.for_name("dev", NAMES).directory == tmp_path / "graylane" / "webhook-certs" / "dev"


def test_default_directory_is_under_the_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert certs.default_directory("x") == tmp_path / ".cache" / "graylane" / "webhook-certs" / "x"


def test_an_explicit_directory_wins(tmp_path: Path) -> None:
    assert CertStore.for_name("dev", NAMES, tmp_path).directory == tmp_path
