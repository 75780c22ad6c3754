"""The Manager: runs controllers' informers, work queues and workers behind leader election.

It also owns what every reconcile shares: the expectations of the keys' own writes (expectations.py,
met by every informer it creates), the write primitives bound to a key (`writer`), and the small thread
pool the pure plans run in (runtime/loop.py).

Order of life: probes and metrics start; every informer starts (standbys keep warm caches, so a
takeover does not begin with 10,000 cold reads); the leader elector campaigns; once leading, the leader
hooks run (e.g. pointing the webhook configurations at this process: only the leader owns them), and
once every informer has synced, each controller gets `workers` tasks pulling keys from its queue (an
informer registered later, for a kind whose CRD appeared meanwhile, starts at once). A reconcile
returns seconds until it wants to run again (None: only on the next event); raising an exception
logs it and retries the key with per-key exponential back-off (a `Backoff` error, e.g. a refused
write, is logged as one line instead of a traceback).

Losing the lease stops the workers and makes `run()` return 1, so the supervisor restarts the process
(client-go's choice: a fresh start is the only safe way to drop everything done as leader).
SIGTERM/SIGINT stop the workers, release the lease, close the client and make `run()` return 0.

This module must not know any resource's meaning: controllers map objects to keys themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from graylane.kube.client import KubeClient, Obj
from graylane.kube.events import EventRecorder
from graylane.kube.informer import EventType, Informer, object_key, strip_noise
from graylane.kube.leader import LeaderElectionConfig, LeaderElector, default_identity, lease_name
from graylane.kube.observability import ObservabilityServer
from graylane.kube.resources import Resource
from graylane.kube.workqueue import Clock, QueueMetrics, ShutDown, SystemClock, WorkQueue
from graylane.runtime.errors import Backoff
from graylane.runtime.expectations import DEFAULT_TIMEOUT, Expectations
from graylane.runtime.predicates import Changed
from graylane.runtime.writer import Writer

__all__ = ["Controller", "Manager", "ManagerOptions", "Named", "own_key"]

log = logging.getLogger(__name__)
KeyFunc = Callable[[Obj], Iterable[str]]
LeaderHook = Callable[[], Awaitable[None]]
LEADER_HOOK_RETRY = (0.5, 10.0)  # first and longest wait between attempts of a failing leader hook


class Named(Protocol):
    """Whatever owns a work queue: watches enqueue on the queue of this name."""

    @property
    def name(self) -> str: ...


class Controller(Protocol):
    """What a controller provides; `setup` registers informers and maps their objects to keys."""

    @property
    def name(self) -> str: ...

    @property
    def workers(self) -> int: ...

    def setup(self, manager: Manager) -> None: ...

    async def reconcile(self, key: str) -> float | None: ...


def own_key(obj: Obj) -> list[str]:
    """The default key mapping: an object reconciles itself, as `namespace/name`."""
    key = object_key(obj)
    return [key] if key else []


def _filtered(changed: Changed | None, kind: EventType, old: Obj | None, new: Obj | None) -> bool:
    """An update the watch's filter says cannot matter (adds and deletes always do)."""
    if changed is None or kind is not EventType.MODIFIED or old is None or new is None:
        return False
    return not changed(old, new)


def _pod_namespace() -> str:
    return os.environ.get("POD_NAMESPACE") or "default"


@dataclasses.dataclass(frozen=True)
class ManagerOptions:
    leader_election: bool = True
    kruise_compat: bool = False  # share kruise-rollout's lease so the two never lead together
    lease_name: str | None = None  # None: graylane-controller (or Kruise's ID in kruise-compat mode)
    lease_namespace: str = dataclasses.field(default_factory=_pod_namespace)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = dataclasses.field(default_factory=default_identity)
    probe_host: str = "127.0.0.1"
    probe_port: int = 8081  # Kruise's health port; 0 picks a free one
    shutdown_timeout: float = 30.0  # how long in-flight reconciles may finish before being cancelled
    handle_signals: bool = True
    expectation_timeout: float = DEFAULT_TIMEOUT  # how long a key waits to see its own writes cached
    # Pure plans run here, off the event loop; a few threads suffice (they mostly hold the GIL, and a
    # plan waiting on a user's script must only not block the loop).
    plan_threads: int = 4

    def election(self) -> LeaderElectionConfig:
        return LeaderElectionConfig(
            namespace=self.lease_namespace,
            name=self.lease_name or lease_name(self.kruise_compat),
            identity=self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
        )


class _Metrics:
    """controller-runtime's reconcile metric names, so existing dashboards keep working."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            "controller_runtime_reconcile",
            "Reconciles by result",
            ["controller", "result"],
            registry=registry,
        )
        self.errors = Counter(
            "controller_runtime_reconcile_errors", "Reconciles that raised", ["controller"], registry=registry
        )
        self.duration = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Reconcile duration",
            ["controller"],
            registry=registry,
        )
        self.active = Gauge(
            "controller_runtime_active_workers", "Workers reconciling now", ["controller"], registry=registry
        )
        self.objects = Gauge(
            "graylane_informer_objects",
            "Objects in an informer's cache",
            ["resource", "namespace", "selector"],
            registry=registry,
        )
        self.leader = Gauge(
            "leader_election_master_status", "1 while this process leads", ["name"], registry=registry
        )
        self.queues = QueueMetrics(registry)


class Manager:
    def __init__(
        self,
        client: KubeClient,
        options: ManagerOptions | None = None,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
        own_client: bool = True,
        lease_client: KubeClient | None = None,
    ) -> None:
        self.client = client
        # Renewals on a client of their own never queue behind the workers' requests (BENCHMARKS.md cause 4).
        self.lease_client = lease_client or client
        self.options = options or ManagerOptions()
        self.registry = registry or CollectorRegistry()
        self.recorder = EventRecorder(client)
        self._clock = clock or SystemClock()
        self.expectations = Expectations(
            self._clock, self._expectations_met, timeout=self.options.expectation_timeout
        )
        self.plan_pool = ThreadPoolExecutor(self.options.plan_threads, thread_name_prefix="plan")
        self._own_client = own_client
        self._metrics = _Metrics(self.registry)
        self._controllers: dict[str, Controller] = {}
        self._leader_hooks: list[LeaderHook] = []
        self._queues: dict[str, WorkQueue] = {}
        self._informers: dict[tuple[Resource, str | None, str | None], Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []  # informers and the elector
        self._workers: list[asyncio.Task[None]] = []
        self._server = ObservabilityServer(
            self.registry, self.ready, host=self.options.probe_host, port=self.options.probe_port
        )
        # The elector keeps real time even when a test fakes the queue clock: lease expiry is wall-clock.
        self._elector = LeaderElector(
            self.lease_client,
            self.options.election(),
            on_started_leading=self._started_leading,
            on_stopped_leading=self._stopped_leading,
        )
        self._leading = asyncio.Event()
        self._halt = asyncio.Event()  # shutdown requested or leadership lost
        self._shutdown_requested = False
        self._lost_lease = False
        self._running = False
        self._informing = False  # informers run: one added from now on starts at once
        self._required: list[Informer] = []  # the informers readiness waits for: those of start-up

    # -- registration (before run) ----------------------------------------------------------

    def add(self, controller: Controller) -> None:
        if self._running:
            raise RuntimeError("controllers must be added before run()")
        if controller.name in self._controllers:
            raise ValueError(f"controller {controller.name!r} added twice")
        self._controllers[controller.name] = controller
        self._queues[controller.name] = WorkQueue(
            controller.name, clock=self._clock, metrics=self._metrics.queues
        )
        controller.setup(self)

    def add_leader_hook(self, hook: LeaderHook) -> None:
        """Run `hook` each time this process becomes the leader, before its workers start; a hook that
        raises is retried with back-off until it succeeds or the manager stops."""
        if self._running:
            raise RuntimeError("leader hooks must be added before run()")
        self._leader_hooks.append(hook)

    def informer(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        transform: Callable[[Obj], Obj] = strip_noise,
    ) -> Informer:
        """The shared informer for this resource/namespace/selector (the first caller's transform wins)."""
        key = (resource, namespace, label_selector)
        if key not in self._informers:
            informer = Informer(
                self.client, resource, namespace=namespace, label_selector=label_selector, transform=transform
            )
            labels = self._metrics.objects.labels(resource.plural, namespace or "", label_selector or "")
            labels.set_function(informer.__len__)
            self.expectations.track(informer)
            self._informers[key] = informer
            if self._informing:  # a kind that appeared after start-up (its CRD was just installed)
                log.info("informer added", extra={"informer": repr(informer)})
                self._spawn(informer.run(), f"informer {informer!r}")
        return self._informers[key]

    def informers_for(self, resource: Resource, namespace: str | None) -> list[Informer]:
        """The informers that cache objects of `resource` in `namespace` (any version of the kind)."""
        return [
            informer
            for (res, ns, selector), informer in self._informers.items()
            if (res.group, res.plural) == (resource.group, resource.plural)
            and selector is None
            and (ns is None or ns == namespace)
        ]

    def writer(self, owner: Hashable) -> Writer:
        """Write primitives for one reconcile of `owner`, registering its expectations."""
        return Writer(self.client, self.expectations, self.informers_for, owner)

    @property
    def clock(self) -> Clock:
        return self._clock

    def queue(self, controller_name: str) -> WorkQueue:
        return self._queues[controller_name]

    def watch(
        self,
        controller: Named,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        keys: KeyFunc = own_key,
        changed: Changed | None = None,
    ) -> Informer:
        """Enqueue `keys(obj)` on `controller`'s queue for the old and new object of every event; with
        `changed`, an update only when `changed(old, new)` (runtime/predicates.py)."""
        informer = self.informer(resource, namespace=namespace, label_selector=label_selector)
        queue = self.queue(controller.name)

        def enqueue(kind: EventType, old: Obj | None, new: Obj | None) -> None:
            if _filtered(changed, kind, old, new):
                return
            for obj in (old, new):
                for key in keys(obj) if obj is not None else ():
                    queue.add(key)

        informer.on_event(enqueue)
        return informer

    # -- state ------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Every start-up informer has synced (one added later does not make a running process unready)."""
        return all(informer.has_synced.is_set() for informer in self._required or self._informers.values())

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    @property
    def port(self) -> int:
        return self._server.port

    def request_shutdown(self) -> None:
        if not self._shutdown_requested:
            log.info("shutdown requested")
        self._shutdown_requested = True
        self._halt.set()

    def _expectations_met(self, owner: Hashable) -> None:
        """A key's own writes are all cached now: decide again (owners are (controller, key))."""
        if isinstance(owner, tuple) and len(owner) == 2 and owner[0] in self._queues:
            self._queues[owner[0]].add(str(owner[1]))

    # -- running ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def caches(self) -> AsyncIterator[None]:
        """Run only the informers (no election, workers or probes) until synced, then until exit.

        For tools and tests that drive `reconcile` themselves.
        """
        self._running = True
        self._start_informers()
        try:
            await self._synced()
            yield
        finally:
            for task in reversed(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.plan_pool.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT or `request_shutdown()` (returns 0) or until the lease is lost (1)."""
        self._running = True
        remove_signals = self._install_signals()
        try:
            await self._start()
            if (
                await self._unless_halted(self._leading.wait())
                and await self._unless_halted(self._run_leader_hooks())
                and await self._unless_halted(self._synced())
            ):
                self._start_workers()
                await self._halt.wait()
        finally:
            await self._stop()
            remove_signals()
        return 1 if self._lost_lease else 0

    async def _start(self) -> None:
        await self._server.start()
        self._start_informers()
        if self.options.leader_election:
            self._spawn(self._elector.run(), "leader elector")
        else:
            self._leading.set()

    async def _run_leader_hooks(self) -> None:
        for hook in self._leader_hooks:
            wait, longest = LEADER_HOOK_RETRY
            while True:
                try:
                    await hook()
                    break
                except Exception:  # e.g. the API server is briefly away: a leader must finish its hooks
                    log.exception("leader hook failed, retrying", extra={"in_seconds": wait})
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, longest)

    def _start_informers(self) -> None:
        self._required = list(self._informers.values())
        for informer in self._required:
            self._spawn(informer.run(), f"informer {informer!r}")
        self._informing = True

    async def _synced(self) -> None:
        await asyncio.gather(*(informer.has_synced.wait() for informer in self._required))
        log.info("caches synced", extra={"informers": len(self._informers)})

    def _start_workers(self) -> None:
        for name, controller in self._controllers.items():
            for i in range(max(controller.workers, 1)):
                task = asyncio.create_task(self._worker(controller, self._queues[name]), name=f"{name}-{i}")
                self._workers.append(task)
        log.info("workers started", extra={"workers": len(self._workers)})

    async def _worker(self, controller: Controller, queue: WorkQueue) -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                await self._reconcile(controller, queue, key)
            finally:
                queue.done(key)

    async def _reconcile(self, controller: Controller, queue: WorkQueue, key: str) -> None:
        name = controller.name
        started = self._clock.monotonic()
        self._metrics.active.labels(name).inc()
        try:
            requeue = await controller.reconcile(key)
        except Backoff as err:
            log.warning("reconcile failed", extra={"controller": name, "key": key, "error": str(err)})
            self._metrics.errors.labels(name).inc()
            self._metrics.total.labels(name, "error").inc()
            queue.add_rate_limited(key)
            return
        except Exception:
            log.exception(
                "reconcile failed", extra={"controller": name, "key": key, "retries": queue.num_requeues(key)}
            )
            self._metrics.errors.labels(name).inc()
            self._metrics.total.labels(name, "error").inc()
            queue.add_rate_limited(key)
            return
        finally:
            self._metrics.active.labels(name).dec()
            self._metrics.duration.labels(name).observe(self._clock.monotonic() - started)
        queue.forget(key)
        self._metrics.total.labels(name, "success" if requeue is None else "requeue_after").inc()
        if requeue is not None:
            queue.add_after(key, requeue)

    async def _stop(self) -> None:
        """Workers first (nothing may write once we might not lead), then the lease, informers, server."""
        self._halt.set()
        await self._stop_workers()
        for task in reversed(self._tasks):  # the elector was spawned last: it releases the lease first
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._server.stop()
        self.plan_pool.shutdown(wait=False, cancel_futures=True)
        if self._own_client:
            await self.client.close()
            if self.lease_client is not self.client:
                await self.lease_client.close()
        log.info("manager stopped", extra={"lost_lease": self._lost_lease})

    async def _stop_workers(self) -> None:
        for queue in self._queues.values():
            queue.shutdown()
        if not self._workers:
            return
        _, pending = await asyncio.wait(self._workers, timeout=self.options.shutdown_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    # -- helpers ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _unless_halted(self, aw: Awaitable[object]) -> bool:
        """Await `aw` unless a halt comes first; True when `aw` finished."""
        work = asyncio.ensure_future(aw)
        halt = asyncio.ensure_future(self._halt.wait())
        try:
            await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, halt):
                task.cancel()
            await asyncio.gather(work, halt, return_exceptions=True)
        return work.done() and not work.cancelled() and not self._halt.is_set()

    def _started_leading(self) -> None:
        self._metrics.leader.labels(self._elector.config.name).set(1)
        self._leading.set()

    def _stopped_leading(self) -> None:
        self._metrics.leader.labels(self._elector.config.name).set(0)
        self._leading.clear()
        if not self._shutdown_requested:
            log.error("leadership lost, stopping", extra={"lease": self._elector.config.name})
            self._lost_lease = True
            self._halt.set()

    def _install_signals(self) -> Callable[[], None]:
        if not self.options.handle_signals:
            return lambda: None
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.request_shutdown)

        def remove() -> None:
            for sig in signals:
                loop.remove_signal_handler(sig)

        return remove
