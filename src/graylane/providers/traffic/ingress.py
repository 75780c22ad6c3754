"""Ingress provider (reference §3.2): a canary Ingress `<name>-canary` whose annotations Lua writes.

The canary Ingress is built from the stable one (annotations, labels, class, TLS, and only the rules and
paths that send to the stable Service, re-pointed at the canary Service) and owned by the Rollout. It is
created with the script's annotations for weight 0; later passes run the script with the step's weight
and matches and merge-patch the annotations that differ. Finalising deletes the canary Ingress.
The script for `classType` comes from the controller's ConfigMap or the shipped ones (see lua.py).
Pure: no I/O; the observed Ingresses are never mutated.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from graylane.api.rollout_v1beta1 import IngressTrafficRouting
from graylane.planner.observed import TrafficObserved
from graylane.providers.traffic import lua
from graylane.providers.traffic.base import (
    Capability,
    Change,
    Create,
    Delete,
    ObjectKey,
    ObjectKind,
    Patch,
    RouteIntent,
    RoutingConfig,
    RoutingError,
    require,
)

__all__ = ["CLASS_CAPABILITIES", "IngressProvider", "annotations_patch", "desired_canary_ingress"]

ING = ObjectKind.INGRESS
C = Capability
_NGINX_LIKE = frozenset({C.WEIGHT, C.HEADER_MATCH, C.HEADER_REGEX, C.COOKIE_MATCH})
# What each shipped script can express; a class type with a user script declares everything.
CLASS_CAPABILITIES: Mapping[str, frozenset[Capability]] = {
    "nginx": _NGINX_LIKE,
    "higress": _NGINX_LIKE,
    "aliyun-alb": _NGINX_LIKE,
    "mse": _NGINX_LIKE | {C.QUERY_MATCH, C.REQUEST_HEADER_MODIFIER},
}


def canary_ingress_name(name: str) -> str:
    return f"{name}-canary"


def desired_canary_ingress(stable: Mapping[str, Any], config: RoutingConfig, name: str) -> dict[str, Any]:
    """The canary Ingress (before its annotations are computed)."""
    meta = stable["metadata"]
    spec = stable.get("spec") or {}
    canary_spec: dict[str, Any] = {"rules": _canary_rules(spec.get("rules") or [], config)}
    for key in ("ingressClassName", "tls"):
        if spec.get(key) is not None:
            canary_spec[key] = copy.deepcopy(spec[key])
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": config.namespace,
        "ownerReferences": [dict(config.owner)],
        "annotations": dict(meta.get("annotations") or {}),
    }
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": canary_spec,
    }


def _canary_rules(rules: list[Mapping[str, Any]], config: RoutingConfig) -> list[dict[str, Any]]:
    """Only the paths that send to the stable Service, re-pointed at the canary Service."""
    canary_rules = []
    for rule in rules:
        paths = [_to_canary(path, config) for path in (rule.get("http") or {}).get("paths") or []]
        kept = [path for path in paths if path is not None]
        if kept:
            canary_rule: dict[str, Any] = {"http": {"paths": kept}}
            if rule.get("host"):
                canary_rule["host"] = rule["host"]
            canary_rules.append(canary_rule)
    return canary_rules


def _to_canary(path: Mapping[str, Any], config: RoutingConfig) -> dict[str, Any] | None:
    service = ((path.get("backend") or {}).get("service")) or {}
    if service.get("name") != config.stable_service:
        return None
    canary = copy.deepcopy(dict(path))
    canary["backend"]["service"]["name"] = config.canary_service
    return canary


def annotations_patch(current: Mapping[str, str], desired: Mapping[str, str]) -> dict[str, Any]:
    """A JSON merge patch turning `current` annotations into `desired` (removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in desired.items() if current.get(k) != v}
    patch.update({k: None for k in current if k not in desired})
    return {"metadata": {"annotations": patch}}


@dataclasses.dataclass(frozen=True)
class IngressProvider:
    ref: IngressTrafficRouting
    config: RoutingConfig
    scripts: lua.ScriptRunner

    @property
    def class_type(self) -> str:
        return self.ref.effective_class_type

    @property
    def label(self) -> str:
        return f"Ingress {self.class_type}"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return CLASS_CAPABILITIES.get(self.class_type, frozenset(Capability))

    @property
    def canary_name(self) -> str:
        return canary_ingress_name(self.ref.name)

    def fetches(self) -> list[ObjectKey]:
        return [(ING, self.ref.name), (ING, self.canary_name)]

    def ensure(self, observed: TrafficObserved, route: RouteIntent) -> list[Change]:
        stable = require(observed, ING, self.ref.name)
        canary = observed.get(ING, self.canary_name)
        if canary is None:
            created = desired_canary_ingress(stable, self.config, self.canary_name)
            created["metadata"]["annotations"] = self._annotations(observed, created, RouteIntent(weight=0))
            return [Create(ING, created)]
        if canary["metadata"].get("deletionTimestamp"):
            raise RoutingError(f"Ingress {self.canary_name} is being deleted; waiting for it to go")
        current = dict(canary["metadata"].get("annotations") or {})
        desired = self._annotations(observed, canary, route)
        if desired == current:
            return []
        return [Patch(ING, self.canary_name, annotations_patch(current, desired))]

    def finalise(self, observed: TrafficObserved) -> list[Change]:
        canary = observed.get(ING, self.canary_name)
        if canary is None or canary["metadata"].get("deletionTimestamp"):
            return []
        return [Delete(ING, self.canary_name)]

    def _annotations(
        self, observed: TrafficObserved, canary: Mapping[str, Any], route: RouteIntent
    ) -> dict[str, str]:
        try:
            script = lua.ingress_script(self.class_type, observed.lua_scripts)
            result = self.scripts.run(script, self._script_input(canary, route))
        except lua.LuaScriptError as err:
            raise RoutingError(str(err)) from err
        return _string_map(result, script.name)

    def _script_input(self, canary: Mapping[str, Any], route: RouteIntent) -> dict[str, Any]:
        return {
            "annotations": dict(canary["metadata"].get("annotations") or {}),
            "weight": "-1" if route.weight is None else str(route.weight),
            "matches": [match.to_obj() for match in route.matches] or None,
            "canaryService": self.config.canary_service,
            "stableService": self.config.stable_service,
            "requestHeaderModifier": (
                route.request_header_modifier.to_obj() if route.request_header_modifier is not None else None
            ),
        }


def _string_map(result: object, script: str) -> dict[str, str]:
    """Kruise decodes the result into map[string]string: a table of strings, nothing else."""
    if not isinstance(result, dict):
        raise RoutingError(
            f"Lua script {script} must return a table of annotations, not {type(result).__name__}"
        )
    bad = sorted(key for key, value in result.items() if not isinstance(value, str))
    if bad:
        raise RoutingError(f"Lua script {script} returned non-string annotation values for: {', '.join(bad)}")
    return dict(result)
