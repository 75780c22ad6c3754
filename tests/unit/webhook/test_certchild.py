"""The controller renews its webhook certificate in a child process (certchild.py), never importing
cryptography itself; the child answers what certs.renew would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from graylane.webhook import certfiles
from graylane.webhook.certchild import CertChildError, LocalCertSource, _decode, renew_in_child
from graylane.webhook.certfiles import CertStore

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
NAMES = ("localhost",)


async def test_the_child_issues_then_reuses_with_the_dates(tmp_path: Path) -> None:
    made, issued = await renew_in_child(None, NAMES, NOW)
    assert issued
    assert made.facts is not None
    assert made.not_after == NOW + certfiles.SERVING_VALIDITY
    assert made.facts.ca_not_after == NOW + certfiles.CA_VALIDITY
    assert made.serves(NAMES)  # parsed here (tests may import cryptography)

    again, issued = await renew_in_child(made, NAMES, NOW + dt.timedelta(days=100))
    assert not issued
    assert again == made


async def test_a_due_certificate_is_renewed_with_the_same_ca() -> None:
    made, _ = await renew_in_child(None, NAMES, NOW)
    later = NOW + dt.timedelta(days=340)
    renewed, issued = await renew_in_child(made, NAMES, later)
    assert issued
    assert renewed.ca_pem == made.ca_pem
    assert renewed.cert_pem != made.cert_pem
    assert not renewed.needs_rotation(later)


async def test_the_local_source_writes_the_files_only_when_it_issued(tmp_path: Path) -> None:
    store = CertStore(tmp_path / "certs", NAMES)
    source = LocalCertSource(store)
    first = await source.ensure(NOW)
    assert store.read() == first
    stamp = store.cert_file.stat().st_mtime_ns
    assert await source.ensure(NOW) == first
    assert store.cert_file.stat().st_mtime_ns == stamp


def test_an_answer_that_is_not_the_material_is_an_error() -> None:
    with pytest.raises(CertChildError, match="something else"):
        _decode(b'{"certs": {}}')


def test_the_dates_decide_rotation_without_parsing() -> None:
    facts = certfiles.CertFacts(NOW, NOW + dt.timedelta(days=365), NOW, NOW + dt.timedelta(days=3650))
    certs = certfiles.ServingCerts(b"ca", b"cakey", b"cert", b"key", facts)  # not PEM: never parsed
    assert not certs.needs_rotation(NOW + dt.timedelta(days=300))
    assert certs.needs_rotation(NOW + dt.timedelta(days=340))
    assert certs.needs_rotation(NOW - dt.timedelta(days=1))
    assert certs.ca_reusable(NOW + dt.timedelta(days=340))
