"""Custom providers (reference §3.4): `customNetworkRefs` objects of any kind, rewritten by Lua scripts.

Before its first change graylane stores the object's `{spec, labels, annotations}` as JSON in the
annotation `rollouts.kruise.io/original-spec-configuration` (Kruise's key and format, so either
controller can finish what the other began). Every pass runs the kind's script on that **original**
copy with the step's weight and matches; the script's `{spec, labels, annotations}` (plus the annotation)
is the desired object, and a merge patch guarded by resourceVersion writes the difference. Done = a
pass found nothing to change. Finalising writes the stored original back and drops the annotation, so
the object ends as it began.

Scripts: the shipped `lua/custom/<group>/<Kind>.lua` (Istio VirtualService and DestinationRule, Gloo
Edge VirtualService) first, else the ConfigMap key `lua.traffic.routing.<Kind>.<group>`; run by the
injected `ScriptRunner`. Each object's script gets the route narrowed to what its kind can express; a
step feature that none of the kinds can express is refused here too (the webhook refuses it at
admission), so a Rollout admitted some other way keeps all traffic on the stable version with a
clear reason.
Pure: no I/O; the observed objects are never mutated.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

from graylane.api.common import ObjectRef
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic import lua
from graylane.providers.traffic.base import (
    Capability,
    Change,
    CustomKind,
    ObjectKey,
    Patch,
    RouteIntent,
    RoutingConfig,
    RoutingError,
    missing_capability,
    narrowed,
)

__all__ = [
    "KIND_CAPABILITIES",
    "ORIGINAL_SPEC_ANNOTATION",
    "CustomProvider",
    "merge_patch",
]

ORIGINAL_SPEC_ANNOTATION = "rollouts.kruise.io/original-spec-configuration"
C = Capability
_MATCHING = frozenset({C.HEADER_MATCH, C.HEADER_REGEX, C.QUERY_MATCH, C.PATH_MATCH})
# What each shipped script can express; a kind with a user script (ConfigMap) declares everything.
KIND_CAPABILITIES: Mapping[CustomKind, frozenset[Capability]] = {
    CustomKind("networking.istio.io", "VirtualService"): _MATCHING | {C.WEIGHT, C.REQUEST_HEADER_MODIFIER},
    # A DestinationRule only gains the `canary` subset: it routes nothing itself (the VirtualService does).
    CustomKind("networking.istio.io", "DestinationRule"): frozenset(),
    CustomKind("gateway.solo.io", "VirtualService"): _MATCHING | {C.WEIGHT},
}
# Shipped scripts that also compute the finalised object (called with obj.finalising = true): routes by
# pod label must end on the new version's labels, not on the original's. Others get the original back.
_FINALISED_BY_SCRIPT = frozenset({CustomKind("gateway.solo.io", "VirtualService")})


def merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning `current` into `desired`: removed keys become null."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif key not in current or old != value:
            patch[key] = value
    patch.update({key: None for key in current if key not in desired})
    return patch


def _parts(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The `{spec, labels, annotations}` a script sees and returns (Kruise's `Data`)."""
    meta = obj.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(ORIGINAL_SPEC_ANNOTATION, None)
    return {
        "spec": obj.get("spec") or {},
        "labels": dict(meta.get("labels") or {}),
        "annotations": annotations,
    }


def _current(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "spec": obj.get("spec") or {},
        "labels": dict(meta.get("labels") or {}),
        "annotations": dict(meta.get("annotations") or {}),
    }


def _able(target: _Target) -> frozenset[Capability]:
    # A kind with a user's script (ConfigMap) is assumed able to express everything.
    return KIND_CAPABILITIES.get(target.kind, frozenset(Capability))


@dataclasses.dataclass(frozen=True)
class _Target:
    """One customNetworkRefs entry, resolved to a kind key and a name."""

    kind: CustomKind
    name: str

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}"


@dataclasses.dataclass(frozen=True)
class CustomProvider:
    refs: tuple[ObjectRef, ...]
    config: RoutingConfig
    scripts: lua.ScriptRunner

    @property
    def targets(self) -> tuple[_Target, ...]:
        return tuple(_Target(CustomKind.of(ref.api_version, ref.kind), ref.name) for ref in self.refs)

    @property
    def label(self) -> str:
        kinds = dict.fromkeys(str(target.kind) for target in self.targets)
        return f"customNetworkRefs ({', '.join(kinds)})"

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What at least one of the objects' scripts can express (each does what it can)."""
        return functools.reduce(frozenset.union, (_able(target) for target in self.targets), frozenset())

    def fetches(self) -> list[ObjectKey]:
        return [(target.kind, target.name) for target in self.targets]

    def ensure(self, observed: TrafficObserved, route: RouteIntent) -> list[Change]:
        self._check_capabilities(route)
        changes: list[Change] = []
        for target in self.targets:
            change = self._ensure_one(observed, target, route)
            if change is not None:
                changes.append(change)
        return changes

    def finalise(self, observed: TrafficObserved) -> list[Change]:
        changes: list[Change] = []
        for target in self.targets:
            obj = observed.get(target.kind, target.name)
            if obj is None:
                continue
            stored = _stored(obj, target)
            if stored is None:
                continue  # never changed by a Rollout, or already restored
            changes.append(_patch(obj, target, self._finalised(observed, target, stored)))
        return changes

    def _finalised(
        self, observed: TrafficObserved, target: _Target, stored: dict[str, Any]
    ) -> dict[str, Any]:
        """The original, or what a shipped script that finalises makes of it (never a user's script)."""
        if target.kind not in _FINALISED_BY_SCRIPT:
            return stored
        script = lua.custom_script(target.kind.group, target.kind.kind, observed.lua_scripts)
        if not script.name.startswith("built-in "):
            return stored
        finalising = {**self._script_input(stored, RouteIntent(), observed), "finalising": True}
        return _run(self.scripts, script, finalising, target)

    def _check_capabilities(self, route: RouteIntent) -> None:
        missing = missing_capability(route, self.capabilities)
        if missing is not None and self.targets:
            target = self.targets[0]
            raise RoutingError(f"{target.title}: the {target.kind} Lua script cannot route by {missing}")

    def _ensure_one(self, observed: TrafficObserved, target: _Target, route: RouteIntent) -> Patch | None:
        try:
            script = lua.custom_script(target.kind.group, target.kind.kind, observed.lua_scripts)
        except lua.LuaScriptError as err:
            raise RoutingError(f"{target.title}: {err}") from err
        obj = self._require(observed, target)
        stored = _stored(obj, target)
        original = stored if stored is not None else _parts(obj)
        own_route = narrowed(route, _able(target))
        desired = _run(self.scripts, script, self._script_input(original, own_route, observed), target)
        desired["annotations"][ORIGINAL_SPEC_ANNOTATION] = _encode(original)
        if desired == _current(obj):
            return None
        return _patch(obj, target, desired)

    def _require(self, observed: TrafficObserved, target: _Target) -> Mapping[str, Any]:
        found = observed.get(target.kind, target.name)
        if found is not None:
            return found
        if target.kind not in observed.watched:
            raise RoutingError(
                f"{target.title} cannot be read: graylane watches a custom kind once its CRD is "
                "established and a Lua script exists for it (shipped, or in the ConfigMap)"
            )
        raise RoutingError(f"{target.title} not found")

    def _script_input(
        self, original: Mapping[str, Any], route: RouteIntent, observed: TrafficObserved
    ) -> dict[str, Any]:
        modifier = route.request_header_modifier
        return {
            # graylane's addition to Kruise's input: the labels of the new version's pods.
            "podTemplateLabels": dict(observed.pod_template_labels),
            "data": original,
            "canaryWeight": -1 if route.weight is None else route.weight,
            "stableWeight": -1 if route.weight is None else 100 - route.weight,
            "matches": [match.to_obj() for match in route.matches] or None,
            "canaryService": self.config.canary_service,
            "stableService": self.config.stable_service,
            "requestHeaderModifier": modifier.to_obj() if modifier is not None else None,
        }


def _run(
    scripts: lua.ScriptRunner, script: lua.Script, obj: Mapping[str, Any], target: _Target
) -> dict[str, Any]:
    """The script's `{spec, labels, annotations}`, checked the way Kruise's JSON decoding checks it."""
    try:
        result = scripts.run(script, obj)
    except lua.LuaScriptError as err:
        raise RoutingError(f"{target.title}: {err}") from err
    where = f"{target.title}: Lua script {script.name}"
    if not isinstance(result, dict):
        raise RoutingError(f"{where} must return a table with spec, labels and annotations")
    spec = result.get("spec", {})
    if not isinstance(spec, dict):
        raise RoutingError(f"{where} returned a spec that is not a table")
    return {
        "spec": spec,
        "labels": _string_map(result.get("labels"), f"{where} returned labels"),
        "annotations": _string_map(result.get("annotations"), f"{where} returned annotations"),
    }


def _string_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RoutingError(f"{what} that are not a table")
    bad = sorted(key for key, item in value.items() if not isinstance(item, str))
    if bad:
        raise RoutingError(f"{what} with non-string values for: {', '.join(bad)}")
    return dict(value)


def _patch(obj: Mapping[str, Any], target: _Target, desired: Mapping[str, Any]) -> Patch:
    current = _current(obj)
    metadata: dict[str, Any] = {"resourceVersion": obj["metadata"].get("resourceVersion")}
    for key in ("labels", "annotations"):
        change = merge_patch(current[key], desired[key])
        if change:
            metadata[key] = change
    body: dict[str, Any] = {"metadata": metadata}
    spec = merge_patch(current["spec"], desired["spec"])
    if spec:
        body["spec"] = spec
    return Patch(target.kind, target.name, body)


def _encode(parts: Mapping[str, Any]) -> str:
    """Kruise's `Data` JSON: empty parts are omitted."""
    return json.dumps({k: v for k, v in parts.items() if v}, separators=(",", ":"), sort_keys=True)


def _stored(obj: Mapping[str, Any], target: _Target) -> dict[str, Any] | None:
    """The original `{spec, labels, annotations}` from the annotation, or None without one."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL_SPEC_ANNOTATION)
    if text is None:
        return None
    where = f"{target.title}: annotation {ORIGINAL_SPEC_ANNOTATION}"
    try:
        data = json.loads(text)
    except ValueError as err:
        raise RoutingError(f"{where} is not valid JSON") from err
    if not isinstance(data, dict) or not isinstance(data.get("spec", {}), dict):
        raise RoutingError(f"{where} must hold an object whose spec is an object")
    return {
        "spec": data.get("spec") or {},
        "labels": _string_map(data.get("labels"), f"{where} holds labels"),
        "annotations": _string_map(data.get("annotations"), f"{where} holds annotations"),
    }
