"""The fake app's pure parts: versions from images, evenly spread errors, the lane's instance choice."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.trafficlab.app import Pod, choose_upstream, fails, matches, version_of


def pod(name: str, image: str = "b:v1", *, gray: str | None = None, ready: bool = True, **meta: Any) -> Pod:
    labels = {"app": "b", **({"opensergo.io/canary-gray": gray} if gray else {})}
    return Pod(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": f"{name}-uid", "labels": labels, **meta},
            "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {
                "podIP": f"10.123.0.{len(name)}",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }
    )


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("demo:v2", "v2"),
        ("registry.cn-hangzhou.aliyuncs.com/mse-ingress/version:v1", "v1"),
        ("localhost:5000/app", "latest"),
        ("app", "latest"),
    ],
)
def test_version_is_the_image_tag(image: str, version: str) -> None:
    assert version_of(image) == version


@pytest.mark.parametrize(
    ("rate", "errors"), [(0.0, 0), (0.1, 10), (0.25, 25), (0.5, 50), (1.0, 100), (3.0, 100)]
)
def test_errors_are_spread_evenly(rate: float, errors: int) -> None:
    answers = [fails(n, rate) for n in range(100)]
    assert sum(answers) == errors
    if 0 < rate < 1:  # any window of 1/rate answers holds one error
        window = round(1 / rate)
        assert all(sum(answers[i : i + window]) == 1 for i in range(0, 100 - window, window))


def test_a_call_with_the_lane_tag_goes_to_the_gray_instances() -> None:
    candidates = [pod("b-1"), pod("b-2"), pod("b-gray", "b:v2", gray="gray")]
    picked = {choose_upstream(candidates, "gray", turn).name for turn in range(4)}  # type: ignore[union-attr]
    assert picked == {"b-gray"}


def test_without_the_tag_or_without_gray_instances_calls_stay_stable() -> None:
    candidates = [pod("b-1"), pod("b-2"), pod("b-gray", "b:v2", gray="gray")]
    untagged = {choose_upstream(candidates, None, turn).name for turn in range(4)}  # type: ignore[union-attr]
    assert untagged == {"b-1", "b-2"}  # round robin over the stable ones
    stable_only = [pod("b-1"), pod("b-2")]
    assert {choose_upstream(stable_only, "gray", t).name for t in range(2)} == {"b-1", "b-2"}  # type: ignore[union-attr]


def test_unready_and_terminating_pods_are_never_called() -> None:
    gone = pod("b-x", deletionTimestamp="2026-01-01T00:00:00Z")
    assert choose_upstream([pod("b-1", ready=False), gone], None, 0) is None


def test_service_selectors_match_labels() -> None:
    assert matches({"app": "b"}, {"app": "b", "x": "y"})
    assert not matches({"app": "b"}, {"app": "a"})
    assert not matches({}, {"app": "b"})  # a Service without a selector selects no pod here


def test_pod_facts() -> None:
    gray = pod("b-gray", "b:v2", gray="gray", annotations={"trafficlab.graylane.io/error-rate": "0.1"})
    assert (gray.version, gray.gray_tag, gray.service, gray.ready) == ("v2", "gray", "b", True)
    assert gray.number("trafficlab.graylane.io/error-rate") == pytest.approx(0.1)
    assert gray.number("trafficlab.graylane.io/latency-ms") == 0.0
    assert (
        pod("b", annotations={"trafficlab.graylane.io/latency-ms": "soon"}).number(
            "trafficlab.graylane.io/latency-ms"
        )
        == 0.0
    )
