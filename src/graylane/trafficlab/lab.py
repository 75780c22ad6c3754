"""The traffic lab: a network namespace holding a local cluster, graylane, the gateways and the fake app.

`TrafficLab.start()` does, in order (each step bounded, each failure says which step and why):
1. builds what is missing (control plane, Traefik, Contour; Envoy comes with the dev dependencies);
2. creates the namespace `gl-<purpose>-<pid>` (root only) and checks that pod IPs are local in it;
3. starts a local cluster inside it whose pods, once deleted, stay Terminating for `POD_GRACE_SECONDS`
   (kwok removes them at once by default; a real pod keeps serving through a short preStop sleep,
   which is what lets a gateway drop it from its endpoints first);
4. installs the Gateway API v1.6.1 standard CRDs, the IngressClass and the two Gateways;
5. starts `graylane controller`, Traefik, Contour + Envoy and the fake app inside, and waits for each.
`stop()` stops every process by its pid, deletes the cluster and the namespace, also after a failure
half-way through `start()`. Requests are sent from `run()`/`call()` coroutines, which execute on a
thread inside the namespace (see netns.py), and only to 127.0.0.1 there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from graylane.cluster import build
from graylane.cluster import gateways as gwbuild
from graylane.cluster.local import LocalCluster
from graylane.cluster.prometheus import fetch_prometheus
from graylane.cluster.thirdparty import fetch_gateway_api_crds, module_dir
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.trafficlab import gateways as gw
from graylane.trafficlab.netns import NetNamespace, NetnsLoop, require_root
from graylane.trafficlab.procs import Child
from graylane.trafficlab.prometheus import PROMETHEUS_PORT, prometheus_argv
from graylane.webhook.install import wait_established

__all__ = ["LAB_GATEWAY_API_VERSION", "POD_GRACE_SECONDS", "LabError", "TrafficLab"]

T = TypeVar("T")
LAB_GATEWAY_API_VERSION = "v1.6.1"  # Traefik v3.7 watches TLSRoute v1, first served by v1.6
POD_GRACE_SECONDS = 5
APP_PORTS = (8080, 8090)  # the targetPorts the fake app answers on (8090: the KubeVela seed's)
APP_METRICS_PORT = 9100
WEBHOOK_PORT = 9876
HEALTH_PORT = 8081


class LabError(RuntimeError):
    """The lab could not be set up; the message says which step failed and why."""


def kwok_stages(versions: build.Versions, grace_seconds: int) -> list[dict[str, Any]]:
    """kwok's own fast node and pod stages (from its module), with pod deletion delayed by the grace."""
    root = module_dir(f"sigs.k8s.io/kwok@{versions.kwok}") / "kustomize" / "stage"
    files = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
    ]
    stages = [yaml.safe_load((root / f).read_text()) for f in files]
    delete = yaml.safe_load((root / "pod/fast/pod-delete.yaml").read_text())
    delete["spec"]["delay"] = {"durationMilliseconds": grace_seconds * 1000}
    return [*stages, delete]


def contour_crds(versions: gwbuild.GatewayVersions | None = None) -> Path:
    """Contour's own CRDs (HTTPProxy & co., watched even when it serves Gateways), from its module."""
    versions = versions or gwbuild.GatewayVersions()
    module = module_dir(f"{gwbuild.CONTOUR_MODULE}@{versions.contour}")
    return module / "examples" / "contour" / "01-crds.yaml"


class TrafficLab:
    def __init__(
        self,
        purpose: str,
        workdir: Path,
        out: Callable[[str], None] = print,
        *,
        netns_name: str | None = None,
        cluster_name: str | None = None,
        envoy: bool = True,
    ) -> None:
        self.purpose = purpose
        self.workdir = workdir
        self.out = out
        self.netns_name = netns_name
        self.cluster_name = cluster_name  # default: the namespace's name
        self.envoy = envoy  # Contour + Envoy too (the tests); the demo needs Traefik only
        self.ns: NetNamespace | None = None
        self.loop: NetnsLoop | None = None
        self.cluster: LocalCluster | None = None
        self.kube: KubeClient | None = None
        self.children: dict[str, Child] = {}
        self.timings: dict[str, float] = {}

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig.yaml"

    # -- running code inside ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self.loop is not None, "the lab is not started"
        return self.loop.run(coro, timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None, "the lab is not started"
        return await self.loop.call(coro)

    # -- start / stop -----------------------------------------------------------------------------

    def start(self) -> TrafficLab:
        require_root(f"real traffic ({self.purpose})")  # before a build that would be of no use
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._step("build", self._build)
            self._step("network namespace", self._namespace)
            self._step("cluster", self._cluster)
            self._step("gateway objects", lambda: self.run(self._objects(), 180))
            self._step("graylane controller", self._controller)
            self._step("gateways and fake app", self._processes)
        except BaseException:
            self.stop()
            raise
        return self

    def _step(self, name: str, fn: Callable[[], object]) -> None:
        started = time.monotonic()
        self.out(f"traffic lab: {name}")
        try:
            fn()
        except LabError:
            raise
        except Exception as err:
            raise LabError(f"traffic lab step '{name}' failed: {err}") from err
        self.timings[name] = round(time.monotonic() - started, 1)

    def _build(self) -> None:
        build.build_all(build.Versions(), out=self.out)
        gwbuild.build_gateways(out=self.out)
        if self.envoy:
            gwbuild.envoy_binary()

    def _namespace(self) -> None:
        self.ns = NetNamespace.create(self.purpose, name=self.netns_name)
        self.loop = NetnsLoop(self.ns)

    def _cluster(self) -> None:
        assert self.ns is not None
        versions = build.Versions()
        self.cluster = LocalCluster(
            name=self.cluster_name or self.ns.name,
            kubeconfig=self.kubeconfig,
            netns=self.ns.name,
            documents=tuple(kwok_stages(versions, POD_GRACE_SECONDS)),
        )
        self.cluster.up(nodes=3, out=self.out)
        for node in range(3):  # every node's podCIDR must be local before anything is sent there
            self.ns.check_local(f"10.123.{node}.10")
        self.kube = self.run(_client(self.kubeconfig))

    async def _objects(self) -> None:
        assert self.kube is not None
        names = []
        paths = await asyncio.to_thread(fetch_gateway_api_crds, LAB_GATEWAY_API_VERSION)
        paths.append(await asyncio.to_thread(contour_crds))
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    await _create(self.kube, r.CRD, doc)
                    names.append(doc["metadata"]["name"])
        async with asyncio.timeout(90):
            await wait_established(self.kube, names)
        for res, obj in gw.gateway_objects():
            await _create(self.kube, res, obj)

    def _inside(self, argv: list[str]) -> list[str]:
        assert self.ns is not None
        return self.ns.command(argv)

    def _child(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, self._inside(argv), self.workdir / "logs", env)
        self.children[name] = child
        child.start()
        return child

    def _controller(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "graylane.cli.main",
            "controller",
            "--kubeconfig",
            str(self.kubeconfig),
            "--identity",
            "traffic-lab",
            "--webhook-port",
            str(WEBHOOK_PORT),
            "--health-port",
            str(HEALTH_PORT),
        ]
        child = self._child("graylane", argv, {"PYTHONUNBUFFERED": "1"})
        self.run(self._wait_http(child, HEALTH_PORT, "/readyz", 120))

    def _processes(self) -> None:
        bins = gwbuild.gateway_binaries()
        env = {"KUBECONFIG": str(self.kubeconfig)}
        traefik = self._child("traefik", gw.traefik_argv(bins["traefik"], self.workdir), env)
        app_argv = [sys.executable, "-m", "graylane.trafficlab.app", "--kubeconfig", str(self.kubeconfig)]
        ports = [f"--port={port}" for port in APP_PORTS]
        app = self._child("app", [*app_argv, *ports, f"--metrics-port={APP_METRICS_PORT}"])
        self.run(self._wait_http(traefik, gw.TRAEFIK_PING_PORT, "/ping", 60))
        self.run(self._wait_http(app, APP_METRICS_PORT, "/metrics", 90))
        if self.envoy:
            self._contour_and_envoy(bins["contour"])

    def _contour_and_envoy(self, contour_binary: Path) -> None:
        contour = self._child("contour", gw.contour_argv(contour_binary, self.workdir, self.kubeconfig))
        boot = Child(
            "contour-bootstrap",
            self._inside(gw.bootstrap_argv(contour_binary, self.workdir)),
            self.workdir / "logs",
        )
        boot.start()
        if boot.proc is None or boot.proc.wait(60) != 0:
            raise LabError(f"contour bootstrap failed:\n{boot.log_tail()}")
        envoy = self._child("envoy", gw.envoy_argv(gwbuild.envoy_binary(), self.workdir))
        self.run(self._wait_http(contour, gw.CONTOUR_HEALTH_PORT, "/healthz", 60))
        self.run(self._wait_http(envoy, gw.ENVOY_STATS_PORT, "/ready", 60))

    # -- Prometheus, for analysis (started by the tests that need it) --------------------------------

    def start_prometheus(self, name: str = "prometheus", port: int = PROMETHEUS_PORT) -> str:
        """Prometheus inside, scraping the app, Traefik and Envoy (trafficlab/prometheus.py), with an
        empty data directory of its own; its address once it answers /-/ready."""
        binary = fetch_prometheus(out=self.out)
        workdir = self.workdir / f"{name}-{time.monotonic_ns()}"
        child = self._child(name, prometheus_argv(binary, workdir, APP_METRICS_PORT, port))
        self.run(self._wait_http(child, port, "/-/ready", 60))
        return f"http://127.0.0.1:{port}"

    def stop_child(self, name: str) -> None:
        """Stop one process on purpose, by its pid (it no longer counts as one that died)."""
        child = self.children.pop(name, None)
        if child is not None:
            child.stop()

    async def _wait_http(self, child: Child, port: int, path: str, timeout: float) -> None:
        """Until 127.0.0.1:port answers 200 inside the namespace, or the child exits, or `timeout`."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            while time.monotonic() < deadline:
                if (why := child.exited()) is not None:
                    raise LabError(why)
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.3)
        raise LabError(f"{child.name} did not answer {path} within {timeout:.0f}s:\n{child.log_tail()}")

    def stop(self) -> None:
        """Stop everything by pid, delete the cluster and the namespace; collects errors, raises last."""
        errors: list[str] = []
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.kube is not None and self.loop is not None:
            with contextlib.suppress(Exception):
                self.run(self.kube.close(), 10)
        if self.loop is not None:
            self.loop.close()
        if self.cluster is not None:
            try:
                self.cluster.down()
            except Exception as err:
                errors.append(f"cluster down: {err}")
        if self.ns is not None:
            try:
                self.ns.delete()
            except Exception as err:
                errors.append(f"namespace: {err}")
        if errors:
            raise LabError("; ".join(errors))

    # -- leaving it running (the demo) ---------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.workdir / "lab.json"

    def detach(self) -> None:
        """Leave everything running and record what `stop_detached` needs to stop it later."""
        assert self.ns is not None
        assert self.cluster is not None
        state = {
            "netns": self.ns.name,
            "cluster": self.cluster.name,
            "kubeconfig": str(self.kubeconfig),
            "pids": {name: child.pid for name, child in self.children.items() if child.running()},
        }
        self.state_file.write_text(json.dumps(state, indent=2))
        if self.kube is not None:
            with contextlib.suppress(Exception):
                self.run(self.kube.close(), 10)
        if self.loop is not None:
            self.loop.close()

    @staticmethod
    def stop_detached(workdir: Path) -> bool:
        """Stop a lab `detach()` left running: its processes by pid, its cluster, its namespace.
        False when there is none."""
        path = workdir / "lab.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        for pid in state.get("pids", {}).values():
            _stop_pid(int(pid), str(state["kubeconfig"]))
        ns = NetNamespace(str(state["netns"]))
        LocalCluster(name=str(state["cluster"]), kubeconfig=Path(state["kubeconfig"]), netns=ns.name).down()
        ns.delete()
        path.unlink()
        return True

    def __enter__(self) -> TrafficLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def envoy_failures_since(self, since: datetime.datetime) -> list[str]:
        """Envoy's access-log lines of non-2xx answers to requests started at `since` (UTC) or later;
        their response flags say why (NC no cluster, UH no healthy upstream, UF/UC upstream failed)."""
        child = self.children.get("envoy")
        if child is None or not child.log_path.exists():
            return []
        return gw.envoy_failures(child.log_path.read_text(errors="replace"), since)

    def dead_children(self) -> list[str]:
        return [why for c in self.children.values() if (why := c.exited()) is not None]


def _stop_pid(pid: int, marker: str, timeout: float = 15) -> None:
    """SIGTERM (then SIGKILL) `pid` if it is still one of ours: its command line names our kubeconfig or
    our work directory (a recycled pid belongs to someone else and is left alone)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if marker.encode() not in cmdline and str(Path(marker).parent).encode() not in cmdline:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _client(kubeconfig: Path) -> KubeClient:
    return KubeClient.from_kubeconfig(str(kubeconfig), agent="graylane-trafficlab")


async def _create(kube: KubeClient, res: r.Resource, obj: Obj) -> None:
    try:
        await kube.create(res, obj)
    except ApiError as err:
        if not err.already_exists:
            raise
