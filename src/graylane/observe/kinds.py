"""Traffic kinds that appear after start-up: which CustomResourceDefinitions matter, and as what resource.

At start-up the controller watches HTTPRoutes and the custom kinds it can route (a Lua script, shipped
or in the ConfigMap, and a served API). The TrafficObserver also watches CustomResourceDefinitions; when
the HTTPRoute CRD or the CRD of a kind with a script becomes established, or a script key is added for a
kind whose CRD exists, it starts that kind's informer without a restart (issue 15, item 5). This module
holds the pure part: the slim form the CRD informer keeps (a CRD's schema can be megabytes: Istio's are),
whether a CRD is established, and which resource and version to read and write a kind in.

What it must not do: I/O, or decide which kinds are wanted (the observer does, from the scripts).
"""

from __future__ import annotations

import re
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.resources import Resource
from graylane.planner.changes import CustomKind, Kind, ObjectKind

__all__ = ["CRD_INDEX", "crd_index", "crd_resource", "established", "slim_crd", "version_priority"]

CRD_INDEX = "group-kind"
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 2, "beta": 1, "alpha": 0}


def slim_crd(obj: Obj) -> Obj:
    """What the CRD informer keeps: names, scope, served versions and the Established condition."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {
        "apiVersion": obj.get("apiVersion", r.CRD.api_version),
        "kind": obj.get("kind", r.CRD.kind),
        "metadata": {k: meta[k] for k in ("name", "uid", "resourceVersion") if k in meta},
        "spec": {
            "group": spec.get("group", ""),
            "scope": spec.get("scope", ""),
            "names": {k: v for k, v in (spec.get("names") or {}).items() if k in ("kind", "plural")},
            "versions": [
                {"name": v.get("name"), "served": bool(v.get("served"))} for v in spec.get("versions") or []
            ],
        },
        "status": {"conditions": [c for c in conditions if c.get("type") == "Established"]},
    }


def crd_index(crd: Obj) -> list[str]:
    """`group/Kind` of a CRD, to find the CRD of a kind a script was added for."""
    spec = crd.get("spec") or {}
    kind = (spec.get("names") or {}).get("kind")
    return [f"{spec.get('group')}/{kind}"] if kind else []


def established(crd: Obj) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def version_priority(name: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes' version order (larger is preferred): v2 > v1 > v1beta2 > v1alpha1 > other."""
    found = _VERSION.match(name)
    if found is None:
        return (-1, 0, 0, name)
    major, stability, minor = found.groups()
    return (_STABILITY[stability], int(major), int(minor or 0), "")


def crd_resource(crd: Obj) -> tuple[Kind, Resource] | None:
    """The traffic kind a CRD defines and the resource to use for it (its highest served version).

    HTTPRoutes are Gateway API's (v1, else v1beta1, as at start-up); any other kind is a custom kind.
    """
    spec: dict[str, Any] = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, kind, plural = str(spec.get("group") or ""), str(names.get("kind") or ""), names.get("plural")
    served = [str(v["name"]) for v in spec.get("versions") or [] if v.get("served") and v.get("name")]
    if not (group and kind and plural and served):
        return None
    if (group, kind) == (r.HTTPROUTE.group, r.HTTPROUTE.kind):
        gateway = next((v for v in ("v1", "v1beta1") if v in served), None)
        return (ObjectKind.HTTP_ROUTE, Resource(group, gateway, str(plural), kind)) if gateway else None
    highest = max(served, key=version_priority)
    namespaced = spec.get("scope") == "Namespaced"
    return CustomKind(group, kind), Resource(group, highest, str(plural), kind, namespaced)
