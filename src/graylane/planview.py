"""What a Rollout will do, step by step, before anything is released (`graylane plan`).

For each step: the pods of each version (with the controller's own arithmetic from
`graylane.planner.weights`, so the plan and the release always agree), the traffic weight and matches
the step asks for, the objects graylane creates or patches (as Kruise does), the kind of pause, the
gate (metric analysis) that decides whether the release goes on, and what `undo` would do there.
Traffic objects are listed apart (`traffic_objects`) with the values the providers write: the canary
Ingress annotations of the built-in scripts and the HTTPRoute backendRef weights; custom objects name
the Lua script that rewrites them.

Pure: no I/O, no clock, no click. Input is a v1beta1 `Rollout` model and the workload's replica count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from graylane.api import keys
from graylane.api.analysis import Argument, RolloutAnalysis
from graylane.api.conversion import convert
from graylane.api.enums import HeaderMatchType, RollingStyle
from graylane.api.rollout_v1beta1 import (
    CanaryStep,
    HttpRouteMatch,
    Rollout,
    TrafficRoutingRef,
    is_real_partition,
)
from graylane.planner.partitions import new_pods
from graylane.planner.weights import canary_style_replicas, partition_style_replicas

__all__ = [
    "PlanError",
    "PlanView",
    "PlannedStep",
    "describe_matches",
    "gates",
    "ingress_annotations",
    "pause_kind",
    "plan_rollout",
    "replicas_of",
    "rollout_from_documents",
    "step_pods",
    "style_of",
]

NGINX_PREFIX: Final = "nginx.ingress.kubernetes.io"
ALB_PREFIX: Final = "alb.ingress.kubernetes.io"
_INGRESS_PREFIXES: Final = {
    "nginx": NGINX_PREFIX,
    "higress": NGINX_PREFIX,
    "mse": NGINX_PREFIX,
    "aliyun-alb": ALB_PREFIX,
}
COOKIE_HEADER: Final = "canary-by-cookie"


class PlanError(ValueError):
    """The input cannot be planned (no Rollout, unknown replicas...); the message says why."""


class PlannedStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    replicas: str
    stable_pods: int
    canary_pods: int
    traffic: str | None
    matches: list[str]
    pause: str
    gate: str  # the step's analysis, or "-"
    objects: list[str]
    traffic_objects: list[str]
    undo: str


class PlanView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    workload: str
    replicas: int
    style: str
    steps: list[PlannedStep]
    completion: str
    traffic_routings: list[str]
    gates: list[str]  # what each analysis decides, in order
    notes: list[str]


# -- arithmetic shared with the live view -----------------------------------------------------------


def style_of(rollout: Rollout) -> str:
    """`canary` (extra canary Deployment), `partition` (new pods in place) or `blue-green`."""
    if rollout.spec.strategy.rolling_style() is RollingStyle.BLUE_GREEN:
        return "blue-green"
    return "partition" if is_real_partition(rollout) else "canary"


def step_pods(rollout: Rollout, step: CanaryStep, replicas: int) -> tuple[int, int]:
    """(stable, canary) pods once `step` is done, as the BatchRelease controller computes them.

    Canary style adds canary pods next to every stable pod; partition style replaces old pods by new
    ones; blue-green brings new pods up alongside the old ones.
    """
    style = style_of(rollout)
    kind = rollout.spec.workload_ref.kind
    if style == "partition" and kind != "Deployment":  # the workload's own partition: old pods kept
        new = new_pods(kind, replicas, step.replicas or 0)
        return replicas - new, new
    if style == "partition":
        new = partition_style_replicas(step.replicas, replicas)
        return replicas - new, new
    if style == "canary":
        return replicas, canary_style_replicas(step.replicas, replicas)
    # Blue-green: maxSurge of the step's replicas, with the same cap as a partition (90% of 5 is 4).
    return replicas, partition_style_replicas(step.replicas, replicas)


def pause_kind(steps: Sequence[CanaryStep], index: int, *, blue_green: bool = False) -> str:
    """The pause after step `index` (1-based), as the step machine's StepPaused handler decides it
    (blue-green pauses at a last 100% step too: both versions are up until the user decides)."""
    step = steps[index - 1]
    if index == len(steps) and step.replicas == "100%" and not blue_green:
        return "none (last step at 100%)"
    if step.pause.duration is None:
        return "none (its analysis approves)" if step.analysis is not None else "approval"
    return f"{step.pause.duration}s"


def _templates(block: RolloutAnalysis) -> str:
    names = [("cluster " if t.cluster_scope else "") + t.template_name for t in block.templates]
    args = [f"{a.name}={a.value if a.value is not None else 'from ' + _source(a)}" for a in block.args]
    return ", ".join(names) + (f" ({', '.join(args)})" if args else "")


def _source(arg: Argument) -> str:
    source = arg.value_from
    if source is None:
        return "?"
    if source.pod_template_hash_value is not None:
        return f"{source.pod_template_hash_value} pod-template-hash"
    return source.field_ref.field_path if source.field_ref is not None else "?"


def gates(rollout: Rollout) -> list[str]:
    """What every analysis of the Rollout decides (planner/analysis.py), one line each."""
    lines = []
    for index, step in enumerate(rollout.spec.strategy.steps(), start=1):
        if step.analysis is not None:
            lines.append(
                f"step {index}: analysis {_templates(step.analysis)} - Successful: on"
                f"{' after ' + str(step.pause.duration) + 's' if step.pause.duration is not None else ''}; "
                "Failed: roll back to the stable version; Inconclusive or Error: wait for approval"
            )
    active = rollout.spec.strategy.active()
    background = active.analysis if active is not None else None
    if background is not None:
        lines.append(
            f"from step {background.starting_step or 1} to the end: background analysis "
            f"{_templates(background)} - Failed at any step: roll back; Inconclusive or Error: every "
            "later step waits for approval"
        )
    return lines


def describe_matches(matches: Iterable[HttpRouteMatch]) -> list[str]:
    """One readable line per match (matches are ORed, the conditions inside one are ANDed)."""
    return [" AND ".join(_conditions(m)) or "any request" for m in matches]


def _conditions(match: HttpRouteMatch) -> list[str]:
    out = [f"path {match.path.type or 'PathPrefix'} {match.path.value}"] if match.path else []
    for h in match.headers:
        out.append(f"header {h.name}{'~' if h.type == HeaderMatchType.REGULAR_EXPRESSION else '='}{h.value}")
    for q in match.query_params:
        out.append(f"query {q.name}{'~' if q.type == 'RegularExpression' else '='}{q.value}")
    return out


def _has_traffic(step: CanaryStep) -> bool:
    return step.traffic is not None or bool(step.matches)


def _weight(step: CanaryStep) -> int | None:
    if step.traffic is None:
        return None
    text = step.traffic.strip().rstrip("%")
    return int(text) if text.isdigit() else None


# -- traffic objects Kruise would create or patch ----------------------------------------------------


def ingress_annotations(
    class_type: str, weight: int | None, matches: Sequence[HttpRouteMatch]
) -> dict[str, str]:
    """The canary Ingress annotations of Kruise's built-in Lua scripts (nginx, higress, mse, aliyun-alb).

    Only the first header of each match counts, later matches overwrite earlier ones, and a header
    named `canary-by-cookie` becomes a cookie match, exactly as the scripts do.
    """
    prefix = _INGRESS_PREFIXES.get(class_type or "nginx")
    if prefix is None:
        return {}
    out = {f"{prefix}/canary": "true"}
    if weight is not None:
        out[f"{prefix}/canary-weight"] = str(weight)
    for match in matches:
        out.update(_header_annotations(prefix, match))
    if prefix == ALB_PREFIX:
        out[f"{prefix}/order"] = "1"
    return out


def _header_annotations(prefix: str, match: HttpRouteMatch) -> dict[str, str]:
    if not match.headers:
        return {}
    header = match.headers[0]
    if header.name == COOKIE_HEADER:
        return {f"{prefix}/canary-by-cookie": header.value}
    kind = "pattern" if header.type == HeaderMatchType.REGULAR_EXPRESSION else "value"
    return {f"{prefix}/canary-by-header": header.name, f"{prefix}/canary-by-header-{kind}": header.value}


def _canary_service(rollout: Rollout, ref: TrafficRoutingRef) -> str:
    return ref.service if rollout.spec.strategy.disable_generate_canary_service() else f"{ref.service}-canary"


def _route_objects(rollout: Rollout, ref: TrafficRoutingRef, step: CanaryStep, first: bool) -> list[str]:
    canary, weight = _canary_service(rollout, ref), _weight(step)
    out: list[str] = []
    if first:
        out.append(f"Service {ref.service}: selector += pod-template-hash=<stable revision>")
    if canary != ref.service:
        verb = "created (copy of the stable Service)" if first else "unchanged"
        out.append(f"Service {canary}: {verb}, selector pod-template-hash=<new revision>")
    if ref.ingress is not None:
        annotations = ingress_annotations(ref.ingress.effective_class_type, weight, step.matches)
        shown = ", ".join(f"{k}={v}" for k, v in annotations.items()) or (
            f"from the Lua script lua.traffic.routing.ingress.{ref.ingress.effective_class_type}"
        )
        out.append(
            f"Ingress {ref.ingress.name}-canary: {'created' if first else 'patched'}, annotations {shown}"
        )
    if ref.gateway is not None and ref.gateway.http_route_name:
        out.append(_httproute_line(ref.gateway.http_route_name, ref.service, canary, step, weight))
    for custom in ref.custom_network_refs:
        verb = "original kept in annotation original-spec-configuration, " if first else ""
        out.append(
            f"{custom.kind} {custom.name}: {verb}rewritten by the Lua script "
            f"lua.traffic.routing.{custom.kind}.{custom.api_version.split('/')[0]} "
            f"(canary weight {weight}, stable service {ref.service})"
        )
    return out


def _httproute_line(route: str, stable: str, canary: str, step: CanaryStep, weight: int | None) -> str:
    if step.matches:
        shown = " OR ".join(describe_matches(step.matches))
        return f"HTTPRoute {route}: canary rules appended, matching {shown} -> {canary}"
    w = weight or 0
    return f"HTTPRoute {route}: backendRefs {stable} weight {100 - w}, {canary} weight {w}"


def _restore_objects(rollout: Rollout) -> list[str]:
    out: list[str] = []
    for ref in rollout.spec.strategy.traffic_routings():
        out.append(
            f"Service {ref.service}: pod-template-hash selector removed; routes back to {ref.service} only"
        )
        canary = _canary_service(rollout, ref)
        if canary != ref.service:
            out.append(f"Service {canary}: deleted")
    return out


def _traffic_objects(rollout: Rollout, index: int) -> list[str]:
    """Routing starts on a step with traffic after one without; it is torn down on the step after."""
    steps = rollout.spec.strategy.steps()
    step = steps[index - 1]
    previous = steps[index - 2] if index > 1 else None
    routed_before = previous is not None and _has_traffic(previous)
    if not _has_traffic(step):
        return _restore_objects(rollout) if routed_before else []
    refs = rollout.spec.strategy.traffic_routings()
    return [line for ref in refs for line in _route_objects(rollout, ref, step, not routed_before)]


# -- workload objects and undo ---------------------------------------------------------------------


def _workload_objects(rollout: Rollout, index: int, canary_pods: int) -> list[str]:
    name, workload = rollout.metadata.get("name", ""), rollout.spec.workload_ref.name
    verb = "created" if index == 1 else "patched"
    out = [f"BatchRelease {name}: {verb}, batchPartition {index - 1}"]
    style = style_of(rollout)
    if style == "canary":
        made = "created from the Deployment's template, " if index == 1 else ""
        out.append(
            f"Deployment {workload}-xxxxx ({keys.CANARY_DEPLOYMENT_LABEL}={workload}): "
            f"{made}scaled to {canary_pods}"
        )
    elif style == "partition" and rollout.spec.workload_ref.kind == "Deployment":
        out.append(f"{rollout.spec.workload_ref.kind} {workload}: partition {canary_pods} new pods")
    elif style == "partition":
        out.append(
            f"{rollout.spec.workload_ref.kind} {workload}: partition keeps the old pods, {canary_pods} new"
        )
    else:
        out.append(
            f"{rollout.spec.workload_ref.kind} {workload}: maxSurge {canary_pods} (new pods held unavailable)"
        )
    return out


def _undo_text(rollout: Rollout, stable: int, canary: int, replicas: int) -> str:
    workload, style = rollout.spec.workload_ref.name, style_of(rollout)
    if style == "canary":
        text = (
            f"deployment/{workload} template back to the stable revision; the release is cancelled, "
            f"canary Deployment deleted ({canary} canary pods removed), {stable} stable pods untouched"
        )
    elif style == "partition":
        text = (
            f"{rollout.spec.workload_ref.kind.lower()}/{workload} back to the stable revision; the release "
            f"is cancelled and its {canary} new pods are replaced by stable ones, "
            f"ending with {replicas} stable pods"
        )
    else:
        text = (
            f"{workload} back to the stable revision; the {canary} new pods are removed, "
            f"{stable} stable pods stay"
        )
    if rollout.spec.strategy.traffic_routings():
        text += "; traffic is routed back to stable first"
    return text


def _completion(rollout: Rollout, replicas: int) -> str:
    workload = f"{rollout.spec.workload_ref.kind.lower()}/{rollout.spec.workload_ref.name}"
    style = style_of(rollout)
    if style == "canary":
        return (
            f"{workload} resumes and rolls all {replicas} pods to the new version natively; "
            "the canary Deployment is deleted"
        )
    if style == "partition":
        return (
            f"{workload} gets its own rolling update back; the remaining old pods are replaced: "
            f"{replicas} new pods"
        )
    return f"{workload} switches to the new version; old pods are scaled down: {replicas} new pods"


# -- the plan -----------------------------------------------------------------------------------------


def _planned_step(rollout: Rollout, index: int, replicas: int) -> PlannedStep:
    steps = rollout.spec.strategy.steps()
    step = steps[index - 1]
    stable, canary = step_pods(rollout, step, replicas)
    return PlannedStep(
        index=index,
        replicas=str(step.replicas if step.replicas is not None else "-"),
        stable_pods=stable,
        canary_pods=canary,
        traffic=step.traffic,
        matches=describe_matches(step.matches),
        pause=pause_kind(steps, index, blue_green=style_of(rollout) == "blue-green"),
        gate=f"analysis {_templates(step.analysis)}" if step.analysis is not None else "-",
        objects=_workload_objects(rollout, index, canary),
        traffic_objects=_traffic_objects(rollout, index),
        undo=_undo_text(rollout, stable, canary, replicas),
    )


def _notes(rollout: Rollout) -> list[str]:
    notes: list[str] = []
    if not rollout.spec.strategy.traffic_routings() and any(
        _has_traffic(s) for s in rollout.spec.strategy.steps()
    ):
        notes.append("steps ask for traffic but the Rollout has no trafficRoutings: only pods move")
    return notes


def _routing_names(rollout: Rollout) -> list[str]:
    out = []
    for ref in rollout.spec.strategy.traffic_routings():
        parts = [f"service {ref.service}"]
        if ref.ingress is not None:
            parts.append(f"ingress {ref.ingress.name} ({ref.ingress.effective_class_type})")
        if ref.gateway is not None and ref.gateway.http_route_name:
            parts.append(f"httproute {ref.gateway.http_route_name}")
        parts += [f"{c.kind.lower()} {c.name}" for c in ref.custom_network_refs]
        out.append(", ".join(parts))
    return out


def plan_rollout(rollout: Rollout, replicas: int) -> PlanView:
    """The whole plan of `rollout` for a workload of `replicas` pods."""
    steps = rollout.spec.strategy.steps()
    if not steps:
        raise PlanError("the Rollout has no steps to plan")
    ref = rollout.spec.workload_ref
    return PlanView(
        name=rollout.metadata.get("name", ""),
        namespace=rollout.metadata.get("namespace", ""),
        workload=f"{ref.kind.lower()}/{ref.name}",
        replicas=replicas,
        style=style_of(rollout),
        steps=[_planned_step(rollout, i, replicas) for i in range(1, len(steps) + 1)],
        completion=_completion(rollout, replicas),
        traffic_routings=_routing_names(rollout),
        gates=gates(rollout),
        notes=_notes(rollout),
    )


# -- reading a FILE -----------------------------------------------------------------------------------


def _is_rollout(doc: Mapping[str, Any]) -> bool:
    return doc.get("kind") == "Rollout" and doc.get("apiVersion") in (keys.V1ALPHA1, keys.V1BETA1)


def rollout_from_documents(docs: Iterable[Any]) -> tuple[Rollout, int | None]:
    """The one Rollout among `docs` (as v1beta1) and the replicas of its Deployment if one is there."""
    objects = [d for d in docs if isinstance(d, Mapping)]
    rollouts = [d for d in objects if _is_rollout(d)]
    if len(rollouts) != 1:
        raise PlanError(
            f"expected exactly one Rollout (rollouts.kruise.io/v1alpha1 or v1beta1), found {len(rollouts)}"
        )
    raw = dict(rollouts[0])
    if raw["apiVersion"] == keys.V1ALPHA1:
        raw = convert(raw, keys.V1BETA1)
    try:
        rollout = Rollout.from_obj(raw)
    except ValueError as err:
        raise PlanError(f"the Rollout is not valid: {err}") from err
    return rollout, replicas_of(objects, rollout)


def replicas_of(objects: Iterable[Mapping[str, Any]], rollout: Rollout) -> int | None:
    """The replicas of the Rollout's workload among `objects` (None when it is not there)."""
    ref = rollout.spec.workload_ref
    for obj in objects:
        if obj.get("kind") == ref.kind and (obj.get("metadata") or {}).get("name") == ref.name:
            if ref.kind == "DaemonSet":
                return None  # its pods are its nodes': read from the cluster, or --replicas
            replicas = (obj.get("spec") or {}).get("replicas")
            return 1 if replicas is None else int(replicas)
    return None
