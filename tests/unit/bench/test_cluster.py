"""The benchmark cluster's sizing and control-plane rate limits (pure parts)."""

from __future__ import annotations

from graylane.bench.cluster import nodes_for, qps_patches


def test_qps_patches_raise_both_clients_with_twice_the_burst() -> None:
    patches = qps_patches(200)
    assert [p["name"] for p in patches] == ["kube-controller-manager", "kube-scheduler"]
    for patch in patches:
        assert patch["extraArgs"] == [
            {"key": "kube-api-qps", "value": "200"},
            {"key": "kube-api-burst", "value": "400"},
        ]


def test_nodes_fit_stable_canary_and_surge_pods() -> None:
    assert nodes_for(1000, 3) == 8  # 7000 pods at 900 a node
    assert nodes_for(1, 3) == 1
