"""Replica arithmetic tables, with the reference's own examples."""

from __future__ import annotations

import pytest

from graylane.planner.weights import (
    batch_ready,
    canary_style_replicas,
    parse_percent,
    partition_style_replicas,
    scale,
    traffic_percent,
)


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        (None, 5, 0),
        (1, 5, 1),
        (7, 5, 5),  # clamped to the workload
        ("10%", 5, 1),  # rounds up, never 0 for a positive percentage
        ("20%", 5, 1),
        ("30%", 5, 2),
        ("90%", 5, 5),
        ("100%", 5, 5),
        ("0%", 5, 0),
        ("3", 5, 3),
        ("50%", 0, 0),
    ],
)
def test_scale_rounds_up_and_clamps(value: int | str | None, total: int, expected: int) -> None:
    assert scale(value, total) == expected


@pytest.mark.parametrize(
    ("step", "canary", "partition"),
    [
        # The reference's seed scenario 2: 5 replicas, steps 20% and 90%.
        ("20%", 1, 1),
        ("90%", 5, 4),
        ("100%", 5, 5),
        (4, 4, 4),  # integer steps are not capped
        (5, 5, 5),
    ],
)
def test_canary_versus_partition_style(step: int | str, canary: int, partition: int) -> None:
    assert canary_style_replicas(step, 5) == canary
    assert partition_style_replicas(step, 5) == partition


@pytest.mark.parametrize(("step", "expected"), [("20%", 1), ("40%", 2), ("60%", 2), ("80%", 3), ("90%", 3)])
def test_canary_style_three_replicas_matches_kruise_e2e(step: str, expected: int) -> None:
    assert canary_style_replicas(step, 3) == expected


def test_partition_cap_does_not_apply_to_one_replica() -> None:
    assert partition_style_replicas("50%", 1) == 1


@pytest.mark.parametrize(
    ("desired", "updated", "ready", "threshold", "expected"),
    [
        (2, 1, 1, None, False),  # not enough updated pods
        (2, 2, 1, None, False),  # one not ready, no tolerance
        (2, 2, 2, None, True),
        (2, 2, 1, "50%", True),  # 50% of 2 updated tolerates 1
        (4, 4, 3, "20%", True),  # ceil(0.8) = 1 tolerated
        (1, 1, 0, "100%", False),  # at least one ready pod when pods are wanted
        (0, 0, 0, None, True),
        (3, 3, 1, 1, False),
    ],
)
def test_batch_ready(
    desired: int, updated: int, ready: int, threshold: int | str | None, expected: bool
) -> None:
    assert (
        batch_ready(desired=desired, updated=updated, updated_ready=ready, failure_threshold=threshold)
        is expected
    )


def test_bad_percentage_names_the_value() -> None:
    with pytest.raises(ValueError, match="'abc%'"):
        parse_percent("abc%")


def test_traffic_percent() -> None:
    assert traffic_percent("20%") == 20
    assert traffic_percent(None) is None
