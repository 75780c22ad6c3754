"""The stable and canary Services (reference §3.1), as pure functions of the observed Services.

- The canary Service `<stable>-canary` is a copy of the stable one (labels, annotations, spec) owned
  by the Rollout, with everything the API server allocates cleared and the selector narrowed to the
  canary pods (`<revision key>: <podTemplateHash>`).
- The stable Service is narrowed to the stable pods (`<revision key>: <stableRevision>`) and restored
  by removing that key with a strategic merge patch (`null`), which leaves the rest of the selector.
- Removing the canary Service deletes it.
With `disableGenerateCanaryService` no Service is created, narrowed, restored or removed.
Must not do I/O or mutate the observed objects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from graylane.planner.observed import TrafficObserved
from graylane.planner.routing import Revisions, ServiceTask
from graylane.providers.traffic.base import (
    Change,
    Create,
    Delete,
    ObjectKind,
    Patch,
    RoutingConfig,
    RoutingError,
)

__all__ = [
    "canary_service_name",
    "desired_canary_service",
    "ensure_services",
    "patch_stable_service",
    "remove_canary_service",
    "restore_stable_service",
    "service_changes",
]

SVC = ObjectKind.SERVICE
# Allocated by the API server (or by the user for the stable Service only): never copied.
_ALLOCATED_SPEC_FIELDS = (
    "clusterIP",
    "clusterIPs",
    "externalIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "loadBalancerIP",
    "healthCheckNodePort",
)
_COPIED_META = ("labels", "annotations")


def canary_service_name(stable: str, *, generate: bool = True) -> str:
    return f"{stable}-canary" if generate else stable


def desired_canary_service(
    stable: Mapping[str, Any], config: RoutingConfig, revisions: Revisions
) -> dict[str, Any]:
    """The canary Service to create from the stable one."""
    meta: dict[str, Any] = {
        "name": config.canary_service,
        "namespace": config.namespace,
        "ownerReferences": [dict(config.owner)],
    }
    for key in _COPIED_META:
        if stable["metadata"].get(key):
            meta[key] = dict(stable["metadata"][key])
    spec = copy.deepcopy(dict(stable.get("spec") or {}))
    for field in _ALLOCATED_SPEC_FIELDS:
        spec.pop(field, None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)  # a NodePort Service's ports are taken by the stable one
    selector = dict(spec.get("selector") or {})
    selector[revisions.label_key] = revisions.canary
    # Without Kruise's AppendPodSelector gate, pod template labels only overwrite existing keys.
    selector.update({k: v for k, v in config.selector_patch.items() if k in selector})
    spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def _selector_patch(key: str, value: str | None) -> dict[str, Any]:
    return {"spec": {"selector": {key: value}}}


def _selector(svc: Mapping[str, Any]) -> Mapping[str, str]:
    return (svc.get("spec") or {}).get("selector") or {}


def _stable_or_error(observed: TrafficObserved, config: RoutingConfig) -> Mapping[str, Any]:
    if observed.stable_service is None:
        raise RoutingError(f"Service {config.stable_service} not found")
    return observed.stable_service


def patch_stable_service(
    observed: TrafficObserved, config: RoutingConfig, revisions: Revisions
) -> list[Change]:
    """Narrow the stable Service to the stable pods."""
    stable = _stable_or_error(observed, config)
    if _selector(stable).get(revisions.label_key) == revisions.stable:
        return []
    return [
        Patch(SVC, config.stable_service, _selector_patch(revisions.label_key, revisions.stable), "strategic")
    ]


def ensure_services(observed: TrafficObserved, config: RoutingConfig, revisions: Revisions) -> list[Change]:
    """The canary Service selects the canary pods and the stable Service the stable pods."""
    stable = _stable_or_error(observed, config)
    changes: list[Change] = []
    canary = observed.canary_service
    if canary is None:
        changes.append(Create(SVC, desired_canary_service(stable, config, revisions)))
    elif _selector(canary).get(revisions.label_key) != revisions.canary:
        patch = _selector_patch(revisions.label_key, revisions.canary)
        changes.append(Patch(SVC, config.canary_service, patch, "strategic"))
    return changes + patch_stable_service(observed, config, revisions)


def restore_stable_service(
    observed: TrafficObserved, config: RoutingConfig, revisions: Revisions
) -> list[Change]:
    """The stable Service selects every version again (a missing Service has nothing to restore)."""
    stable = observed.stable_service
    if stable is None or not _selector(stable).get(revisions.label_key):
        return []
    return [Patch(SVC, config.stable_service, _selector_patch(revisions.label_key, None), "strategic")]


def remove_canary_service(observed: TrafficObserved, config: RoutingConfig, _: Revisions) -> list[Change]:
    canary = observed.canary_service
    if canary is None or canary["metadata"].get("deletionTimestamp"):
        return []
    return [Delete(SVC, config.canary_service)]


_TASKS: dict[ServiceTask, Callable[[TrafficObserved, RoutingConfig, Revisions], list[Change]]] = {
    ServiceTask.ENSURE: ensure_services,
    ServiceTask.PATCH_STABLE: patch_stable_service,
    ServiceTask.RESTORE_STABLE: restore_stable_service,
    ServiceTask.REMOVE_CANARY: remove_canary_service,
}


def service_changes(
    task: ServiceTask, observed: TrafficObserved, config: RoutingConfig, revisions: Revisions
) -> list[Change]:
    if not config.generate_canary_service:
        return []
    return _TASKS[task](observed, config, revisions)
