"""A thin asynchronous Kubernetes REST client working on plain JSON dicts.

lightkube does the part that is easy to get wrong (kubeconfig parsing, TLS, client certificates,
tokens, exec plugins) and hands us a configured httpx client, or, for the controller's aiohttp
transport, plain credentials read in a child process (credentials.py); we speak REST on top because the
informers need what lightkube's typed watch hides: bookmarks, the list's resourceVersion, and a 410
surfaced to the caller so it can re-list. Every request is counted by verb, resource and status on the
`ApiMetrics` the client is given (kube/apimetrics.py), so /metrics and the benchmark report API load.

This module must not cache objects or retry on its own: callers decide (see kube/retry.py).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from graylane.kube import credentials as creds
from graylane.kube import jsondecode
from graylane.kube.apimetrics import TRANSPORT_ERROR, ApiMetrics, request_labels, resource_label
from graylane.kube.resources import Resource
from graylane.kube.transport import AiohttpTransport, Transport

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

__all__ = ["ApiError", "KubeClient", "Obj", "PatchType", "user_agent"]

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]
TransportName = Literal["httpx", "aiohttp"]  # see transport.py; the controller uses aiohttp

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
log = logging.getLogger(__name__)
# Few connections suffice against one API server, and httpcore scans every pooled connection per
# request (14.5 % of the controller's CPU with an unbounded pool at N = 1000, BENCHMARKS.md cause 6).
DEFAULT_MAX_CONNECTIONS = 20


def user_agent() -> str:
    """`graylane/<version>`: the audit log and API priority-and-fairness can tell our requests apart."""
    try:
        version = importlib.metadata.version("graylane")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
        version = "unknown"
    return f"graylane/{version}"


class ApiError(Exception):
    """An error status from the API server (or 410 inside a watch stream)."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.code == 410

    @classmethod
    def from_status(cls, code: int, body: Mapping[str, Any] | None) -> ApiError:
        body = body or {}
        return cls(
            int(body.get("code") or code),
            str(body.get("reason") or ""),
            str(body.get("message") or ""),
            body.get("details"),
        )


class KubeClient:
    """Connection pools to one API server; create it once per process and pass it around.

    Watches get a pool of their own. A watch holds its connection for up to `timeout_seconds` (300 s),
    one per informer, and the informers are many (Rollouts, BatchReleases, Deployments, ReplicaSets,
    Services, Ingresses, HTTPRoutes, ConfigMaps...). Sharing one capped pool would let them hold most of
    its slots for good and leave GETs and status writes queueing for the rest, the starvation the cap
    must not cause; a shared uncapped pool is what the cap removes. So ordinary requests get
    `max_connections` slots that nothing long-lived can occupy, and watches get an uncapped pool:
    their number is fixed by the code (one per informer), not by load. The bytes travel over httpx or
    aiohttp (`transport`, see transport.py).
    """

    def __init__(
        self,
        config: SingleConfig | creds.Credentials,
        *,
        field_manager: str = "graylane",
        metrics: ApiMetrics | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        agent: str | None = None,
        transport: TransportName = "httpx",
    ) -> None:
        agent = agent or user_agent()
        if transport == "aiohttp":
            resolved = config if isinstance(config, creds.Credentials) else creds.from_single(config)
            self._transport: Transport = AiohttpTransport(
                resolved, max_connections=max_connections, agent=agent
            )
            self.namespace = resolved.namespace
        elif isinstance(config, creds.Credentials):
            raise TypeError("the httpx transport takes a lightkube config, not resolved credentials")
        else:
            from graylane.kube.transport_httpx import HttpxTransport  # loads lightkube and httpx

            self._transport = HttpxTransport(config, max_connections=max_connections, agent=agent)
            self.namespace = config.namespace or "default"
        self.field_manager = field_manager
        self.metrics = metrics

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | None = None,
        context: str | None = None,
        *,
        metrics: ApiMetrics | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        agent: str | None = None,
        transport: TransportName = "httpx",
    ) -> KubeClient:
        """Load a kubeconfig file; with no path, $KUBECONFIG / ~/.kube/config / in-cluster as kubectl does.

        With aiohttp (the controller) lightkube reads it in a child process (credentials.py: its
        import would cost the controller's whole life about 4.7 MB); a failure raises CredentialsError.
        """
        if transport == "aiohttp":
            resolved = creds.resolve(path, context)
            return cls(
                resolved, metrics=metrics, max_connections=max_connections, agent=agent, transport=transport
            )
        from lightkube.config.kubeconfig import KubeConfig

        config = KubeConfig.from_file(path) if path else KubeConfig.from_env()
        single = config.get(context_name=context)
        if single is None:
            raise ValueError(f"context {context!r} not found in the kubeconfig")
        return cls(single, metrics=metrics, max_connections=max_connections, agent=agent, transport=transport)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        resource: str = "",
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request; `resource` labels a non-resource path (e.g. /version) in the metrics."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        verb, parsed = request_labels(method, path, clean)
        label = resource if resource and not path.startswith(("/api/", "/apis/")) else parsed
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else {}
        try:
            status, raw = await self._transport.send(method, path, clean, content, headers)
        except Exception:
            self._count(verb, label, TRANSPORT_ERROR)
            raise
        self._count(verb, label, status)
        data = _json_or_none(raw)
        if status >= 400:
            raise ApiError.from_status(status, data if isinstance(data, dict) else None)
        return data

    async def fetch(self, path: str) -> tuple[int, bytes]:
        """The status and the raw body of a GET of a non-JSON path (e.g. /metrics); not counted."""
        return await self._transport.send("GET", path, {}, None, {})

    def _count(self, verb: str, resource: str, code: int | str) -> None:
        if self.metrics is not None:
            self.metrics.observe(verb, resource, code)

    # -- verbs ------------------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", res.path(namespace, name))  # type: ignore[no-any-return]

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(res, name, namespace)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_token,
        }
        return await self.request("GET", res.path(namespace), params=params)  # type: ignore[no-any-return]

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace if namespace is not None else obj.get("metadata", {}).get("namespace")
        params = {"fieldManager": self.field_manager}
        return await self.request("POST", res.path(ns), body=obj, params=params)  # type: ignore[no-any-return]

    async def replace(self, res: Resource, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        path = res.path(meta.get("namespace"), meta["name"], subresource)
        params = {"fieldManager": self.field_manager}
        return await self.request("PUT", path, body=obj, params=params)  # type: ignore[no-any-return]

    async def patch(
        self,
        res: Resource,
        name: str,
        body: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        force: bool = False,
    ) -> Obj:
        params: dict[str, Any] = {"fieldManager": self.field_manager}
        if patch_type == "apply":
            params["force"] = "true" if force else None
        path = res.path(namespace, name, subresource)
        result = await self.request(
            "PATCH",
            path,
            body=body,
            params=params,
            content_type=_CONTENT_TYPES[patch_type],
        )
        return result  # type: ignore[no-any-return]

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = "Background",
    ) -> bool:
        """Delete; returns False when it was already gone."""
        return await self.remove(res, name, namespace, propagation=propagation) is not None

    async def remove(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj | None:
        """Delete; the server's answer (the object, marked for deletion while finalizers hold it, or a
        Status once it is gone), or None when it was already gone. `preconditions` (uid and/or
        resourceVersion) make the delete fail with a conflict if the object is not the one meant."""
        body: dict[str, Any] = {"propagationPolicy": propagation} if propagation else {}
        if preconditions:
            body["preconditions"] = dict(preconditions)
        try:
            answer = await self.request("DELETE", res.path(namespace, name), body=body or None)
        except ApiError as err:
            if err.not_found:
                return None
            raise
        return answer if isinstance(answer, dict) else {}

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) until the stream ends; an ERROR event raises ApiError (410: expired)."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
        }
        clean = {k: v for k, v in params.items() if v is not None}
        opened = False
        try:
            async with self._transport.stream(res.path(namespace), clean, timeout_seconds + 30.0) as resp:
                opened = True
                self._count("watch", resource_label(res.group, res.plural), resp.status)
                if resp.status >= 400:
                    raise ApiError.from_status(resp.status, _json_or_none(await resp.body()))
                async for line in resp.lines():
                    if not line.strip():
                        continue
                    event = jsondecode.loads(line)
                    if event.get("type") == "ERROR":
                        raise ApiError.from_status(410, event.get("object"))
                    yield event["type"], event["object"]
        except Exception:
            if not opened:  # the stream never started: no status to count
                self._count("watch", resource_label(res.group, res.plural), TRANSPORT_ERROR)
            raise


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    try:
        return jsondecode.loads(content)
    except ValueError:
        return {"message": content.decode(errors="replace")[:500]}
