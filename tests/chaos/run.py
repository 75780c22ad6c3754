"""A whole chaos run: lanes, the controller behind the cutting proxy, faults, the sampler, final checks.

Order: Gateway API CRDs (the controller watches HTTPRoutes only if they exist when it starts), the
proxy and the controller's kubeconfig through it, the controller, every lane's objects, then releases
and faults together until the release budget is spent, then one last check of every lane at rest.
Everything started here is stopped here, also after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from graylane.cluster.thirdparty import fetch_gateway_api_crds
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.webhook.install import wait_established
from tests.chaos import checks
from tests.chaos.apiserver import ApiServerRestarter
from tests.chaos.cluster import ChaosCluster
from tests.chaos.faults import FaultInjector
from tests.chaos.lane import Budget, Lane
from tests.chaos.observer import Observer, Snapshot
from tests.chaos.plans import Provider, draw_lane
from tests.chaos.proxy import CutProxy
from tests.chaos.report import Report
from tests.chaos.settings import ChaosSettings
from tests.integration.controller_fixtures import ControllerProcess

__all__ = ["ChaosRun", "sample"]

IDENTITY = "chaos"
FINAL_TIMEOUT = 90.0


def sample(snap: Snapshot, lanes: Sequence[Lane], report: Report) -> None:
    """The sampler, on every snapshot: duplicate canary Deployments, and batches with too many new pods."""
    report.samples += 1
    everything = [d for deps in snap.deployments.values() for d in deps]
    for ns, uid, names in checks.duplicate_canaries(everything):
        if (ns, uid) not in report.duplicates:
            report.duplicates[(ns, uid)] = f"{ns}: {names}, all owned by BatchRelease {uid}"
            report.note(f"DUPLICATE canary Deployments in {ns}: {names}")
    for lane in lanes:
        image = lane.stepping
        if image is None:
            continue
        name, ns = lane.name, lane.ns
        problem, surplus = checks.over_ready(
            lane.spec,
            image,
            snap.pods.get(ns, []),
            snap.replica_sets.get(ns, []),
            snap.batch_release(ns, name),
            snap.rollout(ns, name),
        )
        if problem is not None and lane.tag() not in report.over_ready:
            report.over_ready[lane.tag()] = f"{lane.tag()} ({lane.spec.describe()}): {problem}"
            report.note(f"OVER-READY {report.over_ready[lane.tag()]}")
        if surplus is not None and lane.tag() not in report.surplus:
            report.surplus[lane.tag()] = f"{lane.tag()} ({lane.spec.describe()}): {surplus}"
            report.note(f"surplus pods (ReplicaSet controller) {report.surplus[lane.tag()]}")


def proxied_kubeconfig(source: Path, target: Path, port: int) -> None:
    """Write `source` with every cluster's server moved to 127.0.0.1:`port` (TLS still checks the API
    server's certificate: it is issued for 127.0.0.1, and the proxy only forwards bytes)."""
    config = yaml.safe_load(source.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    target.write_text(yaml.safe_dump(config))


def api_server_address(kubeconfig: Path) -> tuple[str, int]:
    config = yaml.safe_load(kubeconfig.read_text())
    url = urlsplit(config["clusters"][0]["cluster"]["server"])
    return url.hostname or "", url.port or 443


class ChaosRun:
    def __init__(
        self, settings: ChaosSettings, cluster: ChaosCluster, kube: KubeClient, workdir: Path
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.kube = kube
        self.workdir = workdir
        self.report = Report(settings.seed, settings.describe())
        # Namespaces unique to this process, so a reused cluster never mixes two runs' objects.
        prefix = f"chaos-{os.getpid() % 100000}"
        self.specs = [
            draw_lane(random.Random(f"{settings.seed}/lane/{i}"), i, f"{prefix}-{i:02d}")
            for i in range(settings.lanes)
        ]

    async def go(self) -> Report:
        self.report.note(f"chaos run: {self.settings.describe()}")
        if any(spec.provider == Provider.GATEWAY for spec in self.specs):
            await self._gateway_api_crds()
        host, port = api_server_address(self.cluster.kubeconfig_path)
        with CutProxy(host, port) as proxy:
            kubeconfig = self.workdir / "controller-kubeconfig.yaml"
            proxied_kubeconfig(self.cluster.kubeconfig_path, kubeconfig, proxy.port)
            controller = ControllerProcess(kubeconfig, self.workdir, identity=IDENTITY)
            self.report.note(f"controller log: {controller.log_path}")
            try:
                controller.start()
                await asyncio.to_thread(controller.wait_ready, 120)
                await self._releases(controller, proxy)
            finally:
                await asyncio.to_thread(controller.stop)
            self.report.note(f"proxy: {proxy.stats}")
        return self.report

    async def _releases(self, controller: ControllerProcess, proxy: CutProxy) -> None:
        lanes: list[Lane] = []
        observer = Observer(
            self.kube, [s.namespace for s in self.specs], lambda snap: sample(snap, lanes, self.report)
        )
        lanes += [
            Lane(spec, self.kube, observer, self.report, random.Random(f"{self.settings.seed}/releases/{i}"))
            for i, spec in enumerate(self.specs)
        ]
        stop_observer, stop_faults = asyncio.Event(), asyncio.Event()
        watching = asyncio.create_task(observer.run(stop_observer))
        try:
            await asyncio.gather(*(lane.setup() for lane in lanes))
            self.report.note(f"{len(lanes)} lanes set up: " + "; ".join(s.describe() for s in self.specs))
            faults = FaultInjector(
                self.settings.faults,
                random.Random(f"{self.settings.seed}/faults"),
                controller,
                proxy,
                ApiServerRestarter(self.cluster),
                self.report,
            )
            injecting = asyncio.create_task(faults.run(stop_faults))
            budget = Budget(self.settings.releases, time.monotonic() + self.settings.budget)
            await asyncio.gather(*(lane.run(budget, self.settings.kinds) for lane in lanes))
            stop_faults.set()
            await injecting
            if budget.releases and not any(lane.retired for lane in lanes):
                # Throughput is the machine's, not graylane's: a loaded machine starts fewer releases
                # in the budget (128 of 200 beside a CPU hog), and each of them was still checked.
                self.report.note(
                    f"the budget of {self.settings.budget:.0f}s ran out with {budget.releases} of "
                    f"{self.settings.releases} releases not started"
                )
            await asyncio.gather(*(lane.final_check(FINAL_TIMEOUT) for lane in lanes if not lane.retired))
        finally:
            stop_faults.set()
            stop_observer.set()
            with contextlib.suppress(Exception):
                await watching
            self.report.note(
                f"snapshots skipped: {observer.failed} with a failed LIST, "
                f"{observer.inconsistent} with a LIST older than one sent before it"
            )

    async def _gateway_api_crds(self) -> None:
        names = []
        for path in await asyncio.to_thread(fetch_gateway_api_crds):
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    try:
                        await self.kube.create(r.CRD, doc)
                    except ApiError as err:
                        if not err.already_exists:
                            raise
                    names.append(doc["metadata"]["name"])
        async with asyncio.timeout(60):
            await wait_established(self.kube, names)
