"""Renewing the webhook's certificates in a child process, so the controller never loads cryptography.

`renew_in_child(current, dns_names, now)` runs `python -m graylane.webhook.certs` (certs.renew) with one
JSON request on stdin and reads the answer from stdout: the material to serve with its dates, and
whether it was newly issued. A child costs a Python start-up and the import of cryptography (well under
a second of CPU) at start-up and when a renewal is due (yearly), and keeps the bindings and their
statically linked OpenSSL, ~10 MB, out of the controller's resident memory for good (issue 14).
`LocalCertSource` is URL mode's certificate source on top of it.

What it must not do: import cryptography, or read the clock.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Sequence

from graylane.webhook.certfiles import CertFacts, CertStore, ServingCerts

__all__ = ["CertChildError", "LocalCertSource", "renew_in_child"]

_PEM_KEYS = ("ca", "caKey", "cert", "key")  # as certs.py names them
TIMEOUT = 120.0  # seconds; a start-up on a loaded 2-core machine, with a margin


class CertChildError(RuntimeError):
    """The child process failed or answered something else than the material."""


async def renew_in_child(
    current: ServingCerts | None,
    dns_names: Sequence[str],
    now: dt.datetime,
    *,
    whole_set_for_ca: bool = False,
) -> tuple[ServingCerts, bool]:
    """certs.renew(...) in a child process: (the material to serve, with its dates; newly issued?)."""
    request = {
        "current": _encode(current) if current is not None else None,
        "dnsNames": list(dns_names),
        "now": now.isoformat(),
        "wholeSetForCa": whole_set_for_ca,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graylane.webhook.certs",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), TIMEOUT)
    except BaseException:  # a timeout or a cancellation: the child must not outlive the call
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise CertChildError(
            f"renewing the webhook certificate failed: {err.decode(errors='replace')[-2000:]}"
        )
    return _decode(out)


def _encode(certs: ServingCerts) -> dict[str, str]:
    parts = (certs.ca_pem, certs.ca_key_pem, certs.cert_pem, certs.key_pem)
    return dict(zip(_PEM_KEYS, (base64.b64encode(p).decode() for p in parts), strict=True))


def _decode(out: bytes) -> tuple[ServingCerts, bool]:
    try:
        answer = json.loads(out)
        pems = [base64.b64decode(answer["certs"][k]) for k in _PEM_KEYS]
        dates = [dt.datetime.fromisoformat(d) for d in answer["dates"]]
        return ServingCerts.of(pems, CertFacts(*dates)), bool(answer["issued"])
    except (ValueError, KeyError, TypeError) as failed:
        raise CertChildError(f"the certificate child answered something else: {failed!r}") from failed


@dataclasses.dataclass(frozen=True)
class LocalCertSource:
    """URL mode: the files are the only copy (one process, outside the cluster)."""

    store: CertStore

    async def ensure(self, now: dt.datetime) -> ServingCerts:
        fresh, issued = await renew_in_child(self.store.read(), self.store.dns_names, now)
        if issued:
            self.store.write(fresh)
        return fresh
