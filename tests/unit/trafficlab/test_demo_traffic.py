"""The demo's traffic lines and its fallback without root."""

from __future__ import annotations

import pytest

from graylane.cli.demo import lab_netns
from graylane.demo import traffic
from graylane.trafficlab.client import Answer, Tally


def test_without_root_the_demo_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traffic.os, "geteuid", lambda: 1000)
    reason = traffic.unavailable_reason()
    assert reason is not None
    assert "needs root" in reason
    monkeypatch.setattr(traffic.os, "geteuid", lambda: 0)
    assert traffic.unavailable_reason() is None


def test_shares_read_as_counts() -> None:
    one = Tally([Answer(0, 200, {"image": "demo:v2"})] * 100)
    assert traffic._share(one) == "demo:v2 100/100"
    mixed = Tally([Answer(0, 200, {"image": "demo:v1"}), Answer(0, 503, {})])
    assert traffic._share(mixed) == "HTTP 503 1, demo:v1 1 of 2"


@pytest.mark.parametrize(
    ("name", "netns"),
    [
        ("graylane", "gl-demo-graylane"),
        ("gl-demo-123", "gl-demo-gl-demo-123"),
        ("My_Cluster", "gl-demo-my-cluster"),
    ],
)
def test_the_demo_namespace_is_named_after_the_cluster(name: str, netns: str) -> None:
    assert lab_netns(name) == netns
