"""A fuzzer (hypothesis) of Rollout and TrafficRouting specs through the real API server and webhooks.

Every generated object (tests/fuzz_specs.py: valid-ish, and hostile — wrong types, numbers
beyond int64, negative values, missing fields, unicode, deep nesting) is created on the real cluster
while the real controller serves its webhooks. Each must be answered 4xx with a field path in the
message, or admitted: never a 5xx, never a timeout. Then what was admitted must not be stuck: the
controller gives every admitted object a status, a metadata patch (what the controller itself writes)
is admitted, and deletion completes (the finalizer comes off). A sample of admitted canary Rollouts is
released on a real Deployment to its end, approving each pause.

Reproducible: the seed is fixed and printed (GRAYLANE_FUZZ_SEED to change it, GRAYLANE_FUZZ_EXAMPLES
for the number of examples); hypothesis' database is off, so a run depends on the seed alone.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, seed, settings

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from tests.fuzz_specs import rollouts, traffic_routings
from tests.integration.builders import deployment
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.traffic_fixtures import ingress, service

SEED = int(os.environ.get("GRAYLANE_FUZZ_SEED", "20261204"))
EXAMPLES = int(os.environ.get("GRAYLANE_FUZZ_EXAMPLES", "300"))
RELEASES = 2  # admitted canary Rollouts released end to end per run
CALL_TIMEOUT = 30.0
# A field path in the answer: the API server's schema errors (spec.x[0].y) or the webhook's (Spec.X.Y,
# and Kruise's two roots outside Spec).
FIELD_PATH = re.compile(
    r"\b(spec|metadata|Spec|Metadata)(\.\w+|\[\d+\])*\b|\bRollingStyle:|Conflict Checker:"
)
T = TypeVar("T")


@dataclasses.dataclass
class Fuzz:
    """One fuzzing session: its own event loop and client (hypothesis drives a plain function)."""

    kubeconfig: Path
    loop: asyncio.AbstractEventLoop = dataclasses.field(default_factory=asyncio.new_event_loop)
    namespace: str = dataclasses.field(default_factory=lambda: f"fz-{uuid.uuid4().hex[:8]}")
    count: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    reasons: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    admitted: list[tuple[r.Resource, Obj]] = dataclasses.field(default_factory=list)
    kube: KubeClient = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.kube = KubeClient.from_kubeconfig(str(self.kubeconfig))

    def run(self, aw: Awaitable[T], timeout: float = CALL_TIMEOUT) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def close(self) -> None:
        self.run(self.kube.close())
        self.loop.close()

    def submit(self, obj: Obj) -> None:
        """Create one generated object; assert it is admitted or refused 4xx with a field path."""
        self.count += 1
        _name(obj, f"fz{self.count}")
        resource = _resource(obj)
        try:
            created = self.run(self.kube.create(resource, obj, self.namespace))
        except ApiError as err:
            self._refused(obj, err)
            return
        except TimeoutError:
            raise AssertionError(
                f"no answer within {CALL_TIMEOUT:.0f} s: seed {SEED}: {json.dumps(obj)}"
            ) from None
        self.outcomes["admitted"] += 1
        self.admitted.append((resource, created))

    def _refused(self, obj: Obj, err: ApiError) -> None:
        detail = f"seed {SEED}, example {self.count}: {json.dumps(obj)[:2000]}"
        if err.code >= 500:
            raise AssertionError(f"{err.code} {err.reason}: {err.message}\n{detail}")
        if not FIELD_PATH.search(err.message):
            raise AssertionError(f"no field path in {err.message!r}\n{detail}")
        source = "webhook" if "admission webhook" in err.message else "schema"
        self.outcomes[f"{err.code} {source}"] += 1
        self.reasons[re.sub(r"Invalid value: .*?: ", "", err.message.split(": ", 1)[-1])[:80]] += 1


def _resource(obj: Obj) -> r.Resource:
    if obj.get("kind") == "TrafficRouting":
        return r.TRAFFICROUTING
    return r.ROLLOUT_V1ALPHA1 if str(obj.get("apiVersion")).endswith("v1alpha1") else r.ROLLOUT


def _name(obj: Obj, name: str) -> None:
    """Each example its own name, and its own workload unless it names the shared one ("other")."""
    obj["metadata"] = {**obj.get("metadata", {}), "name": name}
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    object_ref = spec.get("objectRef")
    for ref in (
        spec.get("workloadRef"),
        object_ref.get("workloadRef") if isinstance(object_ref, dict) else None,
    ):
        if isinstance(ref, dict) and ref.get("name") == "demo":
            ref["name"] = f"w-{name}"


@pytest.fixture
def fuzz(kubeconfig: Path, graylane_controller: ControllerProcess) -> Iterator[Fuzz]:
    session = Fuzz(kubeconfig)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": session.namespace}}
    session.run(session.kube.create(r.NAMESPACE, ns))
    print(f"fuzz seed {SEED} (GRAYLANE_FUZZ_SEED), {EXAMPLES} examples, namespace {session.namespace}")
    try:
        yield session
    finally:
        session.run(session.kube.delete(r.NAMESPACE, session.namespace))
        session.close()


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# -- after the examples: nothing admitted is stuck --------------------------------------------------------


async def _until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    what: str,
    timeout: float,
    show: Callable[[T], object] = lambda last: last,
) -> T:
    deadline = time.monotonic() + timeout
    last = await probe()
    while not done(last):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"seed {SEED}: timed out after {timeout:.0f} s waiting for {what}; last: {show(last)}"
            )
        await asyncio.sleep(0.5)
        last = await probe()
    return last


async def _statuses(
    kube: KubeClient, admitted: list[tuple[r.Resource, Obj]], namespace: str
) -> dict[str, Obj]:
    """name -> status (with the spec while there is no phase yet: what a failure must show)."""
    found: dict[str, Obj] = {}
    for resource, obj in admitted:
        name = obj["metadata"]["name"]
        current = await kube.get_or_none(resource, name, namespace) or {}
        status = current.get("status") or {}
        found[name] = status if status.get("phase") else {"spec": current.get("spec"), "status": status}
    return found


async def _not_stuck(fz: Fuzz) -> None:
    """Each admitted object gets a status, takes a metadata patch, and is deleted when asked."""
    kube, ns, admitted = fz.kube, fz.namespace, fz.admitted

    def all_seen(found: dict[str, Obj]) -> bool:
        return all(status.get("phase") for status in found.values())

    def unseen(found: dict[str, Obj]) -> dict[str, Obj]:
        return {name: status for name, status in found.items() if not status.get("phase")}

    found = await _until(
        lambda: _statuses(kube, admitted, ns), all_seen, "a status phase on every object", 120, unseen
    )
    phases = collections.Counter(status["phase"] for status in found.values())
    print(f"admitted objects' phases: {dict(phases)}")
    for resource, obj in admitted:
        name = obj["metadata"]["name"]
        await kube.patch(resource, name, {"metadata": {"labels": {"fuzz": "patched"}}}, ns)
        await kube.delete(resource, name, ns)

    async def left() -> list[str]:
        return [
            obj["metadata"]["name"]
            for res, obj in admitted
            if await kube.get_or_none(res, obj["metadata"]["name"], ns)
        ]

    await _until(left, lambda names: names == [], "every admitted object deleted (finalizers removed)", 120)


# -- a sample released end to end -----------------------------------------------------------------------


def _canary(obj: Obj) -> Obj:
    return ((obj.get("spec") or {}).get("strategy") or {}).get("canary") or {}


def _releasable(obj: Obj) -> bool:
    """A canary Rollout on a Deployment whose routing (if any) is an Ingress with a shipped script."""
    spec = obj.get("spec") or {}
    ref = spec.get("workloadRef") or (spec.get("objectRef") or {}).get("workloadRef") or {}
    canary = (spec.get("strategy") or {}).get("canary")
    if (ref.get("apiVersion"), ref.get("kind")) != ("apps/v1", "Deployment") or not canary:
        return False
    routings = canary.get("trafficRoutings") or []
    return all(
        set(routing) <= {"service", "ingress", "gracePeriodSeconds"}
        and routing.get("service") == "web"
        and (routing.get("ingress") or {}).get("name") == "web"
        and (routing.get("ingress") or {}).get("classType", "nginx")
        in ("nginx", "mse", "higress", "aliyun-alb")
        for routing in routings
    )


async def _release(kube: KubeClient, original: Obj) -> str:
    """Create the Rollout on a fresh Deployment, release v2 and approve every pause until it is done."""
    ns = f"fzr-{uuid.uuid4().hex[:8]}"
    await kube.create(r.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        obj = json.loads(json.dumps(original))
        obj["metadata"] = {"name": "demo", "annotations": original["metadata"].get("annotations") or {}}
        spec = obj["spec"]
        (spec.get("workloadRef") or spec["objectRef"]["workloadRef"])["name"] = "demo"
        obj.pop("status", None)
        await kube.create(r.SERVICE, service(ns, app="demo"))
        await kube.create(r.INGRESS, ingress(ns))
        await kube.create(r.DEPLOYMENT, deployment("demo", ns, replicas=4))
        await kube.create(_resource(obj), obj, ns)
        await _until(lambda: kube.get(r.ROLLOUT, "demo", ns), _healthy, "Healthy before the release", 120)
        image = {"spec": {"template": {"spec": {"containers": [{"name": "demo", "image": "demo:v2"}]}}}}
        await kube.patch(r.DEPLOYMENT, "demo", image, ns, patch_type="strategic")
        return await _drive(kube, ns)
    finally:
        await kube.delete(r.NAMESPACE, ns)


def _healthy(ro: Obj) -> bool:
    return (ro.get("status") or {}).get("phase") == "Healthy"


async def _drive(kube: KubeClient, ns: str) -> str:
    deadline = time.monotonic() + 240
    approvals = 0
    while time.monotonic() < deadline:
        ro = await kube.get(r.ROLLOUT, "demo", ns)
        status = ro.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        if _healthy(ro) and conditions.get("Succeeded", {}).get("status") == "True":
            return f"completed after {approvals} approvals: {status.get('message')}"
        if (status.get("canaryStatus") or {}).get("currentStepState") == "StepPaused":
            body = {"status": {"canaryStatus": {"currentStepState": "StepReady"}}}
            await kube.patch(r.ROLLOUT, "demo", body, ns, subresource="status")
            approvals += 1
        await asyncio.sleep(0.5)
    raise AssertionError(f"seed {SEED}: the release did not complete within 240 s; last status: {status}")


# -- the tests --------------------------------------------------------------------------------------------


def test_rollout_specs_through_the_webhook(fuzz: Fuzz) -> None:
    @_settings()
    @seed(SEED)
    @given(obj=rollouts())
    def case(obj: Obj) -> None:
        fuzz.submit(obj)

    started = time.monotonic()
    case()
    print(f"{fuzz.count} Rollouts in {time.monotonic() - started:.0f} s: {dict(fuzz.outcomes)}")
    print(f"most frequent refusals: {fuzz.reasons.most_common(6)}")
    assert fuzz.outcomes["admitted"], "the generator must produce admissible Rollouts too"
    releasable = [obj for _, obj in fuzz.admitted if _releasable(obj)]
    routed = [obj for obj in releasable if _canary(obj).get("trafficRoutings")]
    sample = (routed[:1] + [obj for obj in releasable if obj not in routed[:1]])[:RELEASES]
    fuzz.run(_not_stuck(fuzz), timeout=300)
    for obj in sample:
        outcome = fuzz.run(_release(fuzz.kube, obj), timeout=420)
        print(f"released {json.dumps(obj['spec'])[:300]}: {outcome}")
    assert sample, "no admitted Rollout was releasable: widen the generator"


def test_traffic_routing_specs_through_the_api_server(fuzz: Fuzz) -> None:
    fuzz.run(fuzz.kube.create(r.SERVICE, service(fuzz.namespace)))
    fuzz.run(fuzz.kube.create(r.INGRESS, ingress(fuzz.namespace)))

    @_settings()
    @seed(SEED)
    @given(obj=traffic_routings())
    def case(obj: Obj) -> None:
        fuzz.submit(obj)

    started = time.monotonic()
    case()
    print(f"{fuzz.count} TrafficRoutings in {time.monotonic() - started:.0f} s: {dict(fuzz.outcomes)}")
    assert fuzz.outcomes["admitted"], "the generator must produce admissible TrafficRoutings too"
    fuzz.run(_not_stuck(fuzz), timeout=300)
