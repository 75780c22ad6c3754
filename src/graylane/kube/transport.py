"""How KubeClient's requests travel: the same two operations over httpx or over aiohttp.

KubeClient (client.py) speaks Kubernetes REST: paths, verbs, JSON, errors, metrics. A `Transport` only
moves bytes: `send` one request and return (status, body); `stream` a watch, yielding its lines. Both
implementations keep ordinary requests and watches in separate connection pools (client.py says why)
and take TLS, the client certificate and the credentials from lightkube's reading of the kubeconfig:

- `HttpxTransport`: lightkube's configured httpx client, the default (the CLI and tools; its import is
  part of lightkube's anyway);
- `AiohttpTransport`: aiohttp's client, which the controller uses: its per-request CPU is about a
  third of httpx's (0.29-0.41 ms against 0.93 ms for a GET on the local API server, measured, issue
  14) and the controller imports aiohttp anyway for its webhook server. Credentials come from the same
  lightkube `httpx.Auth` objects: the header they produce is reused until the API server answers 401,
  which re-runs them once (a rotated token file, an exec plugin's fresh token).

What it must not do: parse bodies, retry anything but that one 401, or count requests (client.py does).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx2 as httpx
from lightkube.config.client_adapter import ConnectionParams, user_auth, verify_cluster
from lightkube.config.kubeconfig import SingleConfig

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "HttpxTransport", "Stream", "Transport"]

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


# -- httpx ---------------------------------------------------------------------------------------------


def _httpx_client(config: SingleConfig, limits: httpx.Limits, agent: str) -> httpx.AsyncClient:
    """lightkube's configured client (TLS, auth, base URL) with our pool limits and User-Agent."""
    params = ConnectionParams(timeout=httpx.Timeout(REQUEST_TIMEOUT), trust_env=False).httpx_params(config)
    return httpx.AsyncClient(**params, limits=limits, headers={"User-Agent": agent})


class _HttpxStream:
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code

    async def body(self) -> bytes:
        return await self._resp.aread()

    async def lines(self) -> AsyncIterator[bytes]:
        async for line in self._resp.aiter_lines():
            yield line.encode()


class HttpxTransport:
    def __init__(self, config: SingleConfig, *, max_connections: int, agent: str) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = _httpx_client(config, limits, agent)
        self._watch_http = _httpx_client(config, httpx.Limits(max_connections=None), agent)

    async def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes]:
        resp = await self._http.request(method, path, params=dict(params), content=content, headers=headers)
        return resp.status_code, resp.content

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, Any], read_timeout: float
    ) -> AsyncIterator[Stream]:
        timeout = httpx.Timeout(CONNECT_TIMEOUT, read=read_timeout)
        async with self._watch_http.stream("GET", path, params=dict(params), timeout=timeout) as resp:
            yield _HttpxStream(resp)

    async def close(self) -> None:
        await self._http.aclose()
        await self._watch_http.aclose()


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

    def __init__(self, config: SingleConfig, *, max_connections: int, agent: str) -> None:
        self._base = str(config.cluster.server).rstrip("/")
        secure = self._base.startswith("https:")
        assert config.user is not None, "Missing user"
        self._ssl: Any = (
            verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False) if secure else False
        )
        self._auth = user_auth(config.user)
        self._agent = agent
        self._limit = max_connections
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._authorization: str | None = None
        self._authorized = False

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
        """The Authorization header: made once by lightkube's auth, made again after a 401."""
        if self._auth is None:
            return {}
        if not self._authorized or refused:
            flow = self._auth.async_auth_flow(httpx.Request("GET", self._base or "http://localhost"))
            request = await flow.__anext__()
            if refused:
                with contextlib.suppress(StopAsyncIteration):
                    request = await flow.asend(httpx.Response(401))
            await flow.aclose()
            self._authorization = request.headers.get("Authorization")
            self._authorized = True
        return {"Authorization": self._authorization} if self._authorization else {}

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
                if resp.status != 401 or refused or self._auth is None:
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
            if resp.status == 401 and self._auth is not None:
                await self._header(refused=True)  # the informer's retry goes with the fresh credentials
            yield _AiohttpStream(resp)

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    """aiohttp takes strings and ints only; booleans are Kubernetes' 'true'/'false'."""
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in params.items()}
