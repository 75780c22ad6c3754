"""How KubeClient's requests travel: the same two operations over httpx or over aiohttp.

KubeClient (client.py) speaks Kubernetes REST: paths, verbs, JSON, errors, metrics. A `Transport` only
moves bytes: `send` one request and return (status, body); `stream` a watch, yielding its lines. Both
implementations keep ordinary requests and watches in separate connection pools (client.py says why)
and take TLS, the client certificate and the credentials from lightkube's reading of the kubeconfig:

- `HttpxTransport` (transport_httpx.py): lightkube's configured httpx client, the default (the CLI and
  tools; its import is part of lightkube's anyway);
- `AiohttpTransport` (here): aiohttp's client, which the controller uses: its per-request CPU is about
  a third of httpx's (0.29-0.41 ms against 0.93 ms for a GET on the local API server, measured, issue
  14) and the controller imports aiohttp anyway for its webhook server. Its credentials are plain values
  (credentials.py: lightkube's reading of the kubeconfig, made in a child process so that the
  controller never imports lightkube or httpx): the header is reused until the API server answers 401,
  which resolves them once more (a rotated token file, an exec plugin's fresh token).

What it must not do: parse bodies, retry anything but that one 401, or count requests (client.py does).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from graylane.kube.credentials import Credentials

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CONNECT_TIMEOUT", "REQUEST_TIMEOUT", "AiohttpTransport", "Stream", "Transport"]

REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0


class Stream(Protocol):
    status: int

    async def body(self) -> bytes: ...

    def lines(self) -> AsyncIterator[bytes]: ...


class Transport(Protocol):
    async def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes]: ...

    def stream(
        self, path: str, params: Mapping[str, Any], read_timeout: float
    ) -> contextlib.AbstractAsyncContextManager[Stream]: ...

    async def close(self) -> None: ...


# -- aiohttp -------------------------------------------------------------------------------------------


class _AiohttpStream:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = int(resp.status)

    async def body(self) -> bytes:
        return bytes(await self._resp.read())

    async def lines(self) -> AsyncIterator[bytes]:
        # Split by hand: aiohttp's readline refuses lines over its buffer size, and a watch event of a
        # large object (a CustomResourceDefinition) is one line of megabytes.
        pending = bytearray()
        async for chunk in self._resp.content.iter_any():
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                yield bytes(pending[start:end])
                start = end + 1
            del pending[:start]
        if pending:
            yield bytes(pending)


class AiohttpTransport:
    """aiohttp sessions made on first use (a session belongs to the running event loop)."""

    def __init__(self, credentials: Credentials, *, max_connections: int, agent: str) -> None:
        self._base = credentials.server
        self._ssl: Any = credentials.ssl_context()
        self._credentials = credentials
        self._agent = agent
        self._limit = max_connections
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, kind: str) -> aiohttp.ClientSession:
        import aiohttp  # the controller has it loaded (its webhook server); tools never get here

        session = self._sessions.get(kind)
        if session is None:
            limit = self._limit if kind == "requests" else 0  # watches: one per informer, not capped
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=limit, limit_per_host=0)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=CONNECT_TIMEOUT, sock_read=REQUEST_TIMEOUT
            )
            session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers={"User-Agent": self._agent}
            )
            self._sessions[kind] = session
        return session

    async def _header(self, refused: bool = False) -> dict[str, str]:
        """The Authorization header: resolved with the credentials, resolved again after a 401."""
        if not self._credentials.has_auth:
            return {}
        if refused and self._credentials.refresh is not None:
            self._credentials = await self._credentials.refresh()
        authorization = self._credentials.authorization
        return {"Authorization": authorization} if authorization else {}

    async def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes]:
        session = self._session("requests")
        refused = False
        while True:
            sent = {**headers, **await self._header(refused)}
            async with session.request(
                method, self._base + path, params=_query(params), data=content, headers=sent
            ) as resp:
                body = bytes(await resp.read())
                if resp.status != 401 or refused or not self._credentials.has_auth:
                    return int(resp.status), body
            refused = True

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, Any], read_timeout: float
    ) -> AsyncIterator[Stream]:
        import aiohttp

        session = self._session("watches")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)
        headers = await self._header()
        async with session.get(
            self._base + path, params=_query(params), headers=headers, timeout=timeout
        ) as resp:
            if resp.status == 401 and self._credentials.has_auth:
                await self._header(refused=True)  # the informer's retry goes with the fresh credentials
            yield _AiohttpStream(resp)

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    """aiohttp takes strings and ints only; booleans are Kubernetes' 'true'/'false'."""
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in params.items()}
