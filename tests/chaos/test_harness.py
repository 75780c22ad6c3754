"""The chaos harness's own parts, without a cluster: each check flags what it must, the plans are valid
and reproducible, the proxy forwards and cuts, bad settings are refused with the variable's name."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import checks
from tests.chaos.checks import Expected, Originals
from tests.chaos.observer import consistent
from tests.chaos.plans import (
    LaneSpec,
    Provider,
    Step,
    Style,
    allowed_new_pods,
    draw_lane,
    draw_release,
    rollout_manifest,
)
from tests.chaos.proxy import CutProxy
from tests.chaos.settings import DEFAULT_SEED, ChaosSettings, SettingsError

NS = "chaos-1-00"
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


def lane(style: Style = Style.CANARY, provider: Provider = Provider.NONE) -> LaneSpec:
    steps = (Step("20%"), Step("60%", pause=2), Step("100%"))
    return LaneSpec(NS, style, "rollouts.kruise.io/v1beta1", provider, 5, steps, grace=0)


def canary(name: str, owner: str, *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "labels": {checks.CANARY_LABEL: "app"},
        "ownerReferences": [{"uid": owner, "controller": True}],
        "creationTimestamp": "2026-01-01T12:00:00Z",
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": meta, "spec": {"template": {"spec": {"containers": [{"image": "chaos:v2"}]}}}}


def pod(image: str, *, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p-{random.random()}"},
        "spec": {"containers": [{"image": image}]},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def rollout(
    phase: str, *, step: int = 1, state: str = "StepPaused", reason: str = "InRolling"
) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1, "finalizers": ["rollouts.kruise.io/rollout"]},
        "status": {
            "observedGeneration": 1,
            "phase": phase,
            "canaryStatus": {"currentStepIndex": step, "currentStepState": state},
            "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        },
    }


def ended(succeeded: str, message: str, at: str = "2026-01-01T12:00:05Z") -> dict[str, Any]:
    ro = rollout("Healthy", state="Completed", reason="Completed")
    ro["status"]["message"] = message
    ro["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "Completed", "lastUpdateTime": at},
        {"type": "Succeeded", "status": succeeded},
    ]
    return ro


def deployment(**changes: Any) -> dict[str, Any]:
    dep: dict[str, Any] = {
        "metadata": {"generation": 3, "labels": {"rollouts.kruise.io/workload-type": "deployment"}},
        "spec": {
            "strategy": STRATEGY,
            "template": {"spec": {"containers": [{"image": "chaos:v2"}]}},
        },
        "status": {"observedGeneration": 3, **dict.fromkeys(checks.COUNTS, 5)},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        dep[section][key] = value
    return dep


# -- the sampler's invariants ------------------------------------------------------------------------


def test_two_live_canaries_of_one_batch_release_are_a_duplicate() -> None:
    found = checks.duplicate_canaries([canary("app-a", "br-1"), canary("app-b", "br-1")])
    assert [(ns, uid, [n.split()[0] for n in names]) for ns, uid, names in found] == [
        (NS, "br-1", ["app-a", "app-b"])
    ]
    assert "(chaos:v2, created" in found[0][2][0]


@pytest.mark.parametrize(
    "deployments",
    [
        [canary("app-a", "br-1")],
        [canary("app-a", "br-1"), canary("app-b", "br-2")],  # a newer revision's BatchRelease
        [canary("app-a", "br-1", deleting=True), canary("app-b", "br-1")],  # being collected
    ],
)
def test_one_live_canary_per_batch_release_is_not_a_duplicate(deployments: list[dict[str, Any]]) -> None:
    assert checks.duplicate_canaries(deployments) == []


def replica_set(image: str, replicas: int, *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"app-{image[-2:]}", "namespace": NS}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {
        "metadata": meta,
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
    }


def test_more_new_pods_ready_than_the_step_allows_is_flagged() -> None:
    pods = [pod("chaos:v2"), pod("chaos:v2")] + [pod("chaos:v1")] * 5
    sized = [replica_set("chaos:v2", 2), replica_set("chaos:v1", 5)]
    problem, surplus = checks.over_ready(
        lane(), "chaos:v2", pods, sized, None, rollout("Progressing", step=1)
    )
    assert problem is not None
    assert surplus is None
    assert "2 chaos:v2 pods Ready at step 1" in problem
    assert "allows 1" in problem
    assert "ReplicaSets sized 2" in problem


def test_a_replica_set_controller_surplus_is_reported_not_flagged() -> None:
    """Seed 7: a partition-style 2-of-3 batch whose new ReplicaSet was sized 2 had 3 pods Ready for
    1.4 s after an API server restart (a pod create committed, its response lost, created again)."""
    spec = LaneSpec(NS, Style.PARTITION, "rollouts.kruise.io/v1beta1", Provider.NONE, 3, (Step("50%"),), 0)
    pods = [pod("chaos:v4")] * 3 + [pod("chaos:v3")] * 2
    sized = [replica_set("chaos:v4", 2), replica_set("chaos:v3", 1)]
    ro = rollout("Progressing", step=1)
    problem, surplus = checks.over_ready(spec, "chaos:v4", pods, sized, None, ro)
    assert problem is None
    assert surplus is not None
    assert "3 chaos:v4 pods Ready at step 1" in surplus
    assert "allows 2" in surplus
    # The same pods with the ReplicaSet sized 3 (or a second one of the image) is the controller's doing.
    for oversized in ([replica_set("chaos:v4", 3)], [replica_set("chaos:v4", 2), replica_set("chaos:v4", 1)]):
        problem, surplus = checks.over_ready(spec, "chaos:v4", pods, oversized, None, ro)
        assert problem is not None
        assert surplus is None
    # A ReplicaSet being deleted sizes nothing.
    leaving = [replica_set("chaos:v4", 2), replica_set("chaos:v4", 1, deleting=True)]
    assert checks.over_ready(spec, "chaos:v4", pods, leaving, None, ro)[0] is None


@pytest.mark.parametrize(
    ("pods", "br_partition", "ro"),
    [
        ([pod("chaos:v2"), pod("chaos:v2", ready=False)], None, rollout("Progressing", step=1)),
        # the BatchRelease already asks for step 2 (3 of 5) while the Rollout status still says step 1
        ([pod("chaos:v2")] * 3, 1, rollout("Progressing", step=1)),
        ([pod("chaos:v2")] * 5, None, rollout("Progressing", step=3, state="Completed")),
        ([pod("chaos:v2")] * 5, None, rollout("Progressing", step=1, reason="Finalising")),
        ([pod("chaos:v2")] * 5, None, rollout("Disabling", step=1)),
    ],
)
def test_pods_within_the_step_or_outside_steps_are_not_flagged(
    pods: list[dict[str, Any]], br_partition: int | None, ro: dict[str, Any]
) -> None:
    br = (
        None
        if br_partition is None
        else {"metadata": {}, "spec": {"releasePlan": {"batchPartition": br_partition}}}
    )
    assert checks.over_ready(lane(), "chaos:v2", pods, [replica_set("chaos:v2", 5)], br, ro) == (None, None)


@pytest.mark.parametrize(
    ("style", "replicas", "total", "allowed"),
    [
        (Style.CANARY, "20%", 5, 1),
        (Style.CANARY, "90%", 5, 5),
        (Style.PARTITION, "90%", 5, 4),  # reference §2.6: 4.5 -> 5, capped at replicas - 1
        (Style.PARTITION, "100%", 5, 5),
        (Style.PARTITION, 5, 5, 5),  # integers are not capped
        (Style.CANARY, 1, 3, 1),
        (Style.CANARY, "40%", 3, 2),  # the e2e table: 3 replicas at 40% -> 2
    ],
)
def test_allowed_new_pods_follows_the_reference(
    style: Style, replicas: int | str, total: int, allowed: int
) -> None:
    assert allowed_new_pods(style, replicas, total) == allowed


# -- the end of a release ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "ro", "ok"),
    [
        ("completed", ended("True", checks.MSG_COMPLETED), True),
        ("completed", ended("False", checks.MSG_CANCELLED), False),
        ("cancelled", ended("False", checks.MSG_CANCELLED), True),
        ("either", ended("True", checks.MSG_COMPLETED), True),
        ("completed", ended("True", checks.MSG_COMPLETED, at="2026-01-01T11:59:59Z"), False),  # an older end
        ("completed", rollout("Progressing"), False),
        ("deleted", None, True),
        ("deleted", rollout("Terminating"), False),
        (
            "disabled",
            {
                **rollout("Disabled"),
                "status": {"observedGeneration": 1, "phase": "Disabled", "message": checks.MSG_DISABLED},
            },
            True,
        ),
        ("disabled", rollout("Disabling"), False),
    ],
)
def test_rollout_end(expected: str, ro: dict[str, Any] | None, ok: bool) -> None:
    problems = checks.rollout_problems(Expected(expected, "chaos:v2", T0), ro)
    assert (problems == []) is ok, problems


def test_a_wrong_ending_is_marked_so_the_lane_does_not_wait_for_it() -> None:
    problems = checks.rollout_problems(
        Expected("completed", "chaos:v2", T0), ended("False", checks.MSG_CANCELLED)
    )
    assert problems
    assert problems[0].startswith(checks.WRONG)


def test_a_handed_back_deployment_has_no_problems() -> None:
    assert checks.workload_problems(lane(), Originals(STRATEGY), "chaos:v2", deployment()) == []
    assert checks.workload_leftovers(lane(), deployment()) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"spec__paused": True}, "paused"),
        ({"spec__strategy": {"type": "Recreate"}}, "strategy"),
        ({"status__updatedReplicas": 4}, "not converged"),
        ({"status__observedGeneration": 2}, "not converged"),
        ({"spec__template": {"spec": {"containers": [{"image": "chaos:v1"}]}}}, "template image"),
    ],
)
def test_a_deployment_not_handed_back_is_flagged(changes: dict[str, Any], words: str) -> None:
    problems = checks.workload_problems(lane(), Originals(STRATEGY), "chaos:v2", deployment(**changes))
    assert any(words in p for p in problems), problems


@pytest.mark.parametrize(
    ("style", "key", "where", "left"),
    [
        (Style.CANARY, "rollouts.kruise.io/in-progressing", "annotations", True),
        (Style.PARTITION, "batchrelease.rollouts.kruise.io/control-info", "annotations", True),
        (Style.PARTITION, "rollouts.kruise.io/deployment-strategy", "annotations", True),
        (Style.PARTITION, "rollouts.kruise.io/controlled-by-advanced-deployment-controller", "labels", True),
        (Style.PARTITION, "rollouts.kruise.io/stable-revision", "labels", True),
        (Style.CANARY, "rollouts.kruise.io/stable-revision", "labels", False),  # Kruise leaves it too
        (Style.CANARY, "rollouts.kruise.io/workload-type", "labels", False),
    ],
)
def test_kruise_keys_left_on_the_workload(style: Style, key: str, where: str, left: bool) -> None:
    dep = deployment()
    dep["metadata"].setdefault(where, {})[key] = "x"
    assert bool(checks.workload_leftovers(lane(style), dep)) is left


def test_pods_must_all_be_ready_on_the_asked_image() -> None:
    assert checks.pods_problems(lane(), "chaos:v2", [pod("chaos:v2")] * 5) == []
    assert checks.pods_problems(lane(), "chaos:v2", [pod("chaos:v2")] * 4 + [pod("chaos:v1")])
    assert checks.pods_problems(lane(), "chaos:v2", [pod("chaos:v2")] * 4 + [pod("chaos:v2", ready=False)])


def test_traffic_objects_left_or_changed_are_flagged() -> None:
    spec = lane(provider=Provider.GATEWAY)
    route = {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}
    originals = Originals(STRATEGY, {"app": "app"}, None, route)
    web = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "app"}}}
    clean = {"metadata": {"name": "web-route"}, "spec": route}
    assert checks.traffic_problems(spec, originals, services=[web], ingresses=[], routes=[clean]) == []
    canary_svc = {"metadata": {"name": "web-canary"}, "spec": {}}
    pinned = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "app", "pod-template-hash": "abc"}}}
    changed = {
        "metadata": {"name": "web-route", "annotations": {"graylane.io/original-httproute-rules": "[]"}},
        "spec": route,
    }
    assert checks.traffic_problems(spec, originals, services=[web, canary_svc], ingresses=[], routes=[clean])
    assert checks.traffic_problems(spec, originals, services=[pinned], ingresses=[], routes=[clean])
    assert checks.traffic_problems(spec, originals, services=[web], ingresses=[], routes=[changed])
    held = {"metadata": {"name": "web", "finalizers": ["x"]}, "spec": {"selector": {"app": "app"}}}
    assert checks.traffic_problems(spec, originals, services=[held], ingresses=[], routes=[clean])


def test_release_objects_that_outlived_it_are_flagged() -> None:
    rs = {
        "metadata": {"name": "app-x-1", "ownerReferences": [{"uid": "other", "controller": True}]},
        "spec": {"replicas": 1},
    }
    assert checks.leftovers(
        canaries=[canary("app-a", "br")], batch_releases=[], replica_sets=[], owner_uid="d"
    )
    assert checks.leftovers(
        canaries=[], batch_releases=[{"metadata": {"name": "app"}}], replica_sets=[], owner_uid="d"
    )
    assert checks.leftovers(canaries=[], batch_releases=[], replica_sets=[rs], owner_uid="d")
    assert checks.leftovers(canaries=[], batch_releases=[], replica_sets=[rs], owner_uid="other") == []


# -- plans ---------------------------------------------------------------------------------------------


def test_a_seed_gives_the_same_lanes_and_scripts() -> None:
    def draw(seed: int) -> list[object]:
        rng = random.Random(seed)
        lanes = [draw_lane(rng, i, f"ns-{i}") for i in range(12)]
        return [*lanes, *(draw_release(rng, 3) for _ in range(50))]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_lanes_cover_every_style_version_and_provider() -> None:
    rng = random.Random(1)
    combos = {(s.style, s.api_version, s.provider) for s in (draw_lane(rng, i, "ns") for i in range(12))}
    assert len(combos) == 12


@pytest.mark.parametrize("seed", range(40))
def test_drawn_plans_respect_the_webhook_rules(seed: int) -> None:
    """Replicas never decrease; a partition-style step with traffic moves at most 50% (percentages)."""
    rng = random.Random(seed)
    for index in range(12):
        spec = draw_lane(rng, index, "ns")
        manifest = rollout_manifest(spec)
        assert manifest["metadata"]["namespace"] == "ns"
        amounts = [s.replicas for s in spec.steps]
        for kind in (int, str):
            same = [allowed_new_pods(spec.style, a, 1000) for a in amounts if isinstance(a, kind)]
            assert same == sorted(same), amounts
        weights = [s.weight for s in spec.steps if s.weight is not None]
        assert weights == sorted(weights)
        if spec.style == Style.PARTITION and spec.provider != Provider.NONE:
            for step in spec.steps:
                if step.weight is not None and isinstance(step.replicas, str):
                    assert int(step.replicas.rstrip("%")) <= 50


# -- proxy -----------------------------------------------------------------------------------------------


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def test_the_proxy_forwards_and_cuts_open_connections() -> None:
    server, _ = _echo_server()
    try:
        with CutProxy("127.0.0.1", server.getsockname()[1]) as proxy:
            clients = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(4)]
            for c in clients:
                c.sendall(b"ping")
                assert c.recv(4) == b"ping"
            assert proxy.cut(0.5, random.Random(1)) == 2
            assert proxy.cut(1.0, random.Random(1)) == 2  # the other two
            for c in clients:
                assert _closed(c)
                c.close()
            assert proxy.stats.accepted == 4
            assert proxy.stats.cut == 4
    finally:
        server.close()


def _closed(conn: socket.socket) -> bool:
    """The peer ended the connection: end of stream, or a reset."""
    try:
        conn.sendall(b"x")
        return conn.recv(1) == b""
    except OSError:
        return True


def test_the_proxy_refuses_a_non_loopback_upstream() -> None:
    with pytest.raises(ValueError, match="loopback"):
        CutProxy("10.0.0.1", 443)


async def test_the_proxy_drops_a_client_when_the_upstream_is_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with CutProxy("127.0.0.1", closed_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(1), 5) == b""
        writer.close()
        assert proxy.stats.upstream_refused == 1


# -- settings ----------------------------------------------------------------------------------------------


def test_settings_defaults_and_overrides() -> None:
    default = ChaosSettings.from_env({"GRAYLANE_CHAOS_SEED": "5"})
    assert (default.seed, default.releases, default.faults) == (
        5,
        200,
        frozenset({"kill", "apiserver", "cut"}),
    )
    small = ChaosSettings.from_env({"GRAYLANE_CHAOS_RELEASES": "10", "GRAYLANE_CHAOS_FAULTS": "kill, cut"})
    assert (small.releases, small.faults) == (10, frozenset({"kill", "cut"}))
    assert ChaosSettings.from_env({"GRAYLANE_CHAOS_FAULTS": "none"}).faults == frozenset()
    assert ChaosSettings.from_env({"GRAYLANE_CHAOS_KINDS": "complete"}).kinds == frozenset({"complete"})


def test_the_default_seed_is_fixed_so_ci_repeats_the_same_run() -> None:
    assert ChaosSettings.from_env({}).seed == ChaosSettings.from_env({}).seed == DEFAULT_SEED
    drawn = {ChaosSettings.from_env({"GRAYLANE_CHAOS_SEED": "random"}).seed for _ in range(5)}
    assert len(drawn) > 1  # "random" explores: five draws below 2**31 are never all equal in practice


def test_only_the_allowed_release_kinds_are_drawn() -> None:
    rng = random.Random(3)
    assert {draw_release(rng, 3, {"rollback", "newer"}).kind for _ in range(200)} == {"rollback", "newer"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GRAYLANE_CHAOS_SEED": "abc"}, "GRAYLANE_CHAOS_SEED"),
        ({"GRAYLANE_CHAOS_RELEASES": "0"}, "GRAYLANE_CHAOS_RELEASES"),
        ({"GRAYLANE_CHAOS_BUDGET": "5"}, "GRAYLANE_CHAOS_BUDGET"),
        ({"GRAYLANE_CHAOS_FAULTS": "kill,meteor"}, "GRAYLANE_CHAOS_FAULTS"),
        ({"GRAYLANE_CHAOS_KINDS": "none"}, "GRAYLANE_CHAOS_KINDS"),
        ({"GRAYLANE_CHAOS_KINDS": "complete,explode"}, "GRAYLANE_CHAOS_KINDS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        ChaosSettings.from_env(env)


def test_a_component_is_running_only_as_its_own_live_process(tmp_path: Path) -> None:
    """ApiServerRestarter.revive starts again what exited: a dead pid, another program's pid or a
    garbled pid file all read as exited."""
    from tests.chaos.apiserver import _running

    own = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(str(os.getpid()))
    assert _running(pid_file, Path(own).name)
    assert not _running(pid_file, "kube-controller-manager")
    pid_file.write_text("not a pid")
    assert not _running(pid_file, Path(own).name)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid is free
    pid_file.write_text(str(ended.pid))
    assert not _running(pid_file, Path(sys.executable).name)


@pytest.mark.parametrize(
    ("pods", "later", "kept"),
    [
        ("100", ["100", "105", "101"], True),
        ("100", ["100", "99", "101"], False),  # a custom resource LIST served from before the pods
        ("100", ["100"], True),
        ("", ["5"], True),  # not a number: nothing to compare
    ],
)
def test_a_snapshot_is_kept_only_when_no_later_list_is_older_than_its_pods(
    pods: str, later: list[str], kept: bool
) -> None:
    def listed(version: str) -> dict[str, object]:
        return {"metadata": {"resourceVersion": version}, "items": []}

    assert consistent(listed(pods), [listed(v) for v in later]) is kept
