"""Rest mode: N Rollouts + Deployments (0 replicas: no pods) in the caches, never released; RSS and idleness.

Phases: `start` (caches empty) -> `create` (objects created; every Rollout Healthy, its Deployment
labelled) -> `settle` (RSS of the controller that watched the creation) -> with `restart`: `restart`
(the controller is stopped and started again, so its caches are filled by one LIST each, as after a
deployment or a leader change) -> `synced` (reconciles have stopped; RSS after a cold sync) -> `soak`
(idle for `soak` seconds: RSS slope, and every request graylane sends while nothing changes).

What it must not do: release anything, or format results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from graylane.bench import stats
from graylane.bench import workload as w
from graylane.bench.session import BenchSession, wait_until
from graylane.bench.tracker import Tracker
from graylane.kube import resources as r

__all__ = ["RestOptions", "run_rest"]

IMAGE = "bench:v1"
QUIET_FOR = 10.0  # seconds without a reconcile that count as "synced and idle"


@dataclasses.dataclass(frozen=True)
class RestOptions:
    count: int
    per_namespace: int = 10
    soak: float = 600.0
    restart: bool = True
    settle: float = 30.0
    phase_timeout: float = 3600.0


async def run_rest(session: BenchSession, opts: RestOptions, say: Callable[[str], None]) -> dict[str, Any]:
    apps = w.layout(opts.count, opts.per_namespace)
    tracker = Tracker(apps, style=w.Style.CANARY, replicas=0, new_image="never-released")
    outcome: dict[str, Any] = {"completed": False, "stopped_in": None}
    # The controller installs the CRDs (and serves the Rollout webhook): it starts first.
    outcome["controller_ready_s"] = await session.start_controller(timeout=300)
    await session.watch(r.ROLLOUT, lambda obj: tracker.on_rollout(obj, time.monotonic()))
    await session.watch(r.DEPLOYMENT, lambda obj: tracker.on_deployment(obj, time.monotonic()))
    await session.mark("start")
    await session.mark("create")
    session.start_profile()  # the controller taking on N new Rollouts
    namespaces = sorted({a.namespace for a in apps})
    say(f"creating {len(apps)} Rollouts + Deployments (0 replicas) in {len(namespaces)} namespaces")
    await session.each(namespaces, lambda ns: session.create(r.NAMESPACE, w.namespace(ns)))
    await session.each(apps, lambda app: _create_app(session, app))
    created = time.monotonic()

    def progress() -> str:
        sample = session.controller_sample()
        rss = f"controller RSS {sample.rss / 1e6:.0f} MB" if sample else "controller gone"
        return f"{tracker.count('set_up')}/{len(apps)} Healthy and labelled; {rss}"

    def all_set_up() -> bool:
        return tracker.count("set_up") == len(apps)

    if not await wait_until(all_set_up, opts.phase_timeout, progress, say, interrupted=session.interrupted):
        outcome["stopped_in"] = "create"
        return outcome
    outcome["set_up_s"] = time.monotonic() - created
    await session.stop_profile()
    await session.mark("settle")
    await asyncio.sleep(opts.settle)
    soak_phase = "soak"
    if opts.restart:
        await session.mark("restart")
        say("restarting the controller: its caches are filled from one LIST per resource")
        await session.stop_controller()
        outcome["restart_ready_s"] = await session.start_controller(timeout=opts.phase_timeout)
        outcome["restart_quiet_s"] = await _wait_quiet(session, opts.phase_timeout)
        await session.mark("synced")
        await asyncio.sleep(QUIET_FOR)
    await session.mark(soak_phase)
    say(f"idle soak for {opts.soak:.0f}s")
    await _soak(session, opts.soak, say)
    outcome["completed"] = session.controller.alive()
    return outcome


async def _create_app(session: BenchSession, app: w.App) -> None:
    await session.create(r.DEPLOYMENT, w.deployment(app, 0, IMAGE))
    await session.create(r.ROLLOUT, w.rollout(app, w.Style.CANARY))


async def _reconciles(session: BenchSession) -> int:
    text = await session.controller.metrics()
    return sum(stats.parse_counter(text, "controller_runtime_reconcile_total", ("controller",)).values())


async def _wait_quiet(session: BenchSession, timeout: float) -> float:
    """Seconds until the reconcile counter has not moved for QUIET_FOR seconds."""
    started = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        now_count = await _reconciles(session)
        if now_count != last:
            last, since = now_count, time.monotonic()
        elif time.monotonic() - since >= QUIET_FOR:
            return since - started
        await asyncio.sleep(1.0)
    return timeout


async def _soak(session: BenchSession, seconds: float, say: Callable[[str], None]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and session.controller.alive() and not session.interrupted.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.interrupted.wait(), min(60.0, max(0.0, end - time.monotonic())))
        sample = session.controller_sample()
        left = max(0.0, end - time.monotonic())
        if sample is not None:
            say(f"soak: {left:.0f}s left; controller RSS {sample.rss / 1e6:.1f} MB")
