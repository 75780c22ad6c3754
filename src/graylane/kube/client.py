"""A thin asynchronous Kubernetes REST client working on plain JSON dicts.

lightkube does the part that is easy to get wrong (kubeconfig parsing, TLS, client certificates,
tokens, exec plugins) and hands us a configured httpx client; we speak REST on top of it because the
informers need what lightkube's typed watch hides: bookmarks, the list's resourceVersion, and a 410
surfaced to the caller so it can re-list. Every request is counted by verb and resource so the
benchmark can report API load per Rollout.

This module must not cache objects or retry on its own: callers decide (see kube/retry.py).
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import httpx2 as httpx
from lightkube.config.client_adapter import AsyncClient as _configured_httpx
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig, SingleConfig

from graylane.kube.resources import Resource

__all__ = ["ApiError", "KubeClient", "Obj", "PatchType"]

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
log = logging.getLogger(__name__)


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
    """One connection pool to one API server; create it once per process and pass it around."""

    def __init__(self, config: SingleConfig, *, field_manager: str = "graylane") -> None:
        params = ConnectionParams(timeout=httpx.Timeout(30.0), trust_env=False)
        self._http = _configured_httpx(config, params)
        self.field_manager = field_manager
        self.namespace = config.namespace or "default"
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubeClient:
        """Load a kubeconfig file; with no path, $KUBECONFIG / ~/.kube/config / in-cluster as kubectl does."""
        config = KubeConfig.from_file(path) if path else KubeConfig.from_env()
        single = config.get(context_name=context)
        if single is None:
            raise ValueError(f"context {context!r} not found in the kubeconfig")
        return cls(single)

    async def close(self) -> None:
        await self._http.aclose()

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
        verb = method.lower()
        self.requests[(verb, resource or path)] += 1
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else {}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        resp = await self._http.request(method, path, params=clean, content=content, headers=headers)
        data = _json_or_none(resp.content)
        if resp.status_code >= 400:
            raise ApiError.from_status(resp.status_code, data if isinstance(data, dict) else None)
        return data

    # -- verbs ------------------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", res.path(namespace, name), resource=res.plural)  # type: ignore[no-any-return]

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
        return await self.request("GET", res.path(namespace), resource=res.plural, params=params)  # type: ignore[no-any-return]

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace if namespace is not None else obj.get("metadata", {}).get("namespace")
        params = {"fieldManager": self.field_manager}
        return await self.request("POST", res.path(ns), resource=res.plural, body=obj, params=params)  # type: ignore[no-any-return]

    async def replace(self, res: Resource, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        path = res.path(meta.get("namespace"), meta["name"], subresource)
        params = {"fieldManager": self.field_manager}
        return await self.request("PUT", path, resource=_tag(res, subresource), body=obj, params=params)  # type: ignore[no-any-return]

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
            resource=_tag(res, subresource),
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
        body = {"propagationPolicy": propagation} if propagation else None
        try:
            await self.request("DELETE", res.path(namespace, name), resource=res.plural, body=body)
        except ApiError as err:
            if err.not_found:
                return False
            raise
        return True

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
        self.requests[("watch", res.plural)] += 1
        timeout = httpx.Timeout(10.0, read=timeout_seconds + 30.0)
        async with self._http.stream("GET", res.path(namespace), params=clean, timeout=timeout) as resp:
            if resp.status_code >= 400:
                raise ApiError.from_status(resp.status_code, _json_or_none(await resp.aread()))
            async for line in resp.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raise ApiError.from_status(410, event.get("object"))
                yield event["type"], event["object"]


def _tag(res: Resource, subresource: str | None) -> str:
    return f"{res.plural}/{subresource}" if subresource else res.plural


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return {"message": content.decode(errors="replace")[:500]}
