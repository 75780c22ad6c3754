"""Reject steps that no traffic provider of the Rollout can route (graylane's rule; Kruise routes nothing).

Each provider declares its capabilities (providers/traffic); a step needs a capability for each feature
it uses: `traffic`/`weight` (weight), each match's headers (a header named `canary-by-cookie` is a
cookie for the Ingress scripts, a RegularExpression header needs regex support), `queryParams`, `path`,
and `requestHeaderModifier`. When a routing names several providers (say an Istio VirtualService and an
nginx Ingress), each does what it can, as in Kruise, so a feature is refused only if none of them can
route it. The first such feature is reported as Forbidden at its field path, naming the provider(s),
e.g. `Spec.Strategy.Canary.Steps[1].Matches[0].QueryParams: Forbidden: the Ingress nginx traffic
provider cannot route by query parameter match`.

Runs after upstream's rules have admitted the Rollout, on the raw object (v1alpha1 or v1beta1).
Must not do I/O: an Ingress class type with a user script (ConfigMap) is assumed capable of anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graylane.providers.traffic.base import Capability
from graylane.providers.traffic.registry import declared_provider
from graylane.webhook.validation_common import FieldError, as_dict, as_list, forbidden, strategy_of

__all__ = ["required_capabilities", "validate_traffic"]

Raw = Mapping[str, Any]
COOKIE_HEADER = "canary-by-cookie"


def validate_traffic(rollout: Raw, old: Raw | None = None) -> list[FieldError]:
    """Errors for steps the provider cannot route; on UPDATE only if steps or routings changed.

    (The controller's own metadata writes — finalizer, hash annotation — must never be refused because
    of steps that were admitted before this rule existed.)
    """
    if old is not None and _routed_steps(old) == _routed_steps(rollout):
        return []
    strategy = strategy_of(rollout)
    for key, title in (("canary", "Canary"), ("blueGreen", "BlueGreen")):
        body = as_dict(strategy.get(key))
        routings = as_list(body.get("trafficRoutings"))
        if body and routings:
            return _check(body, as_dict(routings[0]), f"Spec.Strategy.{title}.Steps")
    return []


def _routed_steps(rollout: Raw) -> tuple[object, object]:
    strategy = strategy_of(rollout)
    body = as_dict(strategy.get("canary") or strategy.get("blueGreen"))
    return body.get("steps"), body.get("trafficRoutings")


def _check(body: Raw, routing: Raw, path: str) -> list[FieldError]:
    provider = declared_provider(routing)
    if provider is None:
        return []  # a malformed routing is upstream's rules' business
    for index, step in enumerate(as_list(body.get("steps"))):
        for capability, field in required_capabilities(as_dict(step)):
            if capability not in provider.capabilities:
                message = f"the {provider.label} traffic provider cannot route by {capability}"
                return [forbidden(f"{path}[{index}].{field}", message)]
    return []


def required_capabilities(step: Raw) -> Iterator[tuple[Capability, str]]:
    """(capability, field path below the step) for every routing feature the step uses."""
    if step.get("traffic") is not None:
        yield Capability.WEIGHT, "Traffic"
    if step.get("weight") is not None:  # v1alpha1
        yield Capability.WEIGHT, "Weight"
    for i, match in enumerate(as_list(step.get("matches"))):
        match = as_dict(match)
        for j, header in enumerate(as_list(match.get("headers"))):
            yield _header_capability(as_dict(header)), f"Matches[{i}].Headers[{j}]"
        if as_list(match.get("queryParams")):
            yield Capability.QUERY_MATCH, f"Matches[{i}].QueryParams"
        if match.get("path") is not None:
            yield Capability.PATH_MATCH, f"Matches[{i}].Path"
    if step.get("requestHeaderModifier") is not None:
        yield Capability.REQUEST_HEADER_MODIFIER, "RequestHeaderModifier"


def _header_capability(header: Raw) -> Capability:
    if header.get("name") == COOKIE_HEADER:
        return Capability.COOKIE_MATCH
    if header.get("type") == "RegularExpression":
        return Capability.HEADER_REGEX
    return Capability.HEADER_MATCH
