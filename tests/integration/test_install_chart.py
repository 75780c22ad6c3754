"""The Helm chart and the plain manifests generated from it, against the real API server.

`helm` is built from the Go module proxy into the cache on first use (cluster/tools.py). The rendered
output must pass `kubectl apply --dry-run=server` (schema, admission and RBAC objects as the API server
checks them), with the default values and with a Kruise-style values override, and deploy/manifests must
be exactly what the chart renders today.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import yaml

from graylane.api import crdgen
from graylane.cluster import build
from graylane.cluster.tools import (
    CRD_TEMPLATE,
    MANIFEST_HEADER,
    MANIFESTS,
    chart_crds,
    ensure_helm,
    render_chart,
)


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_helm(out=lambda line: print(line, flush=True))


def _kubectl(kubeconfig: Path, verb: str, docs: list[dict[str, object]]) -> str:
    kubectl = build.binaries(build.Versions())["kubectl"]
    proc = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), verb, "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def server_dry_run(kubeconfig: Path, rendered: str) -> str:
    """Everything through `kubectl apply --dry-run=server`, except the CRDs: the session cluster has them
    already, pointed at a URL-mode controller, and merging the chart's Service reference into a live URL
    makes a CRD with both; `kubectl replace --dry-run=server` validates the chart's CRDs as written."""
    docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    said = _kubectl(kubeconfig, "replace", crds)
    return said + _kubectl(kubeconfig, "apply", [d for d in docs if d not in crds])


def kinds(rendered: str) -> list[str]:
    return sorted(str(d["kind"]) for d in yaml.safe_load_all(rendered) if isinstance(d, dict))


async def test_the_default_chart_passes_a_server_dry_run(helm: Path, kubeconfig: Path) -> None:
    rendered = await asyncio.to_thread(render_chart, helm)
    said = await asyncio.to_thread(server_dry_run, kubeconfig, rendered)
    crds = len(crdgen.crd_documents())
    assert kinds(rendered) == [
        "ClusterRole",
        "ClusterRoleBinding",
        *["CustomResourceDefinition"] * crds,
        "Deployment",
        "Namespace",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    assert "deployment.apps/kruise-rollout-controller-manager created (server dry run)" in said


async def test_kruise_values_are_honoured(helm: Path, kubeconfig: Path, namespace: str) -> None:
    sets = {
        "installation.createNamespace": "false",  # a dry run does not create it for the objects after it
        "replicaCount": "3",
        "image.repository": "registry.example/graylane",
        "image.tag": "9.9.9",
        "rollout.webhook.port": "9443",
        "rollout.log.level": "5",
        "rollout.featureGates": "AdvancedDeployment=false",
        "rollout.leaderElection.enabled": "true",
        "resources.limits.memory": "512Mi",
    }
    rendered = await asyncio.to_thread(render_chart, helm, sets=sets, namespace=namespace)
    await asyncio.to_thread(server_dry_run, kubeconfig, rendered)
    docs = {
        (d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)
    }
    deployment = docs[("Deployment", "kruise-rollout-controller-manager")]
    assert deployment["metadata"]["namespace"] == namespace
    assert ("Namespace", namespace) not in docs
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/graylane:9.9.9"
    assert container["resources"]["limits"]["memory"] == "512Mi"
    for arg in (
        "--webhook-port=9443",
        "--log-level=DEBUG",
        "--feature-gates=AdvancedDeployment=false",
        "--leader-elect",
    ):
        assert arg in container["args"]
    service = docs[("Service", "kruise-rollout-webhook-service")]
    assert service["spec"]["ports"][0]["targetPort"] == 9443


async def test_the_plain_manifests_are_the_chart_rendered(helm: Path) -> None:
    rendered = await asyncio.to_thread(render_chart, helm)
    assert MANIFESTS.read_text() == MANIFEST_HEADER + rendered, "run `make manifests`"
    assert CRD_TEMPLATE.read_text() == chart_crds(), "run `make manifests`"
    crds = [
        d
        for d in yaml.safe_load_all(rendered)
        if isinstance(d, dict) and d["kind"] == "CustomResourceDefinition"
    ]
    converted = [c for c in crds if c["spec"].get("conversion", {}).get("strategy") == "Webhook"]
    assert converted, "the Rollout and BatchRelease CRDs convert through the webhook"
    for crd in converted:
        assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"] == {
            "name": "kruise-rollout-webhook-service",
            "namespace": "kruise-rollout",
            "path": "/convert",
            "port": 443,
        }
