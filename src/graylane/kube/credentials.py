"""The controller's connection to the API server as plain values, read from a kubeconfig in a child.

lightkube reads kubeconfigs (contexts, in-cluster service accounts, token files, exec plugins, client
certificates; decisions.md says why we use it), and the CLI keeps using it in-process. In the
controller, importing it (and httpx, which it needs) held about 4.7 MB of resident memory for the
process' whole life, 7 % of its baseline (issue 14, BENCHMARKS.md "What the controller's memory is
made of"). So the controller runs `python -m graylane.kube.credentials` once per client: the child
lets lightkube resolve the kubeconfig and prints the server, the namespace, the TLS files' bytes and
the Authorization header that lightkube's auth produces. After a 401 the child runs again, which
reads a rotated token file or runs an exec plugin again, as lightkube's auth objects do in-process.

What it must not do: import lightkube or httpx in the calling process (only `from_single` does, for
callers that already hold a lightkube config); leave key material on disk (the files it writes for
`ssl` are private and removed once loaded).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

__all__ = ["Credentials", "CredentialsError", "from_single", "resolve", "resolve_async"]

# An exec plugin may ask a cloud for a token; lightkube waits for it without a limit, we for this long.
CHILD_TIMEOUT = 120.0


class CredentialsError(RuntimeError):
    """The kubeconfig could not be read or its credentials not produced (the child's message)."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What a transport needs: where, whom to trust, who we are. `has_auth`: the user has a token,
    token file, exec plugin or password, so a 401 is worth one refresh (`refresh`)."""

    server: str
    namespace: str
    insecure: bool = False
    ca: bytes | None = None  # the CA file lightkube would load (certificate-authority[-data])
    cert: bytes | None = None  # client certificate and key files
    key: bytes | None = None
    authorization: str | None = None
    has_auth: bool = False
    refresh: Callable[[], Awaitable[Credentials]] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The context lightkube's `verify_cluster` builds (False for plain http)."""
        if not self.server.startswith("https:"):
            return False
        if self.ca is not None:  # PEM text: ssl takes it as data, no file needed
            ctx = ssl.create_default_context(cadata=self.ca.decode(errors="replace"))
        else:  # no CA named: lightkube asks httpx for its default context; so do we (rare, so lazily)
            import httpx2

            ctx = httpx2.create_ssl_context(verify=not self.insecure, trust_env=False)
        if self.cert is not None and self.key is not None:
            with _private_files(self.cert, self.key) as (certfile, keyfile):
                ctx.load_cert_chain(certfile, keyfile)
        return ctx


@contextlib.contextmanager
def _private_files(*contents: bytes) -> Iterator[list[str]]:
    """Files readable by this user only, removed on exit (ssl loads a certificate chain from paths only)."""
    with tempfile.TemporaryDirectory(prefix="graylane-tls-") as tmp:
        paths = []
        for i, data in enumerate(contents):
            path = Path(tmp) / f"{i}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            paths.append(str(path))
        yield paths


# -- in the calling process ----------------------------------------------------------------------------


def _command(path: str | None, context: str | None) -> list[str]:
    return [sys.executable, "-m", "graylane.kube.credentials", json.dumps([path, context])]


def _parse(doc: dict[str, Any], refresh: Callable[[], Awaitable[Credentials]]) -> Credentials:
    def blob(key: str) -> bytes | None:
        return None if doc[key] is None else base64.b64decode(doc[key])

    return Credentials(
        server=doc["server"],
        namespace=doc["namespace"],
        insecure=doc["insecure"],
        ca=blob("ca"),
        cert=blob("cert"),
        key=blob("key"),
        authorization=doc["authorization"],
        has_auth=doc["has_auth"],
        refresh=refresh,
    )


def _failed(code: int | None, stderr: str) -> CredentialsError:
    lines = stderr.strip().splitlines()
    return CredentialsError(lines[-1] if lines else f"reading the kubeconfig failed (exit {code})")


def resolve(path: str | None = None, context: str | None = None) -> Credentials:
    """The kubeconfig at `path` (None: $KUBECONFIG, ~/.kube/config or in-cluster, as kubectl)."""
    try:
        proc = subprocess.run(
            _command(path, context), capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise CredentialsError(f"reading the kubeconfig took over {CHILD_TIMEOUT:.0f}s") from err
    if proc.returncode != 0:
        raise _failed(proc.returncode, proc.stderr)
    return _from_child(proc.stdout, path, context)


async def resolve_async(path: str | None = None, context: str | None = None) -> Credentials:
    """`resolve` without blocking the event loop (the refresh after a 401)."""
    proc = await asyncio.create_subprocess_exec(
        *_command(path, context), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), CHILD_TIMEOUT)
    except TimeoutError as err:
        proc.kill()
        await proc.wait()
        raise CredentialsError(f"reading the kubeconfig took over {CHILD_TIMEOUT:.0f}s") from err
    if proc.returncode != 0:
        raise _failed(proc.returncode, stderr.decode(errors="replace"))
    return _from_child(stdout.decode(), path, context)


def _from_child(stdout: str, path: str | None, context: str | None) -> Credentials:
    async def refresh() -> Credentials:
        return await resolve_async(path, context)

    return _parse(json.loads(stdout), refresh)


# -- with lightkube (the child, or a caller that holds a lightkube config) ------------------------------


def _values(config: SingleConfig) -> dict[str, Any]:
    """lightkube's reading of one context, as the plain values Credentials holds."""
    import httpx2 as httpx
    from lightkube.config.client_adapter import user_auth, user_cert
    from lightkube.config.models import FileStr

    cluster, user = config.cluster, config.user
    server = str(cluster.server).rstrip("/")
    if cluster.certificate_auth:
        ca_path: str | None = str(config.abs_file(cluster.certificate_auth))
    else:
        ca_path = FileStr(cluster.certificate_auth_data)
    cert = user_cert(user, config.abs_file) if user is not None else None
    auth = user_auth(user) if user is not None else None
    authorization = None
    if auth is not None:  # the header lightkube's auth puts on a first request (reads a token, runs exec)
        flow = auth.sync_auth_flow(httpx.Request("GET", server or "http://localhost"))
        authorization = next(flow).headers.get("Authorization")
        flow.close()
    return {
        "server": server,
        "namespace": config.namespace or "default",
        "insecure": bool(cluster.insecure),
        "ca": _read(ca_path),
        "cert": _read(cert[0]) if cert else None,
        "key": _read(cert[1]) if cert else None,
        "authorization": authorization,
        "has_auth": auth is not None,
    }


def _read(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else base64.b64encode(Path(path).read_bytes()).decode()


def from_single(config: SingleConfig) -> Credentials:
    """Credentials from a lightkube config the caller already holds (tests, tools); refreshed in-process."""

    async def refresh() -> Credentials:
        return from_single(config)

    return _parse(_values(config), refresh)


def main() -> None:
    """The child: argv[1] is JSON [path, context]; prints the values, or the error on stderr (exit 1)."""
    from lightkube.config.kubeconfig import KubeConfig

    path, context = json.loads(sys.argv[1])
    try:
        kubeconfig = KubeConfig.from_file(path) if path else KubeConfig.from_env()
        single = kubeconfig.get(context_name=context)
        if single is None:
            raise ValueError(f"context {context!r} not found in the kubeconfig")
        print(json.dumps(_values(single)))
    except Exception as err:  # the parent raises CredentialsError with this line
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
