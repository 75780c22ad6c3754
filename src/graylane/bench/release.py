"""Release mode: N apps released at once, approved at the first pause, followed to completion.

Phases (each closed by a mark, see session.py): `start` (controller starts, caches empty) -> `create`
(namespaces, Deployments and Rollouts created; all pods available; every Rollout Healthy and its
Deployment labelled) -> `settle` -> `step1` (every image patched; ends when all N are StepPaused at step
1) -> `step2` (every Rollout approved; ends when all N are Healthy with Succeeded=True) -> `idle` (no
writes by anyone; the controller's RSS at rest is read at its end).

What it must not do: format results (results.py) or judge targets (results.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from graylane.bench import workload as w
from graylane.bench.session import BenchSession, wait_until
from graylane.bench.tracker import Tracker
from graylane.kube import resources as r

__all__ = ["ReleaseOptions", "run_release"]

OLD_IMAGE, NEW_IMAGE = "bench:v1", "bench:v2"


@dataclasses.dataclass(frozen=True)
class ReleaseOptions:
    count: int
    per_namespace: int = 1
    replicas: int = 3
    style: w.Style = w.Style.CANARY
    phase_timeout: float = 1800.0
    settle: float = 20.0
    idle: float = 60.0


async def run_release(
    session: BenchSession, opts: ReleaseOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    apps = w.layout(opts.count, opts.per_namespace)
    tracker = Tracker(apps, style=opts.style, replicas=opts.replicas, new_image=NEW_IMAGE)
    outcome: dict[str, Any] = {"completed": False, "stopped_in": None}
    # The controller installs the CRDs (and serves the Rollout webhook): it starts first.
    outcome["controller_ready_s"] = await session.start_controller(timeout=300)
    await session.watch(r.ROLLOUT, lambda obj: tracker.on_rollout(obj, time.monotonic()))
    await session.watch(r.DEPLOYMENT, lambda obj: tracker.on_deployment(obj, time.monotonic()))
    await session.watch(
        r.REPLICASET, lambda obj: tracker.on_replicaset(obj, time.monotonic()), label_selector=w.APP_LABEL
    )
    await session.mark("start")
    await session.mark("create")
    say(f"creating {len(apps)} apps in {len({a.namespace for a in apps})} namespaces")
    await session.each(
        sorted({a.namespace for a in apps}), lambda ns: session.create(r.NAMESPACE, w.namespace(ns))
    )
    await session.each(apps, lambda app: _create_app(session, app, opts))
    created = time.monotonic()
    ok = await _wait(session, tracker, "set_up", opts, say, "set up (pods available, Rollout Healthy)")
    outcome["set_up_s"] = time.monotonic() - created
    if not ok:
        outcome["stopped_in"] = "create"
        return outcome | {"tracker": tracker}
    await session.mark("settle")
    await asyncio.sleep(opts.settle)
    step1 = await session.mark("step1")
    session.start_profile()  # the release itself: step 1 and step 2
    say(f"releasing {NEW_IMAGE} to all {len(apps)} Deployments at once")
    await session.each(apps, lambda app: _release(session, tracker, app))
    outcome["release_writes_s"] = time.monotonic() - step1.mono
    if not await _wait(session, tracker, "paused", opts, say, "at step 1 StepPaused"):
        outcome["stopped_in"] = "step1"
        return outcome | {"tracker": tracker}
    outcome["all_paused_s"] = time.monotonic() - step1.mono
    step2 = await session.mark("step2")
    say(f"approving all {len(apps)} Rollouts")
    await session.each(apps, lambda app: _approve(session, tracker, app))
    outcome["approve_writes_s"] = time.monotonic() - step2.mono
    if not await _wait(session, tracker, "healthy", opts, say, "Healthy with Succeeded=True"):
        outcome["stopped_in"] = "step2"
        return outcome | {"tracker": tracker}
    outcome["all_complete_s"] = time.monotonic() - step2.mono
    outcome["completed"] = True
    await session.stop_profile()
    await session.mark("idle")
    say(f"idle for {opts.idle:.0f}s")
    await asyncio.sleep(opts.idle)
    return outcome | {"tracker": tracker}


async def _create_app(session: BenchSession, app: w.App, opts: ReleaseOptions) -> None:
    await session.create(r.DEPLOYMENT, w.deployment(app, opts.replicas, OLD_IMAGE))
    await session.create(r.ROLLOUT, w.rollout(app, opts.style))


async def _release(session: BenchSession, tracker: Tracker, app: w.App) -> None:
    patch = w.image_patch(NEW_IMAGE)
    await session.kube.patch(r.DEPLOYMENT, app.name, patch, app.namespace, patch_type="strategic")
    tracker.release_written(app.key, time.monotonic())


async def _approve(session: BenchSession, tracker: Tracker, app: w.App) -> None:
    await session.kube.patch(r.ROLLOUT, app.name, w.approve_patch(), app.namespace, subresource="status")
    tracker.approval_written(app.key, time.monotonic())


async def _wait(
    session: BenchSession,
    tracker: Tracker,
    milestone: str,
    opts: ReleaseOptions,
    say: Callable[[str], None],
    what: str,
) -> bool:
    total = len(tracker.timelines)

    def progress() -> str:
        sample = session.controller_sample()
        ctrl = (
            f"controller RSS {sample.rss / 1e6:.0f} MB, CPU {sample.cpu:.0f}s"
            if sample
            else "controller gone"
        )
        return f"{tracker.count(milestone)}/{total} {what}; {ctrl}"

    def done() -> bool:
        return tracker.count(milestone) == total or not session.controller.alive()

    ok = await wait_until(done, opts.phase_timeout, progress, say, interrupted=session.interrupted)
    if not session.controller.alive():
        say("the controller process exited")
        return False
    return ok
