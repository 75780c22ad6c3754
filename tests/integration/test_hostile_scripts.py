"""Issue 10: a user's hostile Lua script in the ConfigMap cannot stop the controller.

Six Rollouts route through Ingress class types whose scripts (ConfigMap kruise-rollout-configuration)
are hostile — a backtracking `string.find` (one C call: 60 characters took 115 s in-process), an
infinite loop, a memory bomb, a cyclic result, a non-UTF-8 result and `string.dump` — beside one
Rollout with a plain nginx Ingress, all released at once under a controller of the test's own. While
the scripts fail: /healthz keeps answering, the nginx Rollout walks to its first pause, and each hostile
Rollout keeps all traffic on the stable version and says which script failed and why, in status.message
and a Warning Event. Then SIGTERM stops the controller by itself, its script workers go with it, and a
controller started again while the scripts are still in the ConfigMap becomes ready. Figures (probe
latency, controller memory) are printed, not asserted: the bounds asserted are generous on purpose.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    canary_ingress_annotations,
    canary_rollout,
    ingress,
    service,
    set_lua_script,
    warning_events,
)
from tests.integration.waiting import eventually

STEPS = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]
CONFIGMAP = "(ConfigMap kruise-rollout-configuration)"

# (case, script, what status.message must say after "failed: ").
HOSTILE = [
    (
        "backtracking",
        "return string.find(string.rep('a', 60), string.rep('a-', 30) .. 'b')",
        "time limit exceeded (5 s wall clock; its process was killed)",
    ),
    ("loop", "while true do end", "time limit exceeded"),
    (
        "memory",
        # 1 MB strings kept forever: the Lua limit stops it within a few dozen allocations.
        "local p = {} for i = 1, 1e6 do p[i] = string.rep('x', 2^20) .. i end return {}",
        "not enough memory",
    ),
    (
        "cycle",
        "local t = {} t.self = t return t",
        "the result cannot be written as JSON: result.self is a table that contains itself (a cycle)",
    ),
    (
        "utf8",
        r"return {['example.com/x'] = '\255\254'}",
        "the result cannot be written as JSON: result.example.com/x is a string that is not valid UTF-8",
    ),
    ("dump", "return {x = string.dump(function() end)}", "attempt to call a nil value (field 'dump')"),
]


@dataclasses.dataclass
class Probes:
    """/healthz polled from a thread every 0.25 s while the scripts fail."""

    latencies: list[float] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for pid {pid}")


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.fixture
def own_controller(
    controller_process: ControllerProcess, kubeconfig: Path, tmp_path: Path
) -> Iterator[ControllerProcess]:
    """A controller of this test's own (the session's is stopped so that this one leads)."""
    controller_process.stop()
    proc = ControllerProcess(kubeconfig, tmp_path, identity=f"hostile-{uuid.uuid4().hex[:6]}")
    proc.start()
    try:
        proc.wait_ready()
        # a new port: admission reaches it only once it leads and re-points the webhooks
        proc.wait_installed()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def hostile_keys(kube: KubeClient) -> AsyncIterator[dict[str, str]]:
    """Class type per case, each with its script in the ConfigMap; removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    classes = {case: f"hostile-{case}-{suffix}" for case, _, _ in HOSTILE}
    for case, source, _ in HOSTILE:
        await set_lua_script(kube, f"lua.traffic.routing.ingress.{classes[case]}", source)
    try:
        yield classes
    finally:
        for class_type in classes.values():
            await set_lua_script(kube, f"lua.traffic.routing.ingress.{class_type}", None)


async def _namespace(kube: KubeClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def _release(kube: KubeClient, namespace: str, class_type: str) -> Release:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    obj = ingress(namespace)
    await kube.create(r.INGRESS, obj)
    await rel.given_deployment(replicas=2)
    routing = {"ingress": {"name": "web", "classType": class_type}, "gracePeriodSeconds": 1}
    await rel.given_rollout(canary_rollout(routing, STEPS))
    await rel.when_image(V2)
    return rel


async def _poll_health(proc: ControllerProcess, probes: Probes, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        # 10 s: far above a healthy answer, far below the minutes a runaway script used to block for.
        status = await asyncio.to_thread(_probe, proc, 10.0)
        took = time.monotonic() - started
        probes.latencies.append(took)
        if status != 200:
            probes.failures.append(f"/healthz answered {status} after {took:.1f} s")
        await asyncio.sleep(0.25)


def _probe(proc: ControllerProcess, timeout: float) -> int | None:
    import urllib.request

    try:
        url = f"http://127.0.0.1:{proc.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except OSError:
        return None


async def _blocked_with_reason(kube: KubeClient, rel: Release, key: str, expected: str) -> Obj:
    prefix = f"Lua script {key} {CONFIGMAP} failed: "

    def says_why(ro: Obj) -> bool:
        message = ro.get("status", {}).get("message", "")
        return prefix in message and expected in message.split(prefix, 1)[1]

    ro = await eventually(rel.rollout, says_why, what=f"status.message: {prefix}{expected}", timeout=120)
    events = await eventually(
        lambda: warning_events(kube, rel.namespace),
        lambda found: any(prefix in e.get("message", "") for e in found),
        what=f"a Warning Event naming {key}",
    )
    assert any(expected in e["message"] for e in events), [e["message"] for e in events]
    assert await kube.get_or_none(r.INGRESS, "web-canary", rel.namespace) is None, "no canary weight"
    assert await rel.pod_images() == {V1: 2}, "the stable version keeps serving everything"
    return ro


async def _gone(workers: set[int]) -> None:
    await eventually(
        lambda: asyncio.sleep(0, result=[w for w in workers if _alive(w)]),
        lambda alive: alive == [],
        what=f"the script workers {sorted(workers)} gone with the controller",
        timeout=30,
    )


async def test_hostile_scripts_cannot_stop_the_controller(
    kube: KubeClient,
    own_controller: ControllerProcess,
    hostile_keys: dict[str, str],
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    assert own_controller.proc is not None
    pid = own_controller.proc.pid
    rss_before = _rss_mb(pid)
    namespaces = [await _namespace(kube) for _ in range(len(HOSTILE) + 1)]
    probes, stop = Probes(), asyncio.Event()
    poller = asyncio.create_task(_poll_health(own_controller, probes, stop))
    try:
        good = await _release(kube, namespaces[0], "nginx")
        hostile = {
            case: await _release(kube, namespaces[index + 1], hostile_keys[case])
            for index, (case, _, _) in enumerate(HOSTILE)
        }
        # Other Rollouts keep releasing while the hostile scripts fail.
        await good.then_paused_at(1)
        await canary_ingress_annotations(kube, namespaces[0], {"canary": "true", "canary-weight": "20"})
        for case, _, expected in HOSTILE:
            key = f"lua.traffic.routing.ingress.{hostile_keys[case]}"
            ro = await _blocked_with_reason(kube, hostile[case], key, expected)
            print(f"{case}: {ro['status']['message']}")
        workers = _children(pid)
    finally:
        stop.set()
        await poller
    rss_after, rss_peak = _rss_mb(pid), _rss_mb(pid, "VmHWM")
    print(
        f"/healthz: {len(probes.latencies)} probes, slowest {max(probes.latencies):.2f} s, "
        f"median {sorted(probes.latencies)[len(probes.latencies) // 2]:.3f} s; "
        f"controller RSS {rss_before:.0f} MB -> {rss_after:.0f} MB (peak {rss_peak:.0f} MB); "
        f"script workers now {sorted(workers)}"
    )
    assert probes.failures == [], probes.failures
    assert rss_peak < 600, "the memory bomb ran in a worker with its own limit, not in the controller"

    started = time.monotonic()
    assert own_controller.stop(timeout=60) == 0, own_controller.log_tail()
    print(f"SIGTERM: the controller exited 0 after {time.monotonic() - started:.1f} s")
    await _gone(workers)

    # Started again with the hostile scripts still in the ConfigMap, it comes up, answers, and stops on
    # SIGTERM even while a worker is running one of them (a worker exists only once a script ran).
    again = ControllerProcess(kubeconfig, tmp_path, identity=f"hostile-again-{uuid.uuid4().hex[:6]}")
    again.start()
    try:
        again.wait_ready(timeout=120)
        assert again.proc is not None
        restarted = again.proc.pid
        workers = await eventually(
            lambda: asyncio.sleep(0, result=_children(restarted)),
            bool,
            what="the restarted controller running the scripts again",
        )
        assert await asyncio.to_thread(_probe, again, 10.0) == 200
        started = time.monotonic()
    finally:
        code = again.stop(timeout=60)
    print(f"SIGTERM with scripts running: exit code {code} after {time.monotonic() - started:.1f} s")
    assert code == 0, again.log_tail()
    await _gone(workers)
    for namespace in namespaces:
        await kube.delete(r.NAMESPACE, namespace)
