"""Builders of the plain objects the integration and e2e tests create."""

from __future__ import annotations

from typing import Any


def deployment(
    name: str,
    namespace: str,
    *,
    replicas: int = 5,
    image: str = "demo:v1",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    app = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": app},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": app},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def set_image_patch(image: str) -> dict[str, Any]:
    """Strategic-merge patch that changes the (single) container image, as `kubectl set image` does."""
    return {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
