"""Network-namespace guards and the client's tallies (no namespace is created here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from graylane.trafficlab import netns
from graylane.trafficlab.client import Answer, Tally, answer_version, lane_versions, send
from graylane.trafficlab.lab import TrafficLab


@pytest.mark.parametrize("name", ["traffic", "gl-", "gl-UPPER", "gl-a b", "gl-" + "x" * 41, "gl-../etc"])
def test_namespace_names_are_ours_and_plain(name: str) -> None:
    with pytest.raises(netns.NetnsError, match="namespace name"):
        netns.NetNamespace(name)


def test_commands_run_inside_by_ip_netns_exec() -> None:
    ns = netns.NetNamespace("gl-traffic-1")
    assert ns.command(["traefik", "--x"]) == ["ip", "netns", "exec", "gl-traffic-1", "traefik", "--x"]


def test_without_root_the_error_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(netns.NetnsError, match="needs root"):
        netns.NetNamespace.create("traffic")


def test_the_route_check_refuses_addresses_outside_the_pod_range() -> None:
    ns = netns.NetNamespace("gl-traffic-1")
    for address in ("10.124.0.1", "192.168.1.1", "8.8.8.8"):
        with pytest.raises(netns.NetnsError, match="neither loopback nor in the pod range"):
            ns.check_local(address)


def test_requests_to_a_pod_ip_need_the_route_check() -> None:
    with pytest.raises(ValueError, match="route check"):
        asyncio.run(send(8080, 1, address="10.123.0.5"))
    with pytest.raises(ValueError, match="between 1 and"):
        asyncio.run(send(8080, 0))


def _answer(image: str, status: int = 200, **body: object) -> Answer:
    return Answer(0.0, status, {"image": image, **body})


def test_tallies_count_images_without_registry_paths() -> None:
    tally = Tally(
        [_answer("reg.example/x/version:v1"), _answer("demo:v2"), _answer("demo:v2"), _answer("x", 503)]
    )
    assert tally.count() == {"HTTP 503": 1, "demo:v2": 2, "version:v1": 1}
    assert [a.status for a in tally.failures] == [503]
    assert tally.describe() == "4 requests: HTTP 503 1, demo:v2 2, version:v1 1"
    assert answer_version(_answer("demo:v2")) == "demo:v2"


def test_lane_answers_read_hop_by_hop() -> None:
    b = {"pod": "b-1", "image": "b:v2", "labels": {"opensergo.io/canary-gray": "gray"}}
    answer = _answer("a:v2", pod="a-1", labels={"opensergo.io/canary-gray": "gray"}, upstream=b)
    assert lane_versions(answer) == "a:v2 (gray) -> b:v2 (gray)"
    assert lane_versions(_answer("a:v1", 502, pod="a-1")) == "HTTP 502"


def test_the_lab_refuses_to_start_without_root_before_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    lab = TrafficLab("traffic", tmp_path / "lab")
    monkeypatch.setattr(lab, "_build", lambda: pytest.fail("built without root"))
    with pytest.raises(netns.NetnsError, match="creating one needs root"):
        lab.start()
