"""Issue 17 acceptance: the controller SIGKILLed at random moments during 10 blue-green releases.

One Deployment of 5 replicas with a Service, an nginx Ingress and an HPA is released 10 times (v1 and
v2 in turn) with timed pauses; every third release is rolled back as soon as its first new pod exists.
Meanwhile the controller is killed with SIGKILL (no clean-up at all) at random moments and started
again. Every release must end as it should (completed, or cancelled for a rollback) and leave nothing
behind: the Deployment's strategy, minReadySeconds, progressDeadlineSeconds and pause exactly as
before, none of the release's annotations or labels, the HPA pointing at the Deployment again, the
stable Service's selector restored, no canary Service, no canary Ingress, no BatchRelease, no
ReplicaSet held at MaxReadySeconds. The random seed is printed so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import operator
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2
from tests.integration.test_bluegreen import BlueGreen
from tests.integration.waiting import eventually

RELEASES = 10
TIMED_STEPS: list[dict[str, Any]] = [
    {"replicas": "50%", "traffic": "0%", "pause": {"duration": 1}},
    {"replicas": "100%", "traffic": "100%", "pause": {"duration": 1}},
]


async def _retrying(write: Callable[[], Awaitable[object]], what: str, max_seconds: float = 90) -> None:
    """A user's write while the controller (and so its webhook, failurePolicy Fail) may be down."""
    deadline = time.monotonic() + max_seconds
    while True:
        try:
            await write()
            return
        except ApiError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} refused for {max_seconds:.0f}s: {err}") from err
            await asyncio.sleep(0.5)


async def _updated_revision(rel: BlueGreen) -> str:
    return str(((await rel.rollout())["status"].get("blueGreenStatus") or {}).get("updatedRevision", ""))


class Killer:
    """SIGKILLs the controller at random moments (bounded in count) and starts it again each time."""

    def __init__(self, proc: ControllerProcess, rng: random.Random) -> None:
        self.proc, self.rng = proc, rng
        self.kills = 0
        self._stop = asyncio.Event()

    async def run(self, max_kills: int = 60) -> None:
        while self.kills < max_kills and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.rng.uniform(0.5, 6.0))
                return
            await asyncio.to_thread(self.proc.kill)
            self.kills += 1
            await asyncio.to_thread(self.proc.start)
            await asyncio.to_thread(self.proc.wait_ready, 120)

    def stop(self) -> None:
        self._stop.set()


async def test_ten_blue_green_releases_survive_sigkill_and_leave_nothing_behind(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    seed = int(os.environ.get("GRAYLANE_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed {seed} (GRAYLANE_CHAOS_SEED replays it)")
    rel = BlueGreen(kube, namespace, sub="blueGreenStatus")
    before = await rel.given_app()
    await rel.when_rollout_patched({"spec": {"strategy": {"blueGreen": {"steps": TIMED_STEPS}}}})
    killer = Killer(graylane_controller, random.Random(seed))
    task = asyncio.get_running_loop().create_task(killer.run())
    started = time.monotonic()
    try:
        current = V1
        for n in range(1, RELEASES + 1):
            new = V2 if current == V1 else V1
            previous = await _updated_revision(rel)
            await _retrying(functools.partial(rel.when_image, new), f"release {n} ({new})")
            await eventually(
                functools.partial(_updated_revision, rel),
                functools.partial(operator.ne, previous),
                what=f"release {n} started",
                timeout=180,
            )
            if n % 3 == 0:
                await rel.then_pods_with(new, what=f"release {n}: a first new pod", timeout=180)
                await _retrying(functools.partial(rel.when_image, current), f"rollback {n}")
                await rel.then_completed(succeeded=False, timeout=300)
                await rel.then_handed_back(before, current)
            else:
                await rel.then_completed(timeout=300)
                await rel.then_handed_back(before, new)
                current = new
            await eventually(
                rel.rollout,
                lambda ro: ro["status"].get("phase") == "Healthy",
                what=f"release {n}: Healthy again",
                timeout=120,
            )
    finally:
        killer.stop()
        await task
    print(f"{RELEASES} blue-green releases, {killer.kills} SIGKILLs, {time.monotonic() - started:.0f} s")
    assert killer.kills >= RELEASES, f"only {killer.kills} kills: the releases were not exercised"
    assert await kube.get_or_none(r.BATCHRELEASE, "demo", namespace) is None
