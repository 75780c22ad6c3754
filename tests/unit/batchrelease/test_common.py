"""The pieces the BatchRelease styles share: intstr scaling and a Deployment's resolved maxUnavailable."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.batchrelease.common import max_unavailable, name_of, scaled_or_zero, version_of


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 5, True, 2),
        ("25%", 5, False, 1),
        (3, 5, True, 3),
        ("x%", 5, True, 0),  # malformed: 0, never an exception out of a planner
        ("", 5, True, 0),
    ],
)
def test_scaled_or_zero(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert scaled_or_zero(value, total, round_up=round_up) == expected


def _deployment(replicas: int, strategy: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy is not None:
        spec["strategy"] = strategy
    return {"spec": spec}


@pytest.mark.parametrize(
    ("replicas", "strategy", "expected"),
    [
        (4, None, 1),  # defaults 25%/25%: unavailable rounds down
        (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "50%"}}, 5),
        (4, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}, 1),
        (3, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 9}}, 3),
        (4, {"type": "Recreate"}, 0),
        (0, None, 0),
    ],
)
def test_max_unavailable_resolves_fenceposts(
    replicas: int, strategy: dict[str, Any] | None, expected: int
) -> None:
    assert max_unavailable(_deployment(replicas, strategy)) == expected


def test_metadata_readers_tolerate_missing_metadata() -> None:
    assert name_of({}) == ""
    assert version_of({"metadata": None}) == ""
    assert name_of({"metadata": {"name": "a", "resourceVersion": "7"}}) == "a"
    assert version_of({"metadata": {"resourceVersion": "7"}}) == "7"
