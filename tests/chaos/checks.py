"""Pure judgements of what the chaos suite observes: each returns the problems it finds, [] when none.

The sampler's two invariants (duplicate canary Deployments, more new-version pods Ready than the step
allows) and the end-of-release conditions (the Rollout in the state asked for, the workload handed back,
pods converged, nothing left behind). Objects are plain JSON dicts as the API server returns them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.chaos.plans import GATEWAY_ROUTE, INGRESS, SERVICE, LaneSpec, Provider, Style, allowed_new_pods

__all__ = [
    "ALLOWED_WORKLOAD_LABELS",
    "CANARY_LABEL",
    "COUNTS",
    "WRONG",
    "Expected",
    "Originals",
    "duplicate_canaries",
    "leftovers",
    "over_ready",
    "pods_problems",
    "rollout_problems",
    "step_in_flight",
    "traffic_problems",
    "workload_leftovers",
    "workload_problems",
]

Obj = Mapping[str, Any]
CANARY_LABEL = "rollouts.kruise.io/canary-deployment"
ROLLOUT_FINALIZER = "rollouts.kruise.io/rollout"
KRUISE_PREFIXES = ("rollouts.kruise.io/", "batchrelease.rollouts.kruise.io/")
CONTROLLER_PREFIXES = (*KRUISE_PREFIXES, "graylane.io/")  # graylane.io/original-httproute-rules
# Left on the workload by Kruise too: the label the mutating webhook selects on, and (canary style only:
# its finalisation does not touch it) the stable revision the webhook recorded at the release's start.
ALLOWED_WORKLOAD_LABELS = {
    Style.CANARY: frozenset({"rollouts.kruise.io/workload-type", "rollouts.kruise.io/stable-revision"}),
    Style.PARTITION: frozenset({"rollouts.kruise.io/workload-type"}),
}
MSG_COMPLETED = "Rollout progressing has been completed"
MSG_CANCELLED = "Rollout progressing has been cancelled"
MSG_DISABLED = "Rollout is disabled"
COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
WRONG = "wrong ending: "  # a problem that waiting cannot fix


@dataclasses.dataclass(frozen=True)
class Expected:
    """How a release must end. `outcome`: "completed", "cancelled", "either" (completed or cancelled:
    a revert before the controller saw the release), "disabled", "deleted", or "healthy" (at rest
    between releases: Healthy, whatever the last release was)."""

    outcome: str
    image: str
    since: dt.datetime  # the last template change, to the second: the end must be at or after it

    def describe(self) -> str:
        return f"{self.outcome} on {self.image}"


@dataclasses.dataclass(frozen=True)
class Originals:
    """The lane's objects as the test created them, for comparison after each release."""

    strategy: Mapping[str, Any]
    service_selector: Mapping[str, Any] | None = None
    ingress: Mapping[str, Any] | None = None  # {"annotations": ..., "spec": ...}
    route_spec: Mapping[str, Any] | None = None


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _live(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if not _meta(o).get("deletionTimestamp")]


def _controller_uid(obj: Obj) -> str:
    refs = _meta(obj).get("ownerReferences") or []
    return next((str(r.get("uid")) for r in refs if r.get("controller")), "")


def duplicate_canaries(deployments: Iterable[Obj]) -> list[tuple[str, str, list[str]]]:
    """(namespace, owner uid, names) for each BatchRelease with more than one live canary Deployment.

    Grouped by the owning BatchRelease, not by application: after a newer revision the old BatchRelease's
    canary is garbage collected while the new one creates its own, which is correct."""
    groups: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for dep in _live(deployments):
        meta = _meta(dep)
        if CANARY_LABEL in (meta.get("labels") or {}):
            image = image_of(dep["spec"]["template"]) if dep.get("spec") else "?"
            what = f"{meta.get('name')} ({image}, created {meta.get('creationTimestamp')})"
            groups[(str(meta.get("namespace")), _controller_uid(dep))].append(what)
    return [(ns, uid, sorted(names)) for (ns, uid), names in sorted(groups.items()) if len(names) > 1]


def ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return not _meta(pod).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conds
    )


def image_of(pod_or_template: Obj) -> str:
    return str(pod_or_template["spec"]["containers"][0]["image"])


def step_in_flight(rollout: Obj | None) -> int | None:
    """The step a Rollout is on while it runs steps (not finalising); None otherwise."""
    status = (rollout or {}).get("status") or {}
    sub = status.get("canaryStatus") or {}
    reason = next(
        (c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None
    )
    if status.get("phase") != "Progressing" or reason not in ("InRolling", "Paused"):
        return None
    if sub.get("currentStepState") == "Completed":
        return None
    return int(sub.get("currentStepIndex") or 0) or None


def _step_of_batch_release(br: Obj | None) -> int | None:
    """The step a BatchRelease is told to reach (batchPartition + 1); None when finalising or absent."""
    if br is None or _meta(br).get("deletionTimestamp"):
        return None
    partition = ((br.get("spec") or {}).get("releasePlan") or {}).get("batchPartition")
    return None if partition is None else int(partition) + 1


def over_ready(
    lane: LaneSpec,
    image: str,
    pods: Sequence[Obj],
    replica_sets: Sequence[Obj],
    br: Obj | None,
    rollout: Obj | None,
) -> tuple[str | None, str | None]:
    """(problem, surplus): more `image` pods Ready than the current step allows, split by who made them.

    A problem when the `image` ReplicaSets are sized past the step: the controller decided too many.
    A surplus (a note, not a failure) when only the pods are past it while those ReplicaSets are sized
    within it: kube-controller-manager's ReplicaSet controller made a pod more than its ReplicaSet asks
    for and deletes it once it sees it. It does so when a pod create was committed but its response lost
    (the API server stopped mid-request): the failed create lowers its expectations, the pod is not in its
    cache yet, and it creates another (seed 7: a 2-of-3 batch's ReplicaSet at 2, 3 pods Ready for 1.4 s).

    Read order (observer.Snapshot): pods, then ReplicaSets, then the BatchRelease and the Rollout. A batch's
    pods appear only after the controller recorded that batch in one of those two and sized its ReplicaSet,
    so the step read last is at least the step that made the pods and sized the ReplicaSets. The larger of
    the two steps is taken (the Rollout status and the BatchRelease are written one after the other).
    Within a step the new revision's ReplicaSets only grow, so a size read after the pods is no smaller
    than the one that made them. Outside steps (finalising, deleted, disabled) there is no bound."""
    rollout_step, br_step = step_in_flight(rollout), _step_of_batch_release(br)
    if rollout_step is None:
        return None, None
    step = max(rollout_step, br_step or 0)
    if step > len(lane.steps):
        return None, None
    allowed = allowed_new_pods(lane.style, lane.steps[step - 1].replicas, lane.replicas)
    new_ready = sorted(str(_meta(p).get("name")) for p in pods if ready(p) and image_of(p) == image)
    if len(new_ready) <= allowed:
        return None, None
    sized = sum(
        int((rs.get("spec") or {}).get("replicas") or 0)
        for rs in _live(replica_sets)
        if image_of(rs["spec"]["template"]) == image
    )
    found = (
        f"{len(new_ready)} {image} pods Ready at step {step} (Rollout step {rollout_step}, BatchRelease "
        f"step {br_step}) which allows {allowed} of {lane.replicas}, {image} ReplicaSets sized {sized}: "
        f"{new_ready}"
    )
    return (found, None) if sized > allowed else (None, found)


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _parse_time(raw: object) -> dt.datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def rollout_problems(expected: Expected, rollout: Obj | None) -> list[str]:
    """The Rollout is not (yet) in the state the release was asked to end in."""
    if expected.outcome == "deleted":
        return [] if rollout is None else [f"Rollout still exists (phase {_phase(rollout)})"]
    if rollout is None:
        return ["Rollout is gone"]
    status = rollout.get("status") or {}
    if status.get("observedGeneration") != _meta(rollout).get("generation"):
        return [f"Rollout generation {_meta(rollout).get('generation')} not observed"]
    if _meta(rollout).get("finalizers") != [ROLLOUT_FINALIZER]:
        return [f"Rollout finalizers {_meta(rollout).get('finalizers')}"]
    if expected.outcome == "disabled":
        ok = status.get("phase") == "Disabled" and status.get("message") == MSG_DISABLED
        return [] if ok else [f"Rollout phase {_phase(rollout)!r}, message {status.get('message')!r}"]
    if expected.outcome == "healthy":
        return [] if status.get("phase") == "Healthy" else [f"Rollout phase {_phase(rollout)!r}"]
    progressing, succeeded = _condition(status, "Progressing"), _condition(status, "Succeeded")
    ended = _parse_time(progressing.get("lastUpdateTime"))
    if status.get("phase") != "Healthy" or progressing.get("status") != "False" or ended is None:
        return [f"Rollout phase {_phase(rollout)!r}, Progressing {_brief(progressing)}"]
    if ended < expected.since:
        return [f"Rollout's last release ended at {ended:%H:%M:%S}, before this one began"]
    wanted = {"completed": {"True"}, "cancelled": {"False"}, "either": {"True", "False"}}[expected.outcome]
    messages = {"True": MSG_COMPLETED, "False": MSG_CANCELLED}
    got = succeeded.get("status")
    if got not in wanted or status.get("message") != messages.get(str(got)):
        return [
            f"{WRONG}Rollout ended with Succeeded={got!r}, {status.get('message')!r}: not {expected.outcome}"
        ]
    return []


def _phase(rollout: Obj) -> str:
    return str((rollout.get("status") or {}).get("phase") or "")


def _brief(cond: Mapping[str, Any]) -> str:
    return f"{cond.get('status')}/{cond.get('reason')} ({cond.get('message')!r})" if cond else "absent"


def workload_problems(lane: LaneSpec, originals: Originals, image: str, dep: Obj | None) -> list[str]:
    """The Deployment is not handed back: paused, strategy changed, Kruise keys left, not converged."""
    if dep is None:
        return ["Deployment is gone"]
    meta, spec, status = _meta(dep), dep.get("spec") or {}, dep.get("status") or {}
    problems = []
    if spec.get("paused"):
        problems.append("Deployment is paused")
    if spec.get("strategy") != originals.strategy:
        problems.append(f"strategy {spec.get('strategy')} is not the original {originals.strategy}")
    if image_of(spec["template"]) != image:
        problems.append(f"template image {image_of(spec['template'])}, asked {image}")
    want = lane.replicas
    counts = {k: status.get(k, 0) for k in COUNTS}
    if status.get("observedGeneration", 0) < meta.get("generation", 0) or set(counts.values()) != {want}:
        problems.append(f"Deployment not converged to {want} pods: {counts}")
    return problems


def workload_leftovers(lane: LaneSpec, dep: Obj | None) -> list[str]:
    """Kruise annotations, labels or finalizers left on the Deployment after a release."""
    meta = _meta(dep or {})
    left = sorted(k for k in meta.get("annotations") or {} if k.startswith(KRUISE_PREFIXES))
    left += sorted(
        k
        for k in meta.get("labels") or {}
        if k.startswith(KRUISE_PREFIXES) and k not in ALLOWED_WORKLOAD_LABELS[lane.style]
    )
    problems = [f"Kruise keys left on the Deployment: {left}"] if left else []
    if meta.get("finalizers"):
        problems.append(f"Deployment finalizers {meta.get('finalizers')}")
    return problems


def pods_problems(lane: LaneSpec, image: str, pods: Sequence[Obj]) -> list[str]:
    live = _live(pods)
    images = collections.Counter(image_of(p) for p in live)
    not_ready = sum(1 for p in live if not ready(p))
    if images == {image: lane.replicas} and not not_ready:
        return []
    return [f"pods {dict(images)} ({not_ready} not Ready), asked {lane.replicas} x {image}"]


def traffic_problems(
    lane: LaneSpec,
    originals: Originals,
    *,
    services: Sequence[Obj],
    ingresses: Sequence[Obj],
    routes: Sequence[Obj],
) -> list[str]:
    """Canary Services/Ingresses left, or the stable ones / the HTTPRoute not as the user wrote them."""
    problems = []
    want_services = {SERVICE} if lane.provider != Provider.NONE else set()
    names = {str(_meta(s).get("name")) for s in services}
    if names != want_services:
        problems.append(f"Services {sorted(names)}, expected {sorted(want_services)}")
    for svc in services:
        if _meta(svc).get("name") == SERVICE and (svc.get("spec") or {}).get("selector") != (
            originals.service_selector
        ):
            problems.append(f"Service {SERVICE} selector {(svc.get('spec') or {}).get('selector')}")
    want_ingresses = {INGRESS} if lane.provider == Provider.NGINX else set()
    names = {str(_meta(i).get("name")) for i in ingresses}
    if names != want_ingresses:
        problems.append(f"Ingresses {sorted(names)}, expected {sorted(want_ingresses)}")
    for ing in ingresses:
        now = {"annotations": _meta(ing).get("annotations") or {}, "spec": ing.get("spec")}
        if _meta(ing).get("name") == INGRESS and now != originals.ingress:
            problems.append(f"Ingress {INGRESS} changed: {now}")
    for route in routes:
        if route.get("spec") != originals.route_spec:
            problems.append(f"HTTPRoute {GATEWAY_ROUTE} not restored: {route.get('spec')}")
    for kind, objs in (("Service", services), ("Ingress", ingresses), ("HTTPRoute", routes)):
        for obj in objs:
            meta = _meta(obj)
            keys = sorted(k for k in (meta.get("annotations") or {}) if k.startswith(CONTROLLER_PREFIXES))
            if keys or meta.get("finalizers"):
                problems.append(
                    f"{kind} {meta.get('name')}: keys {keys}, finalizers {meta.get('finalizers')}"
                )
    return problems


def leftovers(
    *, canaries: Sequence[Obj], batch_releases: Sequence[Obj], replica_sets: Sequence[Obj], owner_uid: str
) -> list[str]:
    """Objects graylane created for a release that outlived it."""
    problems = []
    if canaries:
        problems.append(f"canary Deployments left: {sorted(str(_meta(d).get('name')) for d in canaries)}")
    if batch_releases:
        problems.append(f"BatchReleases left: {sorted(str(_meta(b).get('name')) for b in batch_releases)}")
    stray = sorted(
        str(_meta(rs).get("name"))
        for rs in replica_sets
        if _controller_uid(rs) != owner_uid and (rs.get("spec") or {}).get("replicas")
    )
    if stray:
        problems.append(f"ReplicaSets with pods not owned by the Deployment: {stray}")
    return problems
