"""canaryRevision is the Deployment controller's pod-template-hash (issue 15, item 2).

kube-controller-manager is the oracle: for every template of the corpus (data/podtemplate_corpus.yaml)
a Deployment with 0 replicas makes it create a ReplicaSet labelled with ``controller.ComputeHash`` of
the Deployment's template; graylane's ``pod_template_hash`` of the template the API server returns must
equal that label. Before this change graylane wrote a SHA-256 of sorted JSON (no template matched).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from graylane.api.podtemplatehash import pod_template_hash
from graylane.cluster.build import cache_root
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.observe.workloads import deployment_workload
from tests.integration.waiting import eventually

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "podtemplate_corpus.yaml").read_text("utf-8"))


def _deployment(name: str, template: dict[str, Any]) -> dict[str, Any]:
    template = {**template, "metadata": dict(template.get("metadata") or {})}
    labels = {**(template["metadata"].get("labels") or {}), "corpus-entry": name}
    template["metadata"]["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"corpus-entry": name}}, "template": template},
    }


async def _owned_replica_sets(kube: KubeClient, namespace: str, dep: dict[str, Any]) -> list[dict[str, Any]]:
    name, uid = dep["metadata"]["name"], dep["metadata"]["uid"]
    listed = await kube.list(r.REPLICASET, namespace, label_selector=f"corpus-entry={name}")
    return [
        rs
        for rs in listed.get("items") or []
        if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
    ]


async def _controller_hash(kube: KubeClient, namespace: str, name: str, template: dict[str, Any]) -> None:
    dep = await kube.create(r.DEPLOYMENT, _deployment(name, template), namespace)
    sets = await eventually(
        lambda: _owned_replica_sets(kube, namespace, dep),
        lambda found: len(found) == 1,
        what=f"the ReplicaSet of Deployment {name}",
        timeout=120,
    )
    live = await kube.get(r.DEPLOYMENT, name, namespace)
    assert live["status"].get("collisionCount") is None, "the controller salted the hash; corpus unusable"
    oracle = sets[0]["metadata"]["labels"]["pod-template-hash"]
    assert pod_template_hash(live["spec"]["template"]) == oracle, name
    # What the Rollout controller reports for this workload (canaryRevision, stable revision).
    workload = deployment_workload(live, sets)
    assert workload.canary_revision == oracle


@pytest.mark.parametrize("entry", CORPUS, ids=[entry["name"] for entry in CORPUS])
async def test_pod_template_hash_matches_kube_controller_manager(
    kube: KubeClient, namespace: str, entry: dict[str, Any]
) -> None:
    await _controller_hash(kube, namespace, entry["name"], entry["template"])


async def test_every_revision_of_an_edited_template_matches(kube: KubeClient, namespace: str) -> None:
    """Each edit of one Deployment gives a new ReplicaSet; each hash is matched (ordering, nil/empty)."""
    template = CORPUS[0]["template"]
    dep = await kube.create(r.DEPLOYMENT, _deployment("edited", template), namespace)
    edits: list[dict[str, Any]] = [
        {"spec": {"template": {"metadata": {"annotations": {"b": "2", "a": "1"}}}}},
        {"spec": {"template": {"metadata": {"annotations": {"a": None}}}}},
        {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 0}}}},
        {"spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": False}}}}},
    ]
    for edit in edits:
        await kube.patch(r.DEPLOYMENT, "edited", edit, namespace)
        live = await eventually(
            lambda: kube.get(r.DEPLOYMENT, "edited", namespace),
            lambda d: d["status"].get("observedGeneration") == d["metadata"]["generation"],
            what="the Deployment controller to observe the edit",
            timeout=120,
        )
        want = pod_template_hash(live["spec"]["template"])
        await eventually(
            lambda: _owned_replica_sets(kube, namespace, dep),
            lambda found, want=want: any(
                rs["metadata"]["labels"]["pod-template-hash"] == want for rs in found
            ),
            what=f"a ReplicaSet labelled {want} after {edit}",
            timeout=120,
        )


def test_the_committed_type_graph_is_what_the_generator_makes() -> None:
    """data/podtemplatespec.gotypes.json is `make gotypes` output (like the CRDs): regenerate and compare."""
    repo = Path(__file__).resolve().parents[2]
    go = cache_root() / "go"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "GOMODCACHE": str(go / "mod"),
        "GOCACHE": str(go / "build"),
        "GOFLAGS": "-mod=readonly",
        "GOTOOLCHAIN": "local",
    }
    made = subprocess.run(
        ["go", "run", "."],
        cwd=repo / "tools" / "gotypes",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    fresh = json.loads(made.stdout)
    committed = json.loads((repo / "src/graylane/api/data/podtemplatespec.gotypes.json").read_text("utf-8"))
    # The Go version that ran the generator may differ; the module versions and the graph may not.
    fresh["provenance"].pop("go")
    committed["provenance"].pop("go")
    assert fresh == committed
