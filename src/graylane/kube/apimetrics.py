"""Counting API requests the way Kubernetes names them: `graylane_api_requests_total{verb,resource,code}`.

`request_labels` is pure: it reads the verb and resource from the method, the URL path and the query,
following kube-apiserver's RequestInfo rules (`get` vs `list` by whether a name is in the path, `watch`
when asked to watch, `deletecollection` for a DELETE without a name; resource is `plural[/subresource]`,
qualified as `plural.group` for OpenKruise's workloads, whose plurals `statefulsets` and `daemonsets`
are also Kubernetes' own in `apps`: the RBAC test tells the two apart by this label).
`ApiMetrics` owns the counter on the registry it is given (the manager's, so it appears on /metrics);
the KubeClient it is passed to increments it. This module must not register anything on the global
registry or keep state at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter

__all__ = ["TRANSPORT_ERROR", "ApiMetrics", "request_labels", "resource_label"]

TRANSPORT_ERROR: Final = "error"  # the `code` label when no HTTP status came back
# `namespaces/<name>/<x>` is the Namespace's own subresource for these, not a resource in that namespace.
_NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})
_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_QUALIFIED_GROUPS: Final = frozenset({"apps.kruise.io"})


def request_labels(method: str, path: str, params: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(verb, resource) of one request; a path outside /api and /apis is labelled with itself."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    method = method.upper()
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
        if len(parts) > 1 and parts[1] in _QUALIFIED_GROUPS and rest:
            rest = _qualified(rest, parts[1])
    else:
        return method.lower(), "/" + "/".join(parts)
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        rest = rest[2:]
    resource = "/".join(rest[0:1] + rest[2:3])
    named = len(rest) >= 2
    return _verb(method, named, params or {}), resource


def resource_label(group: str, plural: str) -> str:
    """The `resource` label of a request for `plural` in `group` (see the module docstring)."""
    return f"{plural}.{group}" if group in _QUALIFIED_GROUPS else plural


def _qualified(rest: list[str], group: str) -> list[str]:
    """The path after the version with the resource's plural written `plural.group`."""
    at = 2 if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES else 0
    return [*rest[:at], f"{rest[at]}.{group}", *rest[at + 1 :]]


def _verb(method: str, named: bool, params: Mapping[str, Any]) -> str:
    if method == "GET":
        if str(params.get("watch", "")).lower() in ("true", "1"):
            return "watch"
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return _VERBS.get(method, method.lower())


class ApiMetrics:
    """The request counter; one per process, shared by every KubeClient of that process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "graylane_api_requests",
            "Requests graylane sent to the API server, by Kubernetes verb, resource and HTTP status",
            ["verb", "resource", "code"],
            registry=registry,
        )

    def observe(self, verb: str, resource: str, code: int | str) -> None:
        self.requests.labels(verb, resource, str(code)).inc()

    def count(self, verb: str, resource: str) -> float:
        """The sum over status codes (for tests and the benchmark's before/after comparisons)."""
        total = 0.0
        for metric in self.requests.collect():
            for sample in metric.samples:
                labels = sample.labels
                if sample.name.endswith("_total") and (labels["verb"], labels["resource"]) == (
                    verb,
                    resource,
                ):
                    total += sample.value
        return total
