"""A TCP proxy on 127.0.0.1 in front of the kube-apiserver that the chaos suite can make cut connections.

The controller's kubeconfig points at this proxy, so cutting its connections breaks the controller's
watches and in-flight requests exactly as a flaky network or a load balancer would: the bytes are TLS,
so the proxy cannot tell a watch from a GET and cuts whatever is open. It runs its own event loop in a
thread, so the test's loop being busy never stalls the controller's traffic.

What it must not do: listen anywhere but 127.0.0.1, or connect anywhere but the upstream it was given
(itself on 127.0.0.1; `start` refuses anything else).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import random
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["CutProxy", "ProxyStats"]

T = TypeVar("T")
CHUNK = 64 * 1024


@dataclasses.dataclass
class ProxyStats:
    accepted: int = 0
    cut: int = 0
    upstream_refused: int = 0


@dataclasses.dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter

    def abort(self) -> None:
        # abort(), not close(): no graceful TLS shutdown reaches either side, as when a link drops.
        self.client.transport.abort()
        self.upstream.transport.abort()


class CutProxy:
    """`with CutProxy(host, port) as proxy:` forwards 127.0.0.1:proxy.port to host:port until closed."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        if not ipaddress.ip_address(upstream_host).is_loopback:
            raise ValueError(f"upstream_host must be a loopback address, not {upstream_host!r}")
        self.upstream = (upstream_host, upstream_port)
        self.stats = ProxyStats()
        self.port = 0
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> CutProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def cut(self, fraction: float, rng: random.Random) -> int:
        """Abort about `fraction` of the open connections (at least one if any is open); returns how many."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], not {fraction}")
        return self._call(self._cut(fraction, rng))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _cut(self, fraction: float, rng: random.Random) -> int:
        # Sorted by port so that a given seed picks the same share whatever the set's iteration order.
        pairs = sorted(self._pairs, key=lambda p: p.client.get_extra_info("peername")[1])
        if not pairs:
            return 0
        chosen = rng.sample(pairs, max(1, round(len(pairs) * fraction)))
        for pair in chosen:
            pair.abort()
            self._pairs.discard(pair)
        self.stats.cut += len(chosen)
        return len(chosen)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.abort()
        self._pairs.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            # The API server is down (being restarted): the client sees its connection dropped.
            self.stats.upstream_refused += 1
            writer.transport.abort()
            return
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        try:
            # Each direction ends on its EOF (half-closing the other); a broken one ends both at once.
            await asyncio.gather(_pipe(reader, up_writer, pair), _pipe(up_reader, writer, pair))
        finally:
            self._pairs.discard(pair)
            pair.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.IncompleteReadError):
        pair.abort()
