"""`HttpxTransport`: KubeClient's requests over lightkube's configured httpx client (transport.py says
when which transport is used). The CLI and tools use it; importing it loads lightkube and httpx.

What it must not do: parse bodies, retry, or count requests (client.py does).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2 as httpx
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig

from graylane.kube.transport import CONNECT_TIMEOUT, REQUEST_TIMEOUT, Stream

__all__ = ["HttpxTransport"]


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
