"""The HTTPS webhook server: CRD conversion, Rollout validation, and the Deployment mutation hook point.

Routes (the paths Kruise Rollout registers, so existing webhook configurations keep working):

- `POST /convert`: ConversionReview; every object goes through `graylane.api.conversion.convert`.
- `POST /validate-rollouts-kruise-io-rollout`: AdmissionReview for CREATE/UPDATE of Rollouts in either
  version; `validate_rollout` against the other Rollouts of the namespace, denied with 422 on errors.
- `POST /mutate-apps-v1-deployment`: AdmissionReview for Deployment UPDATEs, handed to a `WorkloadMutator`;
- `POST /mutate-apps-kruise-io-v1alpha1-cloneset`, `/mutate-apps-kruise-io-v1alpha1-daemonset`,
  `/mutate-apps-v1-daemonset`, `/mutate-unified-workload` (StatefulSets, native and Advanced): UPDATEs of
  the other workload kinds, handed to the kinds' `WorkloadMutator` (webhook/workload_kinds.py).
- `GET /healthz`.

A body that is not JSON, or not a review, gets HTTP 400 with a message; a handler that fails gets an
admission error response. The server's TLS material comes from `certs.CertStore` and is rotated in place
before it expires. This module must not decide anything about Rollouts itself (validation.py does), nor
write webhook configurations (install.py does; `on_ca_change` is how it hears of a new CA).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from graylane.api import conversion
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.webhook import admission as adm
from graylane.webhook.certchild import LocalCertSource
from graylane.webhook.certfiles import CertSource, CertStore, ServingCerts, server_ssl_context
from graylane.webhook.validation import ValidationOptions, render_errors, validate_rollout

__all__ = [
    "CONVERT_PATH",
    "DEFAULT_PORT",
    "HEALTHZ_PATH",
    "MUTATE_DEPLOYMENT_PATH",
    "MUTATE_KIND_PATHS",
    "VALIDATE_ROLLOUT_PATH",
    "AllowUnchanged",
    "DebugAccessLogger",
    "KubeRolloutLister",
    "MutationRejected",
    "RolloutLister",
    "WebhookServer",
    "WorkloadMutator",
    "build_app",
]

Obj = dict[str, Any]
Clock = Callable[[], dt.datetime]
CaCallback = Callable[[bytes], Awaitable[None]]

CONVERT_PATH = "/convert"
VALIDATE_ROLLOUT_PATH = "/validate-rollouts-kruise-io-rollout"
MUTATE_DEPLOYMENT_PATH = "/mutate-apps-v1-deployment"
# Kruise Rollout's paths for the other workload kinds (its webhook configuration's names).
MUTATE_CLONESET_PATH = "/mutate-apps-kruise-io-v1alpha1-cloneset"
MUTATE_ADVANCED_DAEMONSET_PATH = "/mutate-apps-kruise-io-v1alpha1-daemonset"
MUTATE_DAEMONSET_PATH = "/mutate-apps-v1-daemonset"
MUTATE_UNIFIED_PATH = "/mutate-unified-workload"
MUTATE_KIND_PATHS = (
    MUTATE_CLONESET_PATH,
    MUTATE_ADVANCED_DAEMONSET_PATH,
    MUTATE_DAEMONSET_PATH,
    MUTATE_UNIFIED_PATH,
)
HEALTHZ_PATH = "/healthz"
DEFAULT_PORT = 9876
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
LOOPBACK_URL_HOST = "127.0.0.1"
# A ConversionReview carries a whole list response; aiohttp's 1 MiB default is too small for big namespaces.
MAX_BODY = 64 * 1024 * 1024
log = logging.getLogger(__name__)


class RolloutLister(Protocol):
    """Where the validating webhook finds the other Rollouts of a namespace (as v1beta1 objects)."""

    async def list_rollouts(self, namespace: str) -> list[Obj]: ...


class KubeRolloutLister:
    """A `RolloutLister` that asks the API server each time (webhook/cache.py reads the informer)."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def list_rollouts(self, namespace: str) -> list[Obj]:
        listed = await self._kube.list(r.ROLLOUT, namespace)
        return list(listed.get("items") or [])

    async def get_rollout(self, namespace: str, name: str) -> Obj | None:
        """One Rollout as the API server has it now (None when gone): what a cache may not show yet."""
        return await self._kube.get_or_none(r.ROLLOUT, name, namespace)


class MutationRejected(Exception):
    """Raised by a WorkloadMutator to reject the update (Kruise answers handler errors with 400)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class WorkloadMutator(Protocol):
    """The hook point behind `/mutate-apps-v1-deployment`, called for Deployment UPDATEs (not subresources).

    Return a changed copy of `request.object` (the server answers with the JSON Patch between the two), or
    None to admit the update unchanged; raise MutationRejected to reject it.
    """

    async def mutate(self, request: adm.AdmissionRequest) -> Obj | None: ...


class AllowUnchanged:
    """Default WorkloadMutator: admits every Deployment update unchanged.

    A placeholder until the workload mutation (pausing the native rollout, §2.2 of the reference) is
    written; with it the webhook is registered but has no effect.
    """

    async def mutate(self, request: adm.AdmissionRequest) -> Obj | None:
        return None


class _Handlers:
    """The route handlers, holding what they need; one instance per application."""

    def __init__(
        self,
        lister: RolloutLister,
        mutator: WorkloadMutator,
        options: ValidationOptions,
        kinds: WorkloadMutator,
    ) -> None:
        self._lister = lister
        self._mutator = mutator
        self._options = options
        self._kinds = kinds

    async def convert(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            review = adm.parse_conversion_review(body)
        except adm.ReviewError as err:
            return _bad_request(str(err))
        return web.json_response(_convert_all(review))

    async def validate_rollout(self, request: web.Request) -> web.Response:
        return await _admit(request, self._validate)

    async def mutate_deployment(self, request: web.Request) -> web.Response:
        return await _admit(request, lambda req: self._mutate(req, self._mutator))

    async def mutate_kind(self, request: web.Request) -> web.Response:
        return await _admit(request, lambda req: self._mutate(req, self._kinds))

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _validate(self, req: adm.AdmissionRequest) -> Obj:
        if req.operation not in ("CREATE", "UPDATE") or req.sub_resource:
            return adm.allowed(req)
        if req.object is None:
            return adm.errored(req, 400, "request.object is missing")
        namespace = req.namespace or _meta(req.object).get("namespace") or ""
        try:
            siblings = await self._lister.list_rollouts(namespace)
        except Exception as err:  # the API server or cache failed: say so instead of guessing
            log.warning("listing Rollouts in %s for validation failed: %s", namespace, err)
            return adm.errored(req, 500, f"listing Rollouts in namespace {namespace!r}: {err}")
        old = req.old_object if req.operation == "UPDATE" else None
        errors = validate_rollout(req.object, old, _others(siblings, req), self._options)
        return adm.denied(req, render_errors(errors)) if errors else adm.allowed(req)

    async def _mutate(self, req: adm.AdmissionRequest, mutator: WorkloadMutator) -> Obj:
        # Kruise's workload handler only acts on UPDATEs of the object itself.
        if req.operation != "UPDATE" or req.sub_resource or req.object is None:
            return adm.allowed(req)
        try:
            changed = await mutator.mutate(req)
        except MutationRejected as err:
            return adm.errored(req, err.code, err.message)
        if changed is None:
            return adm.allowed(req)
        return adm.patched(req, adm.json_patch(req.object, changed))


def build_app(
    lister: RolloutLister,
    mutator: WorkloadMutator | None = None,
    options: ValidationOptions | None = None,
    kinds: WorkloadMutator | None = None,
) -> web.Application:
    """The aiohttp application with all routes (no TLS; `WebhookServer` serves it over HTTPS)."""
    handlers = _Handlers(
        lister, mutator or AllowUnchanged(), options or ValidationOptions(), kinds or AllowUnchanged()
    )
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(CONVERT_PATH, handlers.convert)
    app.router.add_post(VALIDATE_ROLLOUT_PATH, handlers.validate_rollout)
    app.router.add_post(MUTATE_DEPLOYMENT_PATH, handlers.mutate_deployment)
    for path in MUTATE_KIND_PATHS:
        app.router.add_post(path, handlers.mutate_kind)
    app.router.add_get(HEALTHZ_PATH, handlers.healthz)
    return app


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as err:
        raise web.HTTPBadRequest(text=f"request body is not valid JSON: {err}") from None


def _bad_request(message: str) -> web.Response:
    return web.Response(status=400, text=message)


async def _admit(
    request: web.Request, handle: Callable[[adm.AdmissionRequest], Awaitable[Obj]]
) -> web.Response:
    body = await _json_body(request)
    try:
        review = adm.parse_admission_review(body)
    except adm.ReviewError as err:
        return _bad_request(str(err))
    try:
        answer = await handle(review)
    except Exception as err:  # a handler bug must reach the API server as an error, not a dropped call
        log.exception("admission handler for %s failed", request.path)
        answer = adm.errored(review, 500, f"internal error in {request.path}: {err}")
    return web.json_response(answer)


def _convert_all(review: adm.ConversionRequest) -> Obj:
    desired = review.desired_api_version
    done: list[Obj] = []
    for obj in review.objects:
        try:
            done.append(obj if obj.get("apiVersion") == desired else conversion.convert(obj, desired))
        except Exception as err:  # ConversionError or a bug: the API server must hear which object failed
            log.warning("converting %s to %s failed: %s", _describe(obj), desired, err)
            return adm.conversion_failed(review, f"converting {_describe(obj)} to {desired}: {err}")
    return adm.converted(review, done)


def _describe(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{obj.get('kind', 'object')} {meta.get('namespace', '')}/{meta.get('name', '')}"


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _others(rollouts: list[Obj], req: adm.AdmissionRequest) -> list[Obj]:
    name = _meta(req.object or {}).get("name") or req.name
    return [ro for ro in rollouts if _meta(ro).get("name") != name]


class DebugAccessLogger(AbstractAccessLogger):
    """aiohttp's access lines at DEBUG: the API server calls us for every Rollout and Deployment write
    (75,895 INFO lines in one benchmark run, BENCHMARKS.md cause 8)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)  # skip building lines nobody will see

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={"seconds": round(time, 6), "remote": request.remote},
        )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebhookServer:
    """Serves an application over HTTPS on host:port (port 0 picks a free one) and rotates its certificate.

    `host` is the address to bind: 127.0.0.1 for a controller outside the cluster (URL mode), 0.0.0.0 in a
    pod behind the webhook Service. The certificate comes from `certs`: a CertStore (files only) or a
    CertSource such as the Service mode's Secret (webhook/cert_secret.py).
    """

    def __init__(
        self,
        app: web.Application,
        certs: CertStore | CertSource,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        clock: Clock = utc_now,
        on_ca_change: CaCallback | None = None,
        check_every: float = 3600.0,
        url_host: str | None = None,
    ) -> None:
        source = LocalCertSource(certs) if isinstance(certs, CertStore) else certs
        self._app, self._source, self._host, self._port = app, source, host, port
        self._store = source.store
        self._url_host = url_host or (LOOPBACK_URL_HOST if host in WILDCARD_HOSTS else host)
        self._clock, self._on_ca_change, self._check_every = clock, on_ca_change, check_every
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._certs: ServingCerts | None = None
        self._rotation: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0); only after start()."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the webhook server is not started")
        return int(self._runner.addresses[0][1])

    @property
    def url_base(self) -> str:
        """`https://host:port`, the `url_base` for install() in URL mode (127.0.0.1 when bound to all)."""
        return f"https://{self._url_host}:{self.port}"

    @property
    def certs(self) -> ServingCerts:
        if self._certs is None:
            raise RuntimeError("the webhook server is not started")
        return self._certs

    async def start(self) -> None:
        self._certs = await self._source.ensure(self._clock())
        self._ssl = server_ssl_context(self._store)
        runner = web.AppRunner(self._app, access_log_class=DebugAccessLogger)
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl).start()
        self._runner = runner
        self._rotation = asyncio.create_task(self._rotate_forever(), name="webhook-cert-rotation")
        log.info("webhook server listening on %s", self.url_base)

    async def stop(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rotation
            self._rotation = None
        if self._runner is not None:
            # The API server keeps idle TLS connections open; cleanup() only asks them to close, and
            # they would still be closing when the event loop ends. Abort them once the runner is down.
            server = self._runner.server
            transports = [conn.transport for conn in (server.connections if server else [])]
            await self._runner.cleanup()
            for transport in transports:
                if transport is not None:
                    transport.abort()  # also for ones already closing: a TLS close may wait on the peer
            await asyncio.sleep(0)  # let the aborted transports run their connection_lost callbacks
            self._runner = None

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def rotate_if_needed(self) -> bool:
        """Renew the certificate if it is due at clock(); True when it was renewed."""
        if self._certs is None or self._ssl is None or not self._certs.needs_rotation(self._clock()):
            return False
        old, fresh = self._certs, await self._source.ensure(self._clock())
        if fresh.ca_pem != old.ca_pem and self._on_ca_change is not None:
            # Trust both CAs before serving the new certificate, so no call fails in between.
            await self._on_ca_change(fresh.ca_pem + old.ca_pem)
        self._ssl.load_cert_chain(self._store.cert_file, self._store.key_file)
        self._certs = fresh
        log.info("webhook serving certificate renewed; valid until %s", fresh.not_after.isoformat())
        return True

    async def _rotate_forever(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            try:
                await self.rotate_if_needed()
            except Exception:  # keep serving the current certificate and try again next time
                log.exception("renewing the webhook certificate failed")
