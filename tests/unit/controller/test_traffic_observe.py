"""The traffic observer's pure parts: index values, cache transforms, the canary-style pod-template-hash."""

from __future__ import annotations

from typing import Any

from graylane.observe.traffic import ANY_INGRESS, slim, slim_configmap, traffic_index
from graylane.observe.workloads import canary_pod_template_hash, deployment_workload


def test_traffic_index_lists_every_object_a_rollout_reads() -> None:
    rollout = {
        "metadata": {"namespace": "ns", "name": "demo"},
        "spec": {
            "strategy": {
                "canary": {
                    "trafficRoutings": [
                        {"service": "web", "ingress": {"name": "ing"}, "gateway": {"httpRouteName": "rt"}}
                    ]
                }
            }
        },
    }
    assert traffic_index(rollout) == [
        "ns/Service/web",
        "ns/Service/web-canary",
        "ns/Ingress/ing",
        "ns/Ingress/ing-canary",
        ANY_INGRESS,
        "ns/HTTPRoute/rt",
    ]
    assert traffic_index({"metadata": {}, "spec": {"strategy": {"canary": {}}}}) == []


def test_slim_keeps_metadata_the_providers_read_and_spec() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "resourceVersion": "5",
            "labels": {"a": "b"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "x": "y"},
            "managedFields": [{"manager": "kubectl"}],
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"selector": {"a": "b"}},
        "status": {"loadBalancer": {}},
    }
    assert slim(obj) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "resourceVersion": "5",
            "labels": {"a": "b"},
            "annotations": {"x": "y"},
        },
        "spec": {"selector": {"a": "b"}},
    }


def test_configmap_cache_keeps_only_lua_keys_of_the_configuration() -> None:
    data = {"lua.traffic.routing.ingress.x": "return {}", "other": "big"}
    cm = {"metadata": {"name": "kruise-rollout-configuration", "namespace": "kr"}, "data": data}
    assert slim_configmap(cm)["data"] == {"lua.traffic.routing.ingress.x": "return {}"}
    assert slim_configmap({"metadata": {"name": "unrelated"}, "data": data})["data"] == {}


def _deployment(
    name: str, uid: str, image: str, created: str = "2026-01-01T00:00:00Z", **labels: str
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "generation": 2,
            "labels": labels,
            "creationTimestamp": created,
        },
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"image": image}},
        },
        "status": {"observedGeneration": 2},
    }


def _replica_set(owner: str, image: str, hash_: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"rs-{hash_}",
            "labels": {"pod-template-hash": hash_},
            "ownerReferences": [{"uid": owner, "controller": True}],
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": "demo", "pod-template-hash": hash_}},
                "spec": {"image": image},
            },
        },
    }


def test_canary_style_pod_template_hash_comes_from_the_canary_deployment() -> None:
    stable = _deployment("demo", "u-stable", "v2")  # paused on the new template: no new ReplicaSet
    canary = _deployment("demo-x1", "u-canary", "v2", **{"rollouts.kruise.io/canary-deployment": "demo"})
    sets = [_replica_set("u-stable", "v1", "aaa"), _replica_set("u-canary", "v2", "bbb")]
    assert canary_pod_template_hash([canary], sets) == "bbb"
    workload = deployment_workload(stable, sets, [canary])
    assert (workload.stable_revision, workload.pod_template_hash) == ("aaa", "bbb")
    assert deployment_workload(stable, sets).pod_template_hash == ""


def test_canary_hash_ignores_deleting_and_older_canaries() -> None:
    old = _deployment("demo-old", "u-old", "v2", created="2025-01-01T00:00:00Z")
    new = _deployment("demo-new", "u-new", "v2", created="2026-06-01T00:00:00Z")
    going = _deployment("demo-going", "u-going", "v2", created="2027-01-01T00:00:00Z")
    going["metadata"]["deletionTimestamp"] = "2027-01-02T00:00:00Z"
    sets = [
        _replica_set("u-old", "v2", "old"),
        _replica_set("u-new", "v2", "new"),
        _replica_set("u-going", "v2", "gone"),
    ]
    assert canary_pod_template_hash([old, new, going], sets) == "new"
    assert canary_pod_template_hash([], sets) == ""
