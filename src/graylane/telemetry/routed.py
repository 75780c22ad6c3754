"""The traffic a Rollout's provider objects route right now, read back from those objects themselves.

A step asks for a weight; what users need to see is what the gateway objects say after graylane (or
anyone) wrote them. `objects_to_read(rollout)` names the objects to fetch, and `read_back(rollout, found)`
turns what was found into one `Routed` line per object:

- the canary Ingress `<ingress>-canary`: its `<prefix>/canary-weight`, `canary-by-header*` and
  `canary-by-cookie` annotations, whatever the class's prefix (nginx, higress, mse, alb); no canary Ingress
  means everything goes to the stable Service;
- the HTTPRoute: per rule, the weights of the stable and canary Service backendRefs (an omitted weight
  is 1, as the Gateway API says), and the matches of rules that send only to the canary Service;
- a custom object (customNetworkRefs): the first list of weighted destinations in its spec that names
  the canary Service (Istio's `route[].destination.host`/`weight` has this shape); otherwise "no weight".

`canary_weight(lines)` is the share of the first line that has one, for the metrics gauge.
Pure: no I/O; callers fetch the objects (the CLI with GETs, the controller from its informers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from graylane.api.rollout_v1beta1 import Rollout, TrafficRoutingRef

__all__ = ["ObjectRef", "Routed", "canary_weight", "objects_to_read", "read_back", "render"]

Obj = Mapping[str, Any]
WEIGHT_SUFFIX: Final = "/canary-weight"
HEADER_SUFFIX: Final = "/canary-by-header"
COOKIE_SUFFIX: Final = "/canary-by-cookie"


@dataclasses.dataclass(frozen=True, order=True)
class ObjectRef:
    """An object to read: `api_version` and `kind` as in the Rollout, `name` in the Rollout's namespace."""

    api_version: str
    kind: str
    name: str


@dataclasses.dataclass(frozen=True)
class Routed:
    object: str  # "Ingress demo-canary"
    canary_weight: int | None  # percent of requests to the canary; None when the object has no weight
    matches: tuple[str, ...] = ()  # requests that go to the canary whatever the weight
    note: str = ""


def _canary_service(rollout: Rollout, ref: TrafficRoutingRef) -> str:
    strategy = rollout.spec.strategy
    return ref.service if strategy.disable_generate_canary_service() else f"{ref.service}-canary"


def objects_to_read(rollout: Rollout) -> list[ObjectRef]:
    """The provider objects whose content says how traffic is routed now."""
    return [want for ref in rollout.spec.strategy.traffic_routings() for want in _objects_of(ref)]


def _objects_of(ref: TrafficRoutingRef) -> list[ObjectRef]:
    out: list[ObjectRef] = []
    if ref.ingress is not None:
        out.append(ObjectRef("networking.k8s.io/v1", "Ingress", f"{ref.ingress.name}-canary"))
    if ref.gateway is not None and ref.gateway.http_route_name:
        out.append(ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", ref.gateway.http_route_name))
    return out + [ObjectRef(c.api_version, c.kind, c.name) for c in ref.custom_network_refs]


def read_back(rollout: Rollout, found: Mapping[ObjectRef, Obj | None]) -> list[Routed]:
    """One line per provider object of the Rollout (`found[ref]` None: the object does not exist)."""
    lines: list[Routed] = []
    for ref in rollout.spec.strategy.traffic_routings():
        canary = _canary_service(rollout, ref)
        for want in _objects_of(ref):
            obj = found.get(want)
            if want.kind == "Ingress" and want.api_version == "networking.k8s.io/v1":
                lines.append(_ingress(want, obj))
            elif want.kind == "HTTPRoute":
                lines.append(_http_route(want, obj, ref.service, canary))
            else:
                lines.append(_custom(want, obj, canary))
    return lines


def canary_weight(lines: Sequence[Routed]) -> int | None:
    return next((line.canary_weight for line in lines if line.canary_weight is not None), None)


def render(line: Routed) -> str:
    """`Ingress demo-canary: canary 20% / stable 80%, [header x-canary=beta]`."""
    parts = []
    if line.canary_weight is not None:
        parts.append(f"canary {line.canary_weight}% / stable {100 - line.canary_weight}%")
    if line.matches:
        parts.append("canary for " + " OR ".join(line.matches))
    if line.note:
        parts.append(line.note)
    return f"{line.object}: {', '.join(parts) or 'no route to the canary'}"


# -- Ingress ---------------------------------------------------------------------------------------


def _annotation(annotations: Mapping[str, str], suffix: str) -> str | None:
    return next((v for k, v in sorted(annotations.items()) if k.endswith(suffix)), None)


def _ingress(ref: ObjectRef, obj: Obj | None) -> Routed:
    title = f"Ingress {ref.name}"
    if obj is None:
        return Routed(title, 0, note="absent: every request goes to the stable Service")
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    weight = _percent(_annotation(annotations, WEIGHT_SUFFIX))
    matches = []
    header = _annotation(annotations, HEADER_SUFFIX)
    if header:
        value = _annotation(annotations, HEADER_SUFFIX + "-value")
        pattern = _annotation(annotations, HEADER_SUFFIX + "-pattern")
        matches.append(f"header {header}" + (f"={value}" if value else f"~{pattern}" if pattern else ""))
    cookie = _annotation(annotations, COOKIE_SUFFIX)
    if cookie:
        matches.append(f"cookie {cookie}")
    return Routed(title, weight if weight is not None else (None if matches else 0), tuple(matches))


def _percent(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return max(0, min(100, int(text.strip())))
    except ValueError:
        return None


# -- HTTPRoute -------------------------------------------------------------------------------------


def _backends(rule: Obj, name: str) -> Iterator[Obj]:
    for backend in rule.get("backendRefs") or []:
        if (
            isinstance(backend, Mapping)
            and backend.get("name") == name
            and backend.get("kind", "Service")
            in (
                "Service",
                None,
            )
        ):
            yield backend


def _weight_of(backends: Sequence[Obj]) -> int:
    return sum(int(b["weight"]) if isinstance(b.get("weight"), int) else 1 for b in backends)


def _describe_match(match: Obj) -> str:
    parts = []
    path = match.get("path") or {}
    if path.get("value") not in (None, "/"):
        parts.append(f"path {path.get('value')}")
    parts += [f"header {h.get('name')}={h.get('value')}" for h in match.get("headers") or []]
    parts += [f"query {q.get('name')}={q.get('value')}" for q in match.get("queryParams") or []]
    return " AND ".join(parts) or "any request"


def _http_route(ref: ObjectRef, obj: Obj | None, stable: str, canary: str) -> Routed:
    title = f"HTTPRoute {ref.name}"
    if obj is None:
        return Routed(title, None, note="not found")
    weight: int | None = None
    matches: list[str] = []
    for rule in (obj.get("spec") or {}).get("rules") or []:
        to_stable, to_canary = list(_backends(rule, stable)), list(_backends(rule, canary))
        if to_canary and not to_stable:
            matches += [_describe_match(m) for m in rule.get("matches") or [{}]]
        elif to_stable and weight is None:
            total = _weight_of(to_stable) + _weight_of(to_canary)
            weight = round(100 * _weight_of(to_canary) / total) if total else 0
    return Routed(title, weight, tuple(matches))


# -- custom objects --------------------------------------------------------------------------------


def _mentions(value: Any, name: str) -> bool:
    if isinstance(value, str):
        return value == name or value.startswith(name + ".")
    if isinstance(value, Mapping):
        return any(_mentions(v, name) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, name) for v in value)
    return False


def _weighted_lists(value: Any) -> Iterator[list[Obj]]:
    """Every list in `value` whose items are all objects with an integer `weight`, depth first."""
    if isinstance(value, Mapping):
        for child in value.values():
            yield from _weighted_lists(child)
    elif isinstance(value, list):
        if value and all(isinstance(i, Mapping) and isinstance(i.get("weight"), int) for i in value):
            yield value
        for child in value:
            yield from _weighted_lists(child)


def _custom(ref: ObjectRef, obj: Obj | None, canary: str) -> Routed:
    title = f"{ref.kind} {ref.name}"
    if obj is None:
        return Routed(title, None, note="not found")
    for items in _weighted_lists(obj.get("spec") or {}):
        to_canary = [i for i in items if _mentions(i, canary)]
        if to_canary:
            total = _weight_of(items)
            return Routed(title, round(100 * _weight_of(to_canary) / total) if total else 0)
    if _mentions(obj.get("spec") or {}, canary):
        return Routed(title, None, note="routes to the canary by its own rules (no weight to read)")
    return Routed(title, 0, note="no destination names the canary Service")
