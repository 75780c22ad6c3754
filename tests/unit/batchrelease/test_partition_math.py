"""Replica arithmetic of the BatchRelease styles and the deployment-strategy annotation (reference §2.6)."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.api.batchrelease import ReleasePlan
from graylane.batchrelease.advanced_deployment_planner import DeploymentStrategy, new_rs_limit
from graylane.batchrelease.planner import pod_label_patches
from graylane.planner.weights import canary_style_replicas, partition_style_replicas


@pytest.mark.parametrize(
    ("replicas", "batches", "canary", "partition"),
    [
        (5, ["20%", "90%"], [1, 5], [1, 4]),  # the reference's numbers
        (3, ["20%", "40%", "60%", "80%", "90%"], [1, 2, 2, 3, 3], [1, 2, 2, 2, 2]),
        (5, ["20%", "100%"], [1, 5], [1, 5]),  # "100%" is not capped
        (5, [1, 5], [1, 5], [1, 5]),  # integers are not capped
        (1, ["50%", "90%"], [1, 1], [1, 1]),  # one replica: no pod is kept back
        (0, ["50%"], [0], [0]),
        (10, ["1%", "99%"], [1, 10], [1, 9]),  # percentages round up
    ],
)
def test_batch_replicas(replicas: int, batches: list[Any], canary: list[int], partition: list[int]) -> None:
    assert [canary_style_replicas(b, replicas) for b in batches] == canary
    assert [partition_style_replicas(b, replicas) for b in batches] == partition


@pytest.mark.parametrize(
    ("partition", "replicas", "want"),
    [
        (0, 5, 0),
        ("20%", 5, 1),
        ("90%", 5, 4),  # a percentage below 100% keeps one old pod
        ("100%", 5, 5),
        (4, 5, 4),
        (9, 5, 5),  # clamped to replicas
        ("90%", 1, 1),
        ("bad", 5, 0),
    ],
)
def test_new_rs_limit_matches_the_partition_style_batches(partition: Any, replicas: int, want: int) -> None:
    assert new_rs_limit(partition, replicas) == want


@pytest.mark.parametrize(
    ("strategy", "want"),
    [
        (
            DeploymentStrategy(rolling_update={"maxSurge": "25%", "maxUnavailable": "25%"}),
            '{"rollingStyle":"Partition","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"},"partition":0}',
        ),
        (
            DeploymentStrategy(partition="20%", paused=True),
            '{"rollingStyle":"Partition","paused":true,"partition":"20%"}',
        ),
        (DeploymentStrategy(rolling_style="", partition=3), '{"partition":3}'),
    ],
)
def test_strategy_json_is_what_go_writes(strategy: DeploymentStrategy, want: str) -> None:
    assert strategy.dump() == want
    assert DeploymentStrategy.parse(want) == strategy


@pytest.mark.parametrize(
    ("rolling_update", "want"),
    [
        (None, {"maxUnavailable": "25%", "maxSurge": "25%"}),
        ({"maxSurge": 2}, {"maxSurge": 2, "maxUnavailable": "25%"}),
        ({"maxSurge": 0, "maxUnavailable": 0}, {"maxUnavailable": 1, "maxSurge": 0}),
        ({"maxSurge": "0%", "maxUnavailable": "0%"}, {"maxUnavailable": 1, "maxSurge": 0}),
    ],
)
def test_strategy_defaults(rolling_update: dict[str, Any] | None, want: dict[str, Any]) -> None:
    assert DeploymentStrategy(rolling_update=rolling_update).with_defaults().rolling_update == want


@pytest.mark.parametrize("text", [None, "", "not json", "[1]"])
def test_strategy_parse_rejects_what_is_not_an_object(text: str | None) -> None:
    assert DeploymentStrategy.parse(text) is None


@pytest.mark.parametrize(
    ("replicas", "batches", "current", "want"),
    [
        (5, ["20%", "90%"], 0, {"1": 1}),
        (5, ["20%", "90%"], 1, {"1": 1, "2": 4}),
        (3, ["20%", "40%", "60%", "80%", "90%"], 4, {"1": 1, "2": 1, "4": 1}),  # empty increments skipped
        (10, [2, 5, "100%"], 2, {"1": 2, "2": 3, "3": 5}),
    ],
)
def test_pod_label_shares_per_batch(
    replicas: int, batches: list[Any], current: int, want: dict[str, int]
) -> None:
    pods = [{"metadata": {"name": f"p{i}", "creationTimestamp": f"{i:03}"}} for i in range(replicas)]
    plan = ReleasePlan.from_obj({"batches": [{"canaryReplicas": b} for b in batches]})
    patches = pod_label_patches(pods, plan.batches, replicas, current, "r1")
    counts: dict[str, int] = {}
    for patch in patches:
        batch_id = patch.body["metadata"]["labels"]["rollouts.kruise.io/rollout-batch-id"]
        counts[batch_id] = counts.get(batch_id, 0) + 1
    assert counts == want
