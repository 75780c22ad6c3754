"""Reusable Rollout operations against the API: the verbs' I/O, shared by the CLI, the demo and tests.

Each write operation reads what it needs, lets a pure builder of `graylane.cli.patches` decide the
patch (or refuse), sends it, and returns the one line that reports what was done. Writes that must
apply to the state that was read carry its resourceVersion; on a 409 the operation reads again and
re-decides (a few times). Read operations gather the objects a view needs into a `Snapshot`.

This module must not print, import click, or decide anything a pure builder can decide. Errors from
the API server propagate as `ApiError`; refusals as `patches.Refused`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Final

from graylane.api import keys
from graylane.api.conversion import convert
from graylane.api.rollout_v1beta1 import Rollout
from graylane.api.workloads import SUPPORTED
from graylane.cli import patches, revisions
from graylane.cli.patches import Obj, Refused
from graylane.cli.view_model import Snapshot
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.events import CORE_EVENT
from graylane.kube.resources import Resource
from graylane.observe.workload_resources import resource_for
from graylane.planview import PlanError
from graylane.telemetry.routed import ObjectRef, Routed, objects_to_read, read_back

__all__ = [
    "QUALIFIED",
    "History",
    "Loaded",
    "abort",
    "approve",
    "gather_history",
    "gather_status",
    "list_rollouts",
    "load_rollout",
    "parse_name",
    "pause",
    "plan_input",
    "promote_full",
    "read_routed",
    "read_runs",
    "replicas_of",
    "restart",
    "resume",
    "retry",
    "sign_writes",
    "undo",
    "workload_replicas",
]

QUALIFIED: Final = "rollout.rollouts.kruise.io"
CONTROLLER_REVISION: Final = Resource("apps", "v1", "controllerrevisions", "ControllerRevision")
ATTEMPTS: Final = 3
_ROLLOUT_TYPES: Final = (
    "rollout",
    "rollouts",
    "ro",
    "rollout.rollouts.kruise.io",
    "rollouts.rollouts.kruise.io",
)


CLI_FIELD_MANAGER: Final = "graylane-cli"


async def sign_writes(client: KubeClient) -> None:
    """Make the client's writes carry `graylane-cli:<user>` as field manager, the user being who the API
    server authenticated (a SelfSubjectReview): the controller's user-action Events name it."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await client.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            resource="selfsubjectreviews",
            body=review,
        )
        user = str(((answer or {}).get("status") or {}).get("userInfo", {}).get("username") or "")
    except ApiError:  # an old API server or no permission: the writes are still ours
        user = ""
    # A field manager is at most 128 printable characters.
    client.field_manager = f"{CLI_FIELD_MANAGER}:{user}"[:128] if user else CLI_FIELD_MANAGER


def parse_name(arg: str) -> str:
    """`NAME` or `rollout/NAME` (kubectl's TYPE/NAME); any other type is refused."""
    if "/" not in arg:
        return arg
    kind, _, name = arg.partition("/")
    if kind.lower() not in _ROLLOUT_TYPES or not name:
        raise Refused(f"only rollouts are supported here: got {arg!r} (use NAME or rollout/NAME)")
    return name


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A Rollout as served (`raw`, from `resource`) and as the v1beta1 model every builder reads."""

    raw: Obj
    resource: r.Resource
    rollout: Rollout

    @property
    def name(self) -> str:
        return str(self.raw["metadata"]["name"])


async def load_rollout(client: KubeClient, namespace: str, name: str) -> Loaded:
    """Read the Rollout as v1beta1 (the storage version), or as v1alpha1 where only that is served."""
    try:
        raw = await client.get(r.ROLLOUT, name, namespace)
        return Loaded(raw, r.ROLLOUT, Rollout.from_obj(raw))
    except ApiError as err:
        if not err.not_found:
            raise
        first = err
    try:
        raw = await client.get(r.ROLLOUT_V1ALPHA1, name, namespace)
    except ApiError as err:
        raise first if err.not_found else err from None
    return Loaded(raw, r.ROLLOUT_V1ALPHA1, Rollout.from_obj(convert(raw, keys.V1BETA1)))


async def _retrying(attempt: Callable[[], Awaitable[str]]) -> str:
    """Run `attempt` again (it re-reads) when a write lost a race (409)."""
    for i in range(ATTEMPTS):
        try:
            return await attempt()
        except ApiError as err:
            if not err.conflict or i == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _done(name: str, what: str) -> str:
    return f"{QUALIFIED}/{name} {what}"


# -- approve / pause / resume ------------------------------------------------------------------------


async def approve(client: KubeClient, namespace: str, name: str) -> str:
    async def attempt() -> str:
        loaded = await load_rollout(client, namespace, name)
        patch = patches.build_approve_patch(loaded.rollout)
        if patch is None:
            return _done(name, "already approved")
        await client.patch(loaded.resource, name, patch, namespace, subresource="status")
        return _done(name, "approved")

    return await _retrying(attempt)


async def _set_paused(client: KubeClient, namespace: str, name: str, *, paused: bool) -> str:
    loaded = await load_rollout(client, namespace, name)
    build = patches.build_pause_patch if paused else patches.build_resume_patch
    patch = build(loaded.rollout)
    word = "paused" if paused else "resumed"
    if patch is None:
        return _done(name, f"already {word}")
    await client.patch(loaded.resource, name, patch, namespace)
    return _done(name, word)


async def promote_full(
    client: KubeClient,
    namespace: str,
    name: str,
    *,
    timeout: float,
    interval: float = 1.0,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """Skip every remaining step: jump to the last one, approve its pause, until the release completes.

    Bounded by `timeout` seconds (TimeoutError); `say` hears each move as it is made.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    moved = False
    while True:
        loaded = await load_rollout(client, namespace, name)
        try:
            patch = patches.build_full_promote_step(loaded.rollout)
        except Refused:
            if moved:  # the release finished (or was cancelled) under our moves: report where it ended
                return _done(name, f"promoted fully; phase {loaded.rollout.status.phase}")
            raise
        sub = loaded.rollout.status.sub_status()
        if sub is not None and sub.current_step_state == "Completed":
            return _done(name, "promoted fully: all steps done, the release is finalising")
        if patch is not None:
            await _status_patch_or_conflict(client, loaded, patch)
            moved = True
            say(f"{_done(name, _move_words(patch))}")
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"rollout {name} did not complete its steps within {timeout:.0f}s")
        await asyncio.sleep(interval)


def _move_words(patch: Obj) -> str:
    sub = next(iter(patch["status"].values()))
    if "nextStepIndex" in sub:
        return f"jumped to the last step ({sub['nextStepIndex']})"
    return "approved"


async def _status_patch_or_conflict(client: KubeClient, loaded: Loaded, patch: Obj) -> None:
    """A lost race (409) just means the next loop re-reads and decides again."""
    try:
        await client.patch(
            loaded.resource, loaded.name, patch, loaded.raw["metadata"]["namespace"], subresource="status"
        )
    except ApiError as err:
        if not err.conflict:
            raise


async def pause(client: KubeClient, namespace: str, name: str) -> str:
    return await _set_paused(client, namespace, name, paused=True)


async def resume(client: KubeClient, namespace: str, name: str) -> str:
    return await _set_paused(client, namespace, name, paused=False)


# -- the workload ------------------------------------------------------------------------------------


async def _deployment(client: KubeClient, namespace: str, rollout: Rollout) -> Obj:
    ref = rollout.spec.workload_ref
    if (ref.api_version, ref.kind) != ("apps/v1", "Deployment"):
        raise Refused(f"this verb works on Deployments; {ref.kind} {ref.name} has `graylane undo` instead")
    return await client.get(r.DEPLOYMENT, ref.name, namespace)


def _workload_resource(rollout: Rollout) -> r.Resource:
    """The resource of the Rollout's workload, in the version its workloadRef names; refused when it is
    not a kind graylane releases."""
    ref = rollout.spec.workload_ref
    resource = resource_for(ref.api_version, ref.kind)
    if resource is None:
        raise Refused(
            f"{ref.kind} ({ref.api_version}) is not a kind graylane releases; supported: {SUPPORTED}"
        )
    return resource


def _owners(obj: Obj) -> list[Obj]:
    return list(obj["metadata"].get("ownerReferences") or [])


def _is_deployment(rollout: Rollout) -> bool:
    ref = rollout.spec.workload_ref
    return (ref.api_version, ref.kind) == ("apps/v1", "Deployment")


async def _owned_revisions(client: KubeClient, namespace: str, owner: Obj) -> list[Obj]:
    """The ControllerRevisions whose controller is `owner` (a StatefulSet's, DaemonSet's, OpenKruise's)."""
    uid = owner["metadata"].get("uid")
    listed = await client.list(CONTROLLER_REVISION, namespace)
    return [
        cr
        for cr in listed.get("items", [])
        if any(
            o.get("uid") == uid and o.get("controller") for o in cr["metadata"].get("ownerReferences") or []
        )
    ]


async def _owned_replica_sets(client: KubeClient, namespace: str, owner: Obj) -> list[Obj]:
    uid = owner["metadata"].get("uid")
    listed = await client.list(r.REPLICASET, namespace)
    return [
        rs
        for rs in listed.get("items", [])
        if any(
            o.get("uid") == uid and o.get("controller") for o in rs["metadata"].get("ownerReferences") or []
        )
    ]


def _undo_target(rollout: Rollout, replica_sets: list[Obj], to_revision: int) -> tuple[Obj, str]:
    """The ReplicaSet to go back to: the release's stable one, else kubectl's previous revision."""
    sub = rollout.status.sub_status()
    if patches.release_in_progress(rollout) and sub is not None and not to_revision:
        rs = patches.stable_replica_set(replica_sets, sub.stable_revision)
        if rs is None:
            raise Refused(f"the stable ReplicaSet (pod-template-hash {sub.stable_revision}) is gone")
        return rs, "stable"
    return patches.previous_replica_set(replica_sets, to_revision), "previous"


# -- undo / abort / retry / restart ------------------------------------------------------------------


async def undo(
    client: KubeClient, namespace: str, name: str, *, fast: bool = False, to_revision: int = 0
) -> str:
    if fast:
        return await _retrying(lambda: _fast_undo(client, namespace, name))
    return await _retrying(lambda: _undo(client, namespace, name, to_revision))


async def _fast_undo(client: KubeClient, namespace: str, name: str) -> str:
    loaded = await load_rollout(client, namespace, name)
    patch = patches.build_fast_undo_patch(loaded.rollout)
    await client.patch(loaded.resource, name, patch, namespace, subresource="status")
    target = patch["status"]["blueGreenStatus"]["nextStepIndex"]
    return _done(name, f"rolled back (fast): nextStepIndex {target}, traffic follows that step's")


async def _undo(client: KubeClient, namespace: str, name: str, to_revision: int) -> str:
    loaded = await load_rollout(client, namespace, name)
    if not _is_deployment(loaded.rollout):
        return await _undo_kind(client, namespace, loaded, to_revision)
    deployment = await _deployment(client, namespace, loaded.rollout)
    replica_sets = await _owned_replica_sets(client, namespace, deployment)
    target, which = _undo_target(loaded.rollout, replica_sets, to_revision)
    revision = patches.revision_of(target)
    patch = patches.build_undo_patch(deployment, target["spec"]["template"])
    if patch is None:
        return _done(name, f"skipped rollback (current template already matches revision {revision})")
    await client.patch(r.DEPLOYMENT, deployment["metadata"]["name"], patch, namespace, patch_type="json")
    after = "the release is cancelled" if which == "stable" else "the Rollout releases it through its steps"
    return _done(
        name,
        f"rolled back: deployment/{deployment['metadata']['name']} to {which} revision {revision}; {after}",
    )


async def _undo_kind(client: KubeClient, namespace: str, loaded: Loaded, to_revision: int) -> str:
    """A StatefulSet, DaemonSet or OpenKruise workload back to a ControllerRevision's template."""
    resource = _workload_resource(loaded.rollout)
    workload = await client.get(resource, loaded.rollout.spec.workload_ref.name, namespace)
    history = await _owned_revisions(client, namespace, workload)
    target, which = revisions.undo_target(loaded.rollout, history, to_revision)
    number = target.get("revision") or "-"
    patch = revisions.build_template_patch(workload, revisions.revision_template(target))
    kind = f"{resource.kind.lower()}/{workload['metadata']['name']}"
    if patch is None:
        return _done(loaded.name, f"skipped rollback (current template already matches revision {number})")
    await client.patch(resource, workload["metadata"]["name"], patch, namespace, patch_type="json")
    after = "the release is cancelled" if which == "stable" else "the Rollout releases it through its steps"
    return _done(loaded.name, f"rolled back: {kind} to {which} revision {number}; {after}")


async def abort(client: KubeClient, namespace: str, name: str) -> str:
    """Argo's abort mapped onto Kruise: remember the release, then `undo` it to the stable revision."""

    async def attempt() -> str:
        loaded = await load_rollout(client, namespace, name)
        patches.check_abortable(loaded.rollout)
        deployment = await _deployment(client, namespace, loaded.rollout)
        replica_sets = await _owned_replica_sets(client, namespace, deployment)
        stable, _ = _undo_target(loaded.rollout, replica_sets, 0)
        record = patches.build_abort_record_patch(deployment["spec"]["template"], stable["spec"]["template"])
        patch = patches.build_undo_patch(deployment, stable["spec"]["template"])
        await client.patch(loaded.resource, name, record, namespace)
        if patch is not None:
            await client.patch(
                r.DEPLOYMENT, deployment["metadata"]["name"], patch, namespace, patch_type="json"
            )
        return _done(
            name,
            f"aborted: deployment/{deployment['metadata']['name']} back to the stable revision, the release "
            f"is cancelled (Kruise has no abort: this is undo); `graylane retry {name}` starts it again",
        )

    return await _retrying(attempt)


async def retry(client: KubeClient, namespace: str, name: str) -> str:
    """Start an aborted release again from step 1 by re-applying the template `abort` recorded."""

    async def attempt() -> str:
        loaded = await load_rollout(client, namespace, name)
        record = patches.check_retryable(loaded.rollout)
        deployment = await _deployment(client, namespace, loaded.rollout)
        patch = patches.build_retry_patch(deployment, record)
        await client.patch(r.DEPLOYMENT, deployment["metadata"]["name"], patch, namespace, patch_type="json")
        await client.patch(loaded.resource, name, patches.build_clear_abort_record_patch(), namespace)
        return _done(
            name,
            f"retried: deployment/{deployment['metadata']['name']} set to the aborted release again; "
            "it restarts at step 1",
        )

    return await _retrying(attempt)


async def restart(client: KubeClient, namespace: str, name: str, now: dt.datetime) -> str:
    loaded = await load_rollout(client, namespace, name)
    deployment = await _deployment(client, namespace, loaded.rollout)
    patch = patches.build_restart_patch(deployment, loaded.rollout, now)
    await client.patch(r.DEPLOYMENT, deployment["metadata"]["name"], patch, namespace, patch_type="strategic")
    return _done(
        name,
        f"restarted: deployment/{deployment['metadata']['name']} pods are replaced "
        "through the rollout's steps",
    )


# -- reads -------------------------------------------------------------------------------------------


def _selector(workload: Obj) -> str:
    """A label selector string from the workload's `spec.selector` (matchLabels and matchExpressions)."""
    sel = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                op, f"!{key}"
            )
        )
    return ",".join(parts)


async def _workload_or_none(client: KubeClient, namespace: str, rollout: Rollout) -> Obj | None:
    ref = rollout.spec.workload_ref
    resource = resource_for(ref.api_version, ref.kind)
    if resource is None:
        return None
    try:
        return await client.get_or_none(resource, ref.name, namespace)
    except ApiError as err:
        if err.not_found:  # the kind is not served here (OpenKruise's CRDs not installed)
            return None
        raise


async def gather_status(client: KubeClient, namespace: str, name: str) -> Snapshot:
    loaded = await load_rollout(client, namespace, name)
    workload = await _workload_or_none(client, namespace, loaded.rollout)
    pods: list[Obj] = []
    selector = _selector(workload) if workload is not None else ""
    if selector:
        pods = (await client.list(r.POD, namespace, label_selector=selector)).get("items", [])
    events = await client.list(
        CORE_EVENT, namespace, field_selector=f"involvedObject.kind=Rollout,involvedObject.name={name}"
    )
    routed = await read_routed(client, namespace, loaded.rollout)
    runs = await read_runs(client, namespace, loaded.rollout)
    return Snapshot(loaded.rollout, workload, pods, events.get("items", []), tuple(routed), tuple(runs))


async def read_runs(client: KubeClient, namespace: str, rollout: Rollout) -> list[Obj]:
    """The Rollout's AnalysisRuns (owned by it); none when the analysis CRD is absent or not readable."""
    uid = rollout.metadata.get("uid")
    try:
        listed = await client.list(r.ANALYSIS_RUN, namespace)
    except ApiError as err:
        if err.not_found or err.code == 403:
            return []
        raise
    return [
        run
        for run in listed.get("items", [])
        if any(o.get("uid") == uid for o in (run.get("metadata") or {}).get("ownerReferences") or [])
    ]


_KNOWN: Final = {
    ("networking.k8s.io", "Ingress"): [r.INGRESS],
    # HTTPRoutes are served as v1 by current Gateway API CRDs, as v1beta1 by the ones Kruise was built on.
    ("gateway.networking.k8s.io", "HTTPRoute"): [
        r.HTTPROUTE,
        dataclasses.replace(r.HTTPROUTE, version="v1beta1"),
    ],
}


async def _resources_for(client: KubeClient, ref: ObjectRef) -> list[r.Resource]:
    group, _, version = ref.api_version.rpartition("/")
    if (group, ref.kind) in _KNOWN:
        return _KNOWN[(group, ref.kind)]
    try:
        listing = await client.request("GET", f"/apis/{ref.api_version}", resource="discovery")
    except ApiError as err:
        if err.not_found:
            return []
        raise
    for item in (listing or {}).get("resources") or []:
        if item.get("kind") == ref.kind and "/" not in str(item.get("name")):
            return [r.Resource(group, version, str(item["name"]), ref.kind, bool(item.get("namespaced")))]
    return []


async def read_routed(client: KubeClient, namespace: str, rollout: Rollout) -> list[Routed]:
    """The traffic the Rollout's provider objects route now, read from those objects."""
    found: dict[ObjectRef, Obj | None] = {}
    for ref in objects_to_read(rollout):
        found[ref] = None
        for res in await _resources_for(client, ref):
            found[ref] = await client.get_or_none(res, ref.name, namespace)
            if found[ref] is not None:
                break
    return read_back(rollout, found)


@dataclasses.dataclass(frozen=True)
class History:
    """A Deployment's ReplicaSets (`owned`, `canary`), or another kind's ControllerRevisions and pods."""

    rollout: Rollout
    workload: Obj
    owned: list[Obj]
    canary: list[Obj]
    revisions: list[Obj] = dataclasses.field(default_factory=list)
    pods: list[Obj] = dataclasses.field(default_factory=list)


async def gather_history(client: KubeClient, namespace: str, name: str) -> History:
    """The workload's ReplicaSets, and those of the canary Deployments of a canary-style release; for
    other kinds their ControllerRevisions and pods."""
    loaded = await load_rollout(client, namespace, name)
    if not _is_deployment(loaded.rollout):
        resource = _workload_resource(loaded.rollout)
        workload = await client.get(resource, loaded.rollout.spec.workload_ref.name, namespace)
        selector = _selector(workload)
        listed = await client.list(r.POD, namespace, label_selector=selector) if selector else {}
        history = await _owned_revisions(client, namespace, workload)
        return History(loaded.rollout, workload, [], [], history, list(listed.get("items") or []))
    workload = await _deployment(client, namespace, loaded.rollout)
    owned = await _owned_replica_sets(client, namespace, workload)
    label = f"{keys.CANARY_DEPLOYMENT_LABEL}={workload['metadata']['name']}"
    canaries = (await client.list(r.DEPLOYMENT, namespace, label_selector=label)).get("items", [])
    canary_sets = [rs for dep in canaries for rs in await _owned_replica_sets(client, namespace, dep)]
    return History(loaded.rollout, workload, owned, canary_sets)


async def list_rollouts(client: KubeClient, namespace: str | None) -> list[Obj]:
    """Every Rollout of `namespace` (all namespaces for None), sorted by namespace and name."""
    items = (await client.list(r.ROLLOUT, namespace)).get("items", [])
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


async def workload_replicas(client: KubeClient, namespace: str, rollout: Rollout) -> int:
    """The replicas of the Rollout's workload as it is in the cluster (PlanError when it is not there)."""
    workload = await _workload_or_none(client, namespace, rollout)
    if workload is None:
        ref = rollout.spec.workload_ref
        raise PlanError(
            f"rollout {rollout.metadata.get('name', '')}: {ref.kind} {namespace}/{ref.name} is neither in "
            "the file nor in the cluster; add it to the file or pass --replicas"
        )
    return replicas_of(workload)


async def plan_input(client: KubeClient, namespace: str, name: str) -> tuple[Rollout, int]:
    """A Rollout from the cluster, namespace filled in, and its workload's replicas."""
    loaded = await load_rollout(client, namespace, name)
    workload = await _workload_or_none(client, namespace, loaded.rollout)
    if workload is None:
        raise PlanError(f"the workload of rollout {name} was not found; pass --replicas")
    return loaded.rollout, replicas_of(workload)


def replicas_of(workload: Obj) -> int:
    """spec.replicas (defaulted to 1); a DaemonSet's are the nodes it runs on (desiredNumberScheduled)."""
    if workload.get("kind") == "DaemonSet":
        return int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (workload.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)
