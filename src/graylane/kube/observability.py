"""The manager's probe and metrics endpoint: `/healthz`, `/readyz` and `/metrics` on one aiohttp server.

`/healthz` answers ok whenever the event loop is able to run the handler (a wedged loop cannot
answer, which is what the liveness probe should catch); `/readyz` asks a callable (normally "have
the informers synced?"); `/metrics` renders the CollectorRegistry it was given, never the global one.
It binds 127.0.0.1 unless told otherwise, and port 0 picks a free port (see `port` after start()).

This module must not decide readiness itself or register metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["ObservabilityServer"]

log = logging.getLogger(__name__)


class ObservabilityServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        *,
        host: str = "127.0.0.1",
        port: int = 8081,
    ) -> None:
        self.registry = registry
        self.host = host
        self._ready = ready
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self._requested_port).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("serving probes and metrics", extra={"address": self.url})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ObservabilityServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        try:
            ready = self._ready()
        except Exception:  # a failing check means "not ready", not a 500 with a traceback
            log.exception("readiness check failed")
            ready = False
        return web.Response(text="ok") if ready else web.Response(status=503, text="not ready")

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
