"""Cluster set-up the demo needs besides graylane itself: the Gateway API CRDs (from their Go module).

They must exist before the controller starts, because it watches HTTPRoutes only when the CRD is there.
"""

from __future__ import annotations

import asyncio

import yaml

from graylane.cluster.thirdparty import fetch_gateway_api_crds
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.webhook.install import wait_established

__all__ = ["ensure_gateway_api"]


async def ensure_gateway_api(kubeconfig: str) -> list[str]:
    """Create the Gateway API standard CRDs if missing; returns their names once Established."""
    paths = await asyncio.to_thread(fetch_gateway_api_crds)
    names: list[str] = []
    async with KubeClient.from_kubeconfig(kubeconfig) as kube:
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    await _create(kube, doc)
                    names.append(doc["metadata"]["name"])
        async with asyncio.timeout(60):
            await wait_established(kube, names)
    return names


async def _create(kube: KubeClient, crd: dict[str, object]) -> None:
    try:
        await kube.create(r.CRD, crd)
    except ApiError as err:
        if not err.already_exists:
            raise
