"""One benchmark run's resources and measurements: cluster, controller process, sampler, phase marks.

What it does: `BenchSession.open()` starts a fresh cluster and the controller process and always tears
both down again; `mark(name)` closes one phase and opens the next, snapshotting the controller's
/metrics, its CPU and RSS, the machine's CPU and the control plane's CPU; the helpers create objects
and send patches with bounded concurrency and bounded retries; `collect_requests()` turns the audit log
into per-phase request counts of graylane and of all clients.

What it must not do: decide what a mode measures (release.py / rest.py do) or format results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import httpx2 as httpx

from graylane.bench import audit
from graylane.bench.cluster import BenchCluster
from graylane.bench.controller import ControllerProcess
from graylane.bench.procstat import MachineCpu, ProcSample, Sampler, machine_cpu, peak_rss, read_sample
from graylane.bench.profile import Profiler
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.informer import Informer
from graylane.kube.resources import Resource

__all__ = ["BENCH_USER_AGENT", "CONTROLLER_USER_AGENT", "BenchSession", "Mark", "SessionOptions"]

T = TypeVar("T")
BENCH_USER_AGENT = "graylane-bench"
CONTROLLER_USER_AGENT = "graylane/"  # KubeClient's User-Agent is graylane/<version>
RETRIES = 6


@dataclasses.dataclass(frozen=True)
class SessionOptions:
    cluster_name: str
    nodes: int
    run_dir: Path
    audit_log: bool = True
    concurrency: int = 32
    sample_interval: float = 0.5
    rollout_workers: int | None = None
    leader_elect: bool = True
    control_plane_qps: int | None = None
    py_spy: str | None = None  # profile the controller with this py-spy (see profile.py)
    keep_audit: bool = False  # copy the API server's audit log into the run directory


@dataclasses.dataclass(frozen=True)
class Mark:
    """The start of phase `name` (the end of the previous one)."""

    name: str
    mono: float
    wall: float
    metrics: str  # the controller's /metrics
    apiserver_metrics: str  # kube-apiserver's /metrics (for apiserver_request_total)
    controller: ProcSample | None
    machine: MachineCpu
    components_cpu: dict[str, float]
    bench_cpu: float  # this process
    loadavg: tuple[float, float, float]  # the machine's, when the phase began


def _bench_client(kubeconfig: Path) -> KubeClient:
    # The audit log tells the benchmark's requests from the controller's by this header.
    return KubeClient.from_kubeconfig(str(kubeconfig), agent=BENCH_USER_AGENT)


class BenchSession:
    def __init__(self, options: SessionOptions, cluster: BenchCluster, kube: KubeClient, kubeconfig: Path):
        self.options = options
        self.cluster = cluster
        self.kube = kube
        self.kubeconfig = kubeconfig
        self.controller = ControllerProcess(
            kubeconfig,
            options.run_dir / "controller.log",
            workers=options.rollout_workers,
            leader_elect=options.leader_elect,
        )
        self.sampler: Sampler | None = None
        self.marks: list[Mark] = []
        self.peak_rss_hwm: int | None = None  # VmHWM per controller process, max over restarts
        self.informers: list[Informer] = []
        self.profiler: Profiler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self.interrupted = asyncio.Event()  # SIGINT/SIGTERM: stop waiting, report what was measured

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, options: SessionOptions, say: Callable[[str], None]) -> AsyncIterator[BenchSession]:
        options.run_dir.mkdir(parents=True, exist_ok=True)
        cluster = BenchCluster(
            name=options.cluster_name,
            kubeconfig=options.run_dir / "kubeconfig.yaml",
            audit_log=options.audit_log,
            control_plane_qps=options.control_plane_qps,
        )
        try:
            kubeconfig = await asyncio.to_thread(cluster.fresh, options.nodes, say)
            async with _bench_client(kubeconfig) as kube:
                session = cls(options, cluster, kube, kubeconfig)
                try:
                    yield session
                finally:
                    await session._close()
        finally:
            if options.keep_audit:
                await asyncio.to_thread(_copy_audit, cluster.audit_path.parent, options.run_dir / "audit")
            say(f"deleting cluster {cluster.name}")
            await asyncio.to_thread(cluster.down)

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.stop_controller()

    # -- the controller -----------------------------------------------------------------------

    async def start_controller(self, timeout: float) -> float:
        """Start it, begin sampling its pid, and return seconds until it answered /readyz."""
        pid = self.controller.start()
        previous = self.sampler
        self.sampler = Sampler(
            pid,
            self.options.sample_interval,
            samples=previous.samples if previous else None,
            lags=previous.lags if previous else None,
        )
        self.sampler.start()
        return await self.controller.wait_ready(timeout)

    def start_profile(self) -> None:
        """Begin py-spy on the running controller (when asked for); `stop_profile` writes the file."""
        if self.options.py_spy is None or not self.controller.alive() or self.profiler is not None:
            return
        run_dir = self.options.run_dir
        self.profiler = Profiler(self.options.py_spy, run_dir / "profile.txt", run_dir / "py-spy.log")
        self.profiler.start(self.controller.pid)

    async def stop_profile(self) -> None:
        if self.profiler is not None:
            await asyncio.to_thread(self.profiler.stop)

    async def stop_controller(self) -> None:
        await self.stop_profile()
        if self.controller.alive():
            hwm = peak_rss(self.controller.pid)
            if hwm is not None:
                self.peak_rss_hwm = max(self.peak_rss_hwm or 0, hwm)
            await asyncio.to_thread(self.controller.stop)
        if self.sampler is not None:
            await self.sampler.stop()

    def controller_sample(self) -> ProcSample | None:
        try:
            return read_sample(self.controller.pid) if self.controller.alive() else None
        except OSError:
            return None

    # -- phases -------------------------------------------------------------------------------

    async def mark(self, name: str) -> Mark:
        components: dict[str, float] = {}
        for component, pid in self.cluster.component_pids().items():
            with contextlib.suppress(OSError):
                components[component] = read_sample(pid).cpu
        mark = Mark(
            name=name,
            mono=time.monotonic(),
            wall=time.time(),
            metrics=await self.controller.metrics() if self.controller.alive() else "",
            apiserver_metrics=await self._apiserver_metrics(),
            controller=self.controller_sample(),
            machine=machine_cpu(),
            components_cpu=components,
            bench_cpu=read_sample(os.getpid()).cpu,
            loadavg=os.getloadavg(),
        )
        if self.controller.alive():
            hwm = peak_rss(self.controller.pid)
            self.peak_rss_hwm = max(self.peak_rss_hwm or 0, hwm or 0)
        self.marks.append(mark)
        return mark

    async def _apiserver_metrics(self) -> str:
        try:
            status, body = await self.kube.fetch(
                "/metrics"
            )  # text, which KubeClient.request would not return
        except (OSError, httpx.TransportError):
            return ""
        return body.decode(errors="replace") if status == 200 else ""

    def windows(self) -> list[audit.Window]:
        """Phase i runs from mark i to mark i+1; the last mark only closes the one before it."""
        return [
            audit.Window(a.name, a.wall, b.wall) for a, b in zip(self.marks, self.marks[1:], strict=False)
        ]

    def collect_requests(self) -> tuple[dict[str, audit.WindowCounts], dict[str, audit.WindowCounts]]:
        """(graylane's, every client's) requests per phase, from the audit log."""
        windows = self.windows()
        # The API server rotates its audit log at 100 MB (lumberjack's default): read every file.
        paths = sorted(self.cluster.audit_path.parent.glob("audit*.log"))
        if not paths:
            return {}, {}
        records: list[audit.AuditRecord] = []
        for path in paths:
            with path.open(errors="replace") as lines:
                records.extend(audit.parse(lines))
        mine = audit.count_by_window(records, CONTROLLER_USER_AGENT, windows)
        everyone = audit.count_by_window(records, "", windows)
        return mine, everyone

    # -- watching -----------------------------------------------------------------------------

    async def watch(
        self, resource: Resource, handler: Callable[[Obj], None], *, label_selector: str | None = None
    ) -> Informer:
        """A running informer over the whole cluster calling `handler(obj)` for every new object."""
        informer = Informer(self.kube, resource, label_selector=label_selector)

        def on_event(_: object, __: Obj | None, new: Obj | None) -> None:
            if new is not None:
                handler(new)

        informer.on_event(on_event)
        self._tasks.append(asyncio.create_task(informer.run(), name=f"bench {resource.plural}"))
        await asyncio.wait_for(informer.has_synced.wait(), timeout=120)
        self.informers.append(informer)
        return informer

    # -- writing ------------------------------------------------------------------------------

    async def each(self, items: Iterable[T], fn: Callable[[T], Awaitable[None]]) -> None:
        """Run `fn` on every item, at most `concurrency` at once; the first failure is raised."""

        async def one(item: T) -> None:
            async with self._semaphore:
                await _retrying(lambda: fn(item))

        await asyncio.gather(*(one(item) for item in items))

    async def create(self, resource: Resource, obj: Obj) -> None:
        try:
            await self.kube.create(resource, obj)
        except ApiError as err:
            if not err.already_exists:  # a retried create whose first attempt went through
                raise


def _copy_audit(source: Path, target: Path) -> None:
    """The audit log files (rotated ones too), kept after the cluster is deleted."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("audit*.log")):
        shutil.copy2(path, target / path.name)


async def _retrying(call: Callable[[], Awaitable[None]]) -> None:
    """Retry transient API failures (429, 5xx, webhook timeouts, dropped connections) a few times."""
    for attempt in range(RETRIES):
        try:
            await call()
            return
        except ApiError as err:
            if err.code < 429 or attempt == RETRIES - 1:
                raise
        except (OSError, httpx.TransportError):
            if attempt == RETRIES - 1:
                raise
        await asyncio.sleep(0.5 * 2**attempt)


async def wait_until(
    done: Callable[[], bool],
    timeout: float,
    progress: Callable[[], str],
    say: Callable[[str], None],
    *,
    interrupted: asyncio.Event,
    every: float = 5.0,
) -> bool:
    """Poll `done` every 0.1 s; print `progress()` every `every` s; False on timeout or interruption."""
    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + every
    while not done():
        now = time.monotonic()
        if now >= deadline or interrupted.is_set():
            reason = "interrupted" if interrupted.is_set() else f"timed out after {timeout:.0f}s"
            say(f"{reason}: {progress()}")
            return False
        if now >= next_report:
            say(progress())
            next_report = now + every
        await asyncio.sleep(0.1)
    return True


def samples_rss(samples: Sequence[ProcSample]) -> list[float]:
    return [s.rss / 1e6 for s in samples]
