"""One chaos lane: an application that releases one version after another, each by a drawn script.

A lane owns a namespace with a Deployment `app`, its Rollout, and for routed lanes the Service `web`
and an nginx Ingress or an HTTPRoute. A release sets a new image, approves paused steps as a user
would (after a think time, guarded by the resourceVersion it saw), does the script's action at its
moment (rollback, delete, disable, a newer image), then waits until everything is as asked: the Rollout
in the right state, the Deployment handed back, the pods converged, nothing left behind. A lane that
finds a problem records it and stops (its objects are no longer a known state).

Every write is retried through API-server restarts and while the controller, which serves the
webhooks, is down (its webhooks then answer 500), because a user's `kubectl` would be retried too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

import httpx2

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from tests.chaos import checks
from tests.chaos.checks import Expected, Originals
from tests.chaos.observer import Observer, Snapshot
from tests.chaos.plans import (
    GATEWAY_ROUTE,
    INGRESS,
    SERVICE,
    V1ALPHA1,
    Kind,
    LaneSpec,
    Provider,
    ReleaseScript,
    draw_release,
    rollout_manifest,
)
from tests.chaos.report import Report
from tests.integration.release_dsl import Release
from tests.integration.traffic_fixtures import http_route, ingress, service

__all__ = ["Budget", "Lane", "persist"]

T = TypeVar("T")
Obj = dict[str, Any]
RETRYABLE = frozenset({429, 500, 502, 503, 504})
WRITE_TIMEOUT = 180.0  # a write may wait out a controller restart and an API-server restart
PHASE_TIMEOUT = 300.0  # to reach the script's moment, and then to settle as asked
REST_TIMEOUT = 180.0  # a re-created or re-enabled Rollout back at rest
AFTER_END = 90.0  # for the native rollout and garbage collection to finish once the Rollout is done
TRAFFIC_RECHECK = 2.0
NO_VIEW = 30.0  # no snapshot for this long: the API server is down, or the observer is stuck


async def persist(what: str, op: Callable[[], Awaitable[T]], timeout: float = WRITE_TIMEOUT) -> T:
    """`op()` retried while the API server or a webhook is unavailable; other errors are raised."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return await op()
        except ApiError as err:
            if err.code not in RETRYABLE or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {err}") from err
        except httpx2.TransportError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {err!r} for {timeout:.0f}s") from err
        await asyncio.sleep(delay)
        delay = min(delay * 2, 3.0)


@dataclasses.dataclass
class Budget:
    """Releases still to start, and the time after which none starts."""

    releases: int
    deadline: float  # time.monotonic()

    def take(self) -> bool:
        if self.releases <= 0 or time.monotonic() > self.deadline:
            return False
        self.releases -= 1
        return True


def _now_second() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class LaneFailed(Exception):
    """The lane found a problem (already recorded in the report) and stops."""


class Lane:
    def __init__(
        self, spec: LaneSpec, kube: KubeClient, observer: Observer, report: Report, rng: random.Random
    ) -> None:
        self.spec = spec
        self.kube = kube
        self.observer = observer
        self.report = report
        self.rng = rng
        self.version = 1
        self.release_no = 0
        self.stepping: str | None = None  # the image the sampler holds to the current step's bound
        self.retired = False
        self.originals = Originals(strategy={})
        self._paused_since: dict[tuple[str, int], float] = {}
        self._approved: set[tuple[str, int]] = set()

    @property
    def image(self) -> str:
        return f"chaos:v{self.version}"

    @property
    def ns(self) -> str:
        return self.spec.namespace

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def writes(self) -> r.Resource:
        """The Rollout's own version, for the user's writes (v1alpha1 goes through conversion)."""
        return r.ROLLOUT_V1ALPHA1 if self.spec.api_version == V1ALPHA1 else r.ROLLOUT

    def tag(self) -> str:
        return f"{self.ns} release {self.release_no}"

    def _at_rest(self) -> Expected:
        """Between releases: Healthy, whatever the last release was."""
        return Expected("healthy", self.image, _now_second())

    # -- setting up ---------------------------------------------------------------------------------

    async def setup(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}}
        await self.kube.create(r.NAMESPACE, body)
        selector = route = ing = None
        if self.spec.provider != Provider.NONE:
            created = await self.kube.create(r.SERVICE, service(self.ns, SERVICE, app=self.name))
            selector = created["spec"]["selector"]
        if self.spec.provider == Provider.NGINX:
            created = await self.kube.create(r.INGRESS, ingress(self.ns, INGRESS, SERVICE))
            ing = {"annotations": created["metadata"].get("annotations") or {}, "spec": created["spec"]}
        if self.spec.provider == Provider.GATEWAY:
            route = (await self.kube.create(r.HTTPROUTE, http_route(self.ns, GATEWAY_ROUTE, SERVICE)))["spec"]
        release = Release(self.kube, self.ns, name=self.name)
        await release.given_deployment(replicas=self.spec.replicas, image=self.image)
        strategy = (await release.deployment())["spec"]["strategy"]
        self.originals = Originals(strategy, selector, ing, route)
        await self._create_rollout()

    async def _create_rollout(self) -> None:
        async def create() -> None:
            try:
                await self.kube.create(self.writes, rollout_manifest(self.spec))
            except ApiError as err:
                if not err.already_exists:  # a retry of a create whose answer was lost
                    raise

        await persist(f"{self.ns}: create the Rollout", create)
        await self._until_rest(first_deploy=True)

    async def _until_rest(self, *, first_deploy: bool) -> None:
        """Healthy (a new Rollout: with the first-deploy sub-status) and the workload labelled for the
        webhook. A re-enabled Rollout keeps the sub-status of the release it was disabled in, as Kruise's."""

        def at_rest(snap: Snapshot) -> list[str]:
            ro, dep = snap.rollout(self.ns, self.name), snap.deployment(self.ns, self.name)
            problems = checks.rollout_problems(self._at_rest(), ro)
            sub = ((ro or {}).get("status") or {}).get("canaryStatus") or {}
            if first_deploy and sub.get("currentStepState") != "Completed":
                problems.append(f"sub-status {sub.get('currentStepState')!r}, not Completed")
            labels = ((dep or {}).get("metadata") or {}).get("labels") or {}
            if "rollouts.kruise.io/workload-type" not in labels:
                problems.append("workload not labelled for the webhook")
            return problems

        await self._until(at_rest, REST_TIMEOUT, "the Rollout at rest")

    async def _until(self, problems_of: Callable[[Snapshot], list[str]], timeout: float, what: str) -> None:
        deadline, snap = time.monotonic() + timeout, None
        while True:
            snap = await self._next(snap, deadline, what)
            problems = problems_of(snap)
            if not problems:
                return
            if time.monotonic() > deadline:
                self._fail(f"{what} not reached within {timeout:.0f}s: {problems}")

    async def _next(self, snap: Snapshot | None, deadline: float, what: str) -> Snapshot:
        # At least NO_VIEW: past the deadline the caller still needs one more snapshot to judge.
        try:
            return await self.observer.next(snap, timeout=max(NO_VIEW, deadline - time.monotonic()))
        except TimeoutError:
            self._fail(f"no view of the cluster while waiting for {what} (API server down?)")
            raise  # unreachable: _fail raises

    def _fail(self, line: str) -> None:
        self.report.violation(f"{self.tag()} ({self.spec.describe()}): {line}")
        self.retired = True
        raise LaneFailed(line)

    # -- releasing ----------------------------------------------------------------------------------

    async def run(self, budget: Budget, kinds: Collection[str]) -> None:
        try:
            while budget.take():
                script = draw_release(self.rng, len(self.spec.steps), kinds)
                # Condition times have 1 s resolution: start in a later second than the last release ended.
                await asyncio.sleep(1.1)
                await self.release(script)
        except LaneFailed:
            pass
        except Exception as err:  # a harness error: reported with the seed like any finding
            self.retired = True
            self.report.violation(f"{self.tag()}: harness error {err!r}")
        finally:
            self.stepping = None

    async def release(self, script: ReleaseScript) -> None:
        self.release_no += 1
        self.report.releases += 1
        base = self.version
        self.version += 1
        self.report.note(f"{self.tag()}: {self.spec.describe()} -> {self.image}, {script.describe()}")
        expected = await self._set_image(self.image, "completed", stepping=True)
        started = time.monotonic()
        if script.kind != Kind.COMPLETE:
            expected = await self._act_at_moment(script, started, base, expected)
        await self._settle(script, expected)
        outcome = expected.outcome if script.kind != Kind.NEWER else "completed after a newer revision"
        self.report.outcomes[outcome] += 1
        self.report.durations.append(time.monotonic() - started)
        self.report.note(f"{self.tag()}: {expected.describe()} in {time.monotonic() - started:.1f}s")
        if expected.outcome == "disabled":
            await persist(f"{self.ns}: re-enable", lambda: self._patch_spec({"disabled": False}))
            await self._until_rest(first_deploy=False)
        elif expected.outcome == "deleted":
            await self._create_rollout()

    async def _set_image(self, image: str, outcome: str, *, stepping: bool) -> Expected:
        # Before the write: the sampler must never judge the new image's pods without their bound.
        self.stepping = image if stepping else None
        release = Release(self.kube, self.ns, name=self.name)
        since = _now_second()
        await persist(f"{self.ns}: set image {image}", lambda: release.when_image(image))
        return Expected(outcome, image, since)

    async def _act_at_moment(
        self, script: ReleaseScript, started: float, base: int, expected: Expected
    ) -> Expected:
        deadline, snap = started + PHASE_TIMEOUT, None
        reached: float | None = None
        while True:
            snap = await self._next(snap, deadline, script.describe())
            ro = snap.rollout(self.ns, self.name)
            if not checks.rollout_problems(dataclasses.replace(expected, outcome="either"), ro):
                self.report.note(f"{self.tag()}: ended before its {script.kind}; counted as completed")
                return expected  # the moment was never reached: a completed release
            step = checks.step_in_flight(ro)
            moment = script.moment
            if moment.after is not None:
                due = time.monotonic() - started >= moment.after
            else:
                if reached is None and step is not None and moment.step is not None and step >= moment.step:
                    reached = time.monotonic()
                due = reached is not None and time.monotonic() - reached >= moment.delay
            if due:
                return await self._act(script.kind, base, self._held(ro))
            if moment.step is None or step is None or step < moment.step:
                await self._maybe_approve(ro, script)
            if time.monotonic() > deadline:
                self._fail(
                    f"{script.describe()} never reached in {PHASE_TIMEOUT:.0f}s; Rollout: {_brief(ro)}"
                )

    def _held(self, ro: Obj | None) -> bool:
        """The Rollout waits at a step for an approval this lane has not sent: it cannot be finalising."""
        sub = ((ro or {}).get("status") or {}).get("canaryStatus") or {}
        index = int(sub.get("currentStepIndex") or 0)
        return (
            checks.step_in_flight(ro) is not None
            and sub.get("currentStepState") == "StepPaused"
            and 1 <= index <= len(self.spec.steps)
            and self.spec.steps[index - 1].pause is None
            and (str(sub.get("canaryRevision")), index) not in self._approved
        )

    async def _act(self, kind: Kind, base: int, held: bool) -> Expected:
        self.report.note(f"{self.tag()}: {kind} now")
        if kind == Kind.NEWER:
            self.version += 1
            return await self._set_image(self.image, "completed", stepping=True)
        self.stepping = None  # no step bound once the user takes the release back
        if kind == Kind.ROLLBACK:
            self.version = base
            # Kruise cancels a release that is running its steps. A revert before the controller took the
            # release is a release of the old version, and one during finalising completes: either way
            # the end is the old version, Succeeded True or False; only a held step pins it to cancelled.
            return await self._set_image(self.image, "cancelled" if held else "either", stepping=False)
        since = _now_second()
        if kind == Kind.DELETE:
            await persist(
                f"{self.ns}: delete the Rollout", lambda: self.kube.delete(self.writes, self.name, self.ns)
            )
            return Expected("deleted", self.image, since)
        await persist(f"{self.ns}: disable", lambda: self._patch_spec({"disabled": True}))
        return Expected("disabled", self.image, since)

    async def _patch_spec(self, spec: dict[str, Any]) -> Obj:
        return await self.kube.patch(self.writes, self.name, {"spec": spec}, self.ns)

    async def _maybe_approve(self, ro: Obj | None, script: ReleaseScript) -> None:
        """kubectl-kruise's approve: StepPaused -> StepReady, only on a step that waits for a person."""
        status = (ro or {}).get("status") or {}
        sub = status.get("canaryStatus") or {}
        if ro is None or status.get("phase") != "Progressing" or sub.get("currentStepState") != "StepPaused":
            return
        index = int(sub.get("currentStepIndex") or 0)
        if not 1 <= index <= len(self.spec.steps) or self.spec.steps[index - 1].pause is not None:
            return
        key = (str(sub.get("canaryRevision")), index)
        first = self._paused_since.setdefault(key, time.monotonic())
        if time.monotonic() - first < script.think:
            return
        self._approved.add(key)  # before sending: a lost answer may still have approved it
        body = {
            "metadata": {"resourceVersion": ro["metadata"]["resourceVersion"]},
            "status": {"canaryStatus": {"currentStepState": "StepReady"}},
        }
        try:
            await self.kube.patch(r.ROLLOUT, self.name, body, self.ns, subresource="status")
        except ApiError as err:
            if not (err.conflict or err.code in RETRYABLE):  # a stale view: the next snapshot decides
                raise
        except httpx2.TransportError:
            pass

    # -- checking -----------------------------------------------------------------------------------

    async def _settle(self, script: ReleaseScript, expected: Expected) -> None:
        """Wait until the release ended as asked and nothing is left; fail the lane at the deadline."""
        deadline, snap, checked = time.monotonic() + PHASE_TIMEOUT, None, 0.0
        approving = expected.outcome in ("completed", "either", "cancelled")
        ended: float | None = None  # when the Rollout first showed the asked end
        while True:
            snap = await self._next(snap, deadline, expected.describe())
            ro = snap.rollout(self.ns, self.name)
            if approving:
                await self._maybe_approve(ro, script)
            problems, leftovers = self.problems(expected, snap)
            wrong = [p for p in problems if p.startswith(checks.WRONG)]
            if wrong:
                self._fail(f"{expected.describe()}: {wrong}")
            if checks.rollout_problems(expected, ro):
                ended = None
            elif ended is None:
                ended = time.monotonic()
            elif time.monotonic() - ended > AFTER_END and (problems or leftovers):
                # The Rollout says it is done, and graylane hands the workload back before it says so
                # (Kruise's order): what is still wrong now stays wrong.
                self.report.orphans.extend(f"{self.tag()}: {p}" for p in leftovers)
                self._fail(
                    f"Rollout {expected.describe()}, but {AFTER_END:.0f}s later still: {problems + leftovers}"
                )
            if not problems and time.monotonic() - checked >= TRAFFIC_RECHECK:
                checked = time.monotonic()
                leftovers += await self._object_leftovers()
                if not leftovers:
                    return
            if time.monotonic() > deadline:
                self.report.orphans.extend(f"{self.tag()}: {p}" for p in leftovers)
                self._fail(f"not {expected.describe()} within {PHASE_TIMEOUT:.0f}s: {problems + leftovers}")

    def problems(self, expected: Expected, snap: Snapshot) -> tuple[list[str], list[str]]:
        """(state problems, leftovers) that the latest snapshot shows."""
        ro, dep = snap.rollout(self.ns, self.name), snap.deployment(self.ns, self.name)
        problems = checks.rollout_problems(expected, ro)
        problems += checks.workload_problems(self.spec, self.originals, expected.image, dep)
        problems += checks.pods_problems(self.spec, expected.image, snap.pods.get(self.ns, []))
        leftovers = checks.workload_leftovers(self.spec, dep)
        brs = snap.batch_releases.get(self.ns, [])
        leftovers += checks.leftovers(
            canaries=snap.canaries(self.ns), batch_releases=brs, replica_sets=[], owner_uid=""
        )
        return problems, leftovers

    async def _object_leftovers(self) -> list[str]:
        """What the snapshot does not hold: Services, Ingresses, the HTTPRoute, ReplicaSets."""
        try:
            services = (await self.kube.list(r.SERVICE, self.ns))["items"]
            ingresses = (await self.kube.list(r.INGRESS, self.ns))["items"]
            routes = (
                (await self.kube.list(r.HTTPROUTE, self.ns))["items"]
                if self.spec.provider == Provider.GATEWAY
                else []
            )
            sets = (await self.kube.list(r.REPLICASET, self.ns))["items"]
            dep = await self.kube.get(r.DEPLOYMENT, self.name, self.ns)
        except (ApiError, httpx2.TransportError) as err:
            return [f"could not list the namespace's objects: {err!r}"]
        found = checks.traffic_problems(
            self.spec, self.originals, services=services, ingresses=ingresses, routes=routes
        )
        uid = str(dep["metadata"]["uid"])
        return found + checks.leftovers(canaries=[], batch_releases=[], replica_sets=sets, owner_uid=uid)

    async def final_check(self, timeout: float) -> None:
        """After the run: still at rest and clean (catches a change made after a release was checked)."""
        expected = self._at_rest()
        deadline, snap = time.monotonic() + timeout, None
        while True:
            snap = await self.observer.next(snap, timeout=max(NO_VIEW, deadline - time.monotonic()))
            problems, leftovers = self.problems(expected, snap)
            if not problems:
                leftovers += await self._object_leftovers()
            if not problems and not leftovers:
                return
            if time.monotonic() > deadline:
                self.report.orphans.extend(f"{self.ns} at the end: {p}" for p in leftovers)
                self.report.violation(f"{self.ns} at the end of the run: {problems + leftovers}")
                return


def _brief(ro: Obj | None) -> str:
    if ro is None:
        return "absent"
    status = ro.get("status") or {}
    sub = status.get("canaryStatus") or {}
    conds = {c.get("type"): (c.get("status"), c.get("reason")) for c in status.get("conditions") or []}
    return (
        f"phase {status.get('phase')}, step {sub.get('currentStepIndex')} {sub.get('currentStepState')}, "
        f"conditions {conds}, message {status.get('message')!r}"
    )
