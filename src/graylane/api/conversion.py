"""CRD version conversion (v1alpha1 <-> v1beta1) for Rollout and BatchRelease, on plain JSON dicts.

What this module does: ``convert(obj, to_api_version)`` is what the ``/convert`` webhook applies to each
object of a ConversionReview. It follows Kruise's ``ConvertTo`` / ``ConvertFrom`` field by field and
writes what Go's encoder would write (fields without ``omitempty`` always present, zero values of
``omitempty`` fields left out, unknown spec/status fields dropped). ``metadata`` is deep-copied as is, so
unknown metadata fields survive; the only metadata changes are the annotations Kruise writes.

Rollout, v1alpha1 -> v1beta1:
- ``spec.objectRef.workloadRef`` -> ``spec.workloadRef``; ``disabled``, ``paused``, ``failureThreshold``,
  ``trafficRoutings`` (service, grace period, ingress, gateway, custom refs) and
  ``patchPodTemplateMetadata`` are copied; ``spec.rolloutID`` is dropped (Kruise ignores it).
- each step: ``weight: W`` -> ``traffic: "W%"``, and ``replicas: "W%"`` when ``replicas`` is unset;
  ``replicas``, ``pause``, ``requestHeaderModifier`` and header matches are copied.
- ``enableExtraWorkloadForCanary`` = NOT (``rollouts.kruise.io/rolling-style`` equals "partition", any
  case): a v1alpha1 Rollout without the annotation is canary style (extra canary Deployment).
- ``trafficRoutingRef`` <- ``rollouts.kruise.io/trafficrouting`` when non-empty.
- status: observedGeneration, phase, message, conditions and ``canaryStatus`` copied field by field;
  the top-level ``currentStepIndex`` / ``currentStepState`` mirror ``canaryStatus`` (0 / "" without it).
Rollout, v1beta1 -> v1alpha1:
- a blue-green (or empty) strategy cannot be expressed: only metadata is copied, spec and status are
  the zero values (``{"objectRef": {}, "strategy": {}, "disabled": false}`` / ``{}``).
- ``traffic: "W%"`` -> ``weight: W`` (a value that is not a whole percentage becomes 0, as in Go);
  ``path`` and ``queryParams`` of matches are dropped (a path-only match becomes ``{}``), as are
  ``additionalParams`` and ``blueGreenStatus`` and the top-level step mirror.
- annotation ``rolling-style`` := "canary" if ``enableExtraWorkloadForCanary`` else "partition";
  annotation ``trafficrouting`` := ``trafficRoutingRef`` when non-empty.
BatchRelease: ``spec.targetReference.workloadRef`` <-> ``spec.workloadRef``; release plan copied; going
up, ``releasePlan.rollingStyle`` comes from the ``rolling-style`` annotation ("Partition", "Canary",
"BlueGreen" by case-insensitive match, else unset; the v1alpha1 field itself is ignored, as in Kruise);
going down, the annotation is set to the lower-cased ``rollingStyle`` and the field is copied.
``status.message`` exists in v1beta1 only.

graylane's analysis fields (``steps[].analysis`` and ``canary.analysis``, absent from Kruise's API) are
copied as they are in both directions, so a Rollout keeps its analysis whichever version a client uses;
a Rollout without them converts exactly as before.

Deliberate differences from Kruise: ``canary.disableGenerateCanaryService`` (present in both versions'
CRDs) is carried across, where Kruise's conversion loses it; a missing workload reference or v1alpha1
``canary`` is treated as empty, where Kruise's Go code would dereference nil and fail the request.

What it must not do: do I/O, or touch anything but the converted object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graylane.api import keys
from graylane.api._convert_base import (
    FieldSpec,
    Obj,
    annotations_of,
    child,
    children,
    conditions,
    copy_metadata,
    equal_fold,
    make_object,
    object_ref,
    patch_metadata,
    project,
    put_nonempty,
)
from graylane.api.common import GoTag, percent, scaled_int_or_percent

__all__ = ["SUPPORTED_KINDS", "SUPPORTED_VERSIONS", "ConversionError", "convert"]

SUPPORTED_KINDS: Final = ("Rollout", "BatchRelease")
SUPPORTED_VERSIONS: Final = (keys.V1ALPHA1, keys.V1BETA1)


_COMMON_SUB_STATUS: Final[Sequence[FieldSpec]] = (
    ("observedWorkloadGeneration", None, 0),
    ("observedRolloutID", None, ""),
    ("rolloutHash", None, ""),
    ("stableRevision", None, ""),
    ("podTemplateHash", GoTag.ALWAYS, ""),
    ("currentStepIndex", GoTag.ALWAYS, 0),
    ("nextStepIndex", GoTag.ALWAYS, 0),
    ("finalisingStep", GoTag.ALWAYS, ""),
    ("currentStepState", GoTag.ALWAYS, ""),
    ("message", None, ""),
    ("lastUpdateTime", GoTag.POINTER, None),
)
_CANARY_STATUS: Final[Sequence[FieldSpec]] = (
    *_COMMON_SUB_STATUS,
    ("canaryRevision", GoTag.ALWAYS, ""),
    ("canaryReplicas", GoTag.ALWAYS, 0),
    ("canaryReadyReplicas", GoTag.ALWAYS, 0),
)
_ROUTING_REF: Final[Sequence[FieldSpec]] = (("service", GoTag.ALWAYS, ""), ("gracePeriodSeconds", None, 0))
_INGRESS: Final[Sequence[FieldSpec]] = (("classType", None, ""), ("name", GoTag.ALWAYS, ""))
_BATCH: Final[Sequence[FieldSpec]] = (("canaryReplicas", GoTag.ALWAYS, 0),)
_PLAN_HEAD: Final[Sequence[FieldSpec]] = (
    ("batchPartition", GoTag.POINTER, None),
    ("rolloutID", None, ""),
    ("failureThreshold", GoTag.POINTER, None),
    ("finalizingPolicy", None, ""),
)
_BATCH_STATUS: Final[Sequence[FieldSpec]] = (
    ("batchState", None, ""),
    ("currentBatch", GoTag.ALWAYS, 0),
    ("batchReadyTime", GoTag.POINTER, None),
    ("updatedReplicas", None, 0),
    ("updatedReadyReplicas", None, 0),
    ("noNeedUpdateReplicas", GoTag.POINTER, None),
)
_BR_STATUS_TAIL: Final[Sequence[FieldSpec]] = (
    ("stableRevision", None, ""),
    ("updateRevision", None, ""),
    ("observedGeneration", None, 0),
    ("observedRolloutID", None, ""),
    ("observedWorkloadReplicas", None, 0),
    ("collisionCount", GoTag.POINTER, None),
    ("observedReleasePlanHash", None, ""),
    ("phase", None, ""),
)
_BR_ROLLING_STYLES: Final = ("Partition", "Canary", "BlueGreen")


class ConversionError(ValueError):
    """The object cannot be converted: unsupported kind or API version."""


def convert(obj: Mapping[str, Any], to_api_version: str) -> Obj:
    """Convert a Rollout or BatchRelease dict to ``to_api_version``; the input is never modified.

    Same version in and out returns a deep copy. Raises ``ConversionError`` for anything else than
    ``rollouts.kruise.io/v1alpha1`` / ``v1beta1`` Rollouts and BatchReleases.
    """
    kind, from_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in SUPPORTED_KINDS:
        raise ConversionError(f"cannot convert kind {kind!r}: only {' and '.join(SUPPORTED_KINDS)} convert")
    for version in (from_version, to_api_version):
        if version not in SUPPORTED_VERSIONS:
            raise ConversionError(f"cannot convert {kind} to or from {version!r}: unsupported API version")
    if from_version == to_api_version:
        return copy.deepcopy(dict(obj))
    up = to_api_version == keys.V1BETA1
    if kind == "Rollout":
        return _rollout_up(obj) if up else _rollout_down(obj)
    return _batch_release_up(obj) if up else _batch_release_down(obj)


# --- Rollout -----------------------------------------------------------------------------------------


def _traffic_routing_ref(ref: Mapping[str, Any], *, keep_additional: bool) -> Obj:
    out = project(ref, _ROUTING_REF)
    if isinstance(ref.get("ingress"), Mapping):
        out["ingress"] = project(child(ref, "ingress"), _INGRESS)
        if ref.get("type") and not out["ingress"].get("classType"):  # v0.1's `type` (see rollout_v1alpha1)
            out["ingress"]["classType"] = ref["type"]
    if isinstance(ref.get("gateway"), Mapping):
        out["gateway"] = project(child(ref, "gateway"), (("httpRouteName", GoTag.POINTER, None),))
    put_nonempty(out, "customNetworkRefs", [object_ref(r) for r in children(ref, "customNetworkRefs")])
    if keep_additional:
        put_nonempty(out, "additionalParams", copy.deepcopy(dict(child(ref, "additionalParams"))))
    return out


def _pause(step: Mapping[str, Any]) -> Obj:
    return project(child(step, "pause"), (("duration", GoTag.POINTER, None),))


def _header_matches(step: Mapping[str, Any]) -> list[Obj]:
    matches: list[Obj] = []
    for match in children(step, "matches"):
        out: Obj = {}
        put_nonempty(out, "headers", copy.deepcopy(match.get("headers")))
        matches.append(out)
    return matches


def _step_up(step: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    weight, replicas = step.get("weight"), step.get("replicas")
    if weight is not None:
        out["traffic"] = percent(weight)
    if step.get("requestHeaderModifier") is not None:
        out["requestHeaderModifier"] = copy.deepcopy(step["requestHeaderModifier"])
    put_nonempty(out, "matches", _header_matches(step))
    if replicas is None and weight is not None:
        replicas = percent(weight)
    if replicas is not None:
        out["replicas"] = replicas
    out["pause"] = _pause(step)
    _copy_analysis(step, out)
    return out


def _weight_from_traffic(traffic: str) -> int:
    try:
        return scaled_int_or_percent(str(traffic), 100, round_up=True)
    except ValueError:
        # Kruise ignores the parse error and keeps the zero value.
        return 0


def _step_down(step: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    if step.get("traffic") is not None:
        out["weight"] = _weight_from_traffic(step["traffic"])
    if step.get("requestHeaderModifier") is not None:
        out["requestHeaderModifier"] = copy.deepcopy(step["requestHeaderModifier"])
    put_nonempty(out, "matches", _header_matches(step))
    if step.get("replicas") is not None:
        out["replicas"] = step["replicas"]
    out["pause"] = _pause(step)
    _copy_analysis(step, out)
    return out


def _copy_analysis(src: Mapping[str, Any], out: Obj) -> None:
    # graylane's own field: the same shape in both versions.
    if isinstance(src.get("analysis"), Mapping):
        out["analysis"] = copy.deepcopy(dict(src["analysis"]))


def _canary_common(canary: Mapping[str, Any], *, up: bool) -> Obj:
    out: Obj = {}
    put_nonempty(out, "steps", [(_step_up if up else _step_down)(step) for step in children(canary, "steps")])
    refs = [_traffic_routing_ref(ref, keep_additional=False) for ref in children(canary, "trafficRoutings")]
    put_nonempty(out, "trafficRoutings", refs)
    if canary.get("failureThreshold") is not None:
        out["failureThreshold"] = canary["failureThreshold"]
    patch = patch_metadata(canary.get("patchPodTemplateMetadata"))
    if patch is not None:
        out["patchPodTemplateMetadata"] = patch
    return out


def _canary_up(canary: Mapping[str, Any], annotations: Mapping[str, Any]) -> Obj:
    out = _canary_common(canary, up=True)
    if not equal_fold(str(annotations.get(keys.ROLLING_STYLE_ANNOTATION, "")), "partition"):
        out["enableExtraWorkloadForCanary"] = True
    put_nonempty(out, "trafficRoutingRef", annotations.get(keys.TRAFFIC_ROUTING_ANNOTATION))
    put_nonempty(out, "disableGenerateCanaryService", bool(canary.get("disableGenerateCanaryService")))
    _copy_analysis(canary, out)
    return out


def _canary_down(canary: Mapping[str, Any]) -> Obj:
    out = _canary_common(canary, up=False)
    put_nonempty(out, "disableGenerateCanaryService", bool(canary.get("disableGenerateCanaryService")))
    _copy_analysis(canary, out)
    return out


def _strategy(paused: Any, canary: Obj) -> Obj:
    out: Obj = {}
    put_nonempty(out, "paused", bool(paused))
    out["canary"] = canary
    return out


def _rollout_status_up(status: Mapping[str, Any]) -> Obj:
    out = project(status, (("observedGeneration", None, 0),))
    canary = status.get("canaryStatus")
    if isinstance(canary, Mapping):
        out["canaryStatus"] = project(canary, _CANARY_STATUS)
    put_nonempty(out, "conditions", conditions(status))
    out.update(project(status, (("phase", None, ""), ("message", None, ""))))
    mirror = out.get("canaryStatus", {})
    out["currentStepIndex"] = mirror.get("currentStepIndex", 0)
    out["currentStepState"] = mirror.get("currentStepState", "")
    return out


def _rollout_status_down(status: Mapping[str, Any]) -> Obj:
    out = project(status, (("observedGeneration", None, 0),))
    canary = status.get("canaryStatus")
    if isinstance(canary, Mapping):
        out["canaryStatus"] = project(canary, _CANARY_STATUS)
    put_nonempty(out, "conditions", conditions(status))
    out.update(project(status, (("phase", None, ""), ("message", None, ""))))
    return out


def _rollout_up(src: Mapping[str, Any]) -> Obj:
    meta = copy_metadata(src)
    spec = child(src, "spec")
    strategy = child(spec, "strategy")
    out_spec: Obj = {}
    workload = child(spec, "objectRef").get("workloadRef")
    if isinstance(workload, Mapping):
        out_spec["workloadRef"] = object_ref(workload)
    canary = _canary_up(child(strategy, "canary"), meta.get("annotations") or {})
    out_spec["strategy"] = _strategy(strategy.get("paused"), canary)
    out_spec["disabled"] = bool(spec.get("disabled", False))
    return make_object(keys.V1BETA1, "Rollout", meta, out_spec, _rollout_status_up(child(src, "status")))


def _rollout_down(src: Mapping[str, Any]) -> Obj:
    meta = copy_metadata(src)
    spec = child(src, "spec")
    strategy = child(spec, "strategy")
    canary = strategy.get("canary")
    if strategy.get("blueGreen") is not None or not isinstance(canary, Mapping):
        # v1alpha1 has no blue-green; Kruise returns the zero-valued spec and status.
        zero_spec: Obj = {"objectRef": {}, "strategy": {}, "disabled": False}
        return make_object(keys.V1ALPHA1, "Rollout", meta, zero_spec, {})
    annotations = annotations_of(meta)
    extra = canary.get("enableExtraWorkloadForCanary")
    annotations[keys.ROLLING_STYLE_ANNOTATION] = "canary" if extra else "partition"
    if canary.get("trafficRoutingRef"):
        annotations[keys.TRAFFIC_ROUTING_ANNOTATION] = canary["trafficRoutingRef"]
    wrapper: Obj = {}
    if isinstance(spec.get("workloadRef"), Mapping):
        wrapper["workloadRef"] = object_ref(child(spec, "workloadRef"))
    out_spec: Obj = {
        "objectRef": wrapper,
        "strategy": _strategy(strategy.get("paused"), _canary_down(canary)),
        "disabled": bool(spec.get("disabled", False)),
    }
    return make_object(keys.V1ALPHA1, "Rollout", meta, out_spec, _rollout_status_down(child(src, "status")))


# --- BatchRelease ------------------------------------------------------------------------------------


def _release_plan(plan: Mapping[str, Any], rolling_style: str | None) -> Obj:
    batches = [project(batch, _BATCH) for batch in children(plan, "batches")]
    out: Obj = {"batches": batches}
    out.update(project(plan, _PLAN_HEAD))
    patch = patch_metadata(plan.get("patchPodTemplateMetadata"))
    if patch is not None:
        out["patchPodTemplateMetadata"] = patch
    put_nonempty(out, "rollingStyle", rolling_style)
    out["enableExtraWorkloadForCanary"] = bool(plan.get("enableExtraWorkloadForCanary", False))
    return out


def _rolling_style_from_annotation(annotations: Mapping[str, Any]) -> str | None:
    value = str(annotations.get(keys.ROLLING_STYLE_ANNOTATION, ""))
    return next((style for style in _BR_ROLLING_STYLES if equal_fold(value, style)), None)


def _batch_release_status(status: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    put_nonempty(out, "conditions", conditions(status))
    out["canaryStatus"] = project(child(status, "canaryStatus"), _BATCH_STATUS)
    out.update(project(status, _BR_STATUS_TAIL))
    return out


def _batch_release_up(src: Mapping[str, Any]) -> Obj:
    meta = copy_metadata(src)
    spec = child(src, "spec")
    out_spec: Obj = {}
    workload = child(spec, "targetReference").get("workloadRef")
    if isinstance(workload, Mapping):
        out_spec["workloadRef"] = object_ref(workload)
    style = _rolling_style_from_annotation(meta.get("annotations") or {})
    out_spec["releasePlan"] = _release_plan(child(spec, "releasePlan"), style)
    status = _batch_release_status(child(src, "status"))
    return make_object(keys.V1BETA1, "BatchRelease", meta, out_spec, status)


def _batch_release_down(src: Mapping[str, Any]) -> Obj:
    meta = copy_metadata(src)
    spec = child(src, "spec")
    plan = child(spec, "releasePlan")
    style = str(plan.get("rollingStyle") or "")
    annotations_of(meta)[keys.ROLLING_STYLE_ANNOTATION] = style.lower()
    target: Obj = {}
    if isinstance(spec.get("workloadRef"), Mapping):
        target["workloadRef"] = object_ref(child(spec, "workloadRef"))
    out_spec: Obj = {"targetReference": target, "releasePlan": _release_plan(plan, style)}
    status = _batch_release_status(child(src, "status"))
    return make_object(keys.V1ALPHA1, "BatchRelease", meta, out_spec, status)
