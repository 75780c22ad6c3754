"""Dict-copying helpers shared by the conversion functions (see ``graylane.api.conversion``).

What this module does: copies JSON fields the way Go encodes a struct after a field-by-field copy
(``project``), plus small accessors that tolerate missing or mistyped parents.

What it must not do: know which version or kind a field belongs to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graylane.api.common import GoTag

Obj = dict[str, Any]
# (json key, Go tag: ALWAYS = no omitempty / POINTER = *T omitempty / None = omitempty, Go zero value)
FieldSpec = tuple[str, GoTag | None, Any]

CONDITION: Final[Sequence[FieldSpec]] = (
    ("type", GoTag.ALWAYS, ""),
    ("status", GoTag.ALWAYS, ""),
    ("lastUpdateTime", None, None),
    ("lastTransitionTime", None, None),
    ("reason", GoTag.ALWAYS, ""),
    ("message", GoTag.ALWAYS, ""),
)
OBJECT_REF: Final[Sequence[FieldSpec]] = (
    ("apiVersion", GoTag.ALWAYS, ""),
    ("kind", GoTag.ALWAYS, ""),
    ("name", GoTag.ALWAYS, ""),
)


def child(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def children(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def project(src: Mapping[str, Any], fields: Sequence[FieldSpec]) -> Obj:
    """Copy ``fields`` of ``src`` the way Go would encode them after a field-by-field copy."""
    out: Obj = {}
    for key, tag, zero in fields:
        value = src.get(key)
        if tag is GoTag.ALWAYS:
            out[key] = copy.deepcopy(value) if value is not None else zero
        elif value is not None and (tag is GoTag.POINTER or value):
            out[key] = copy.deepcopy(value)
    return out


def put_nonempty(out: Obj, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is empty (omitempty of a slice, map or optional struct)."""
    if value:
        out[key] = value


def equal_fold(left: str, right: str) -> bool:
    """Go ``strings.EqualFold`` (Unicode case-insensitive equality)."""
    return left.casefold() == right.casefold()


def make_object(version: str, kind: str, meta: Obj, spec: Obj, status: Obj) -> Obj:
    return {"apiVersion": version, "kind": kind, "metadata": meta, "spec": spec, "status": status}


def copy_metadata(src: Mapping[str, Any]) -> Obj:
    meta = src.get("metadata")
    return copy.deepcopy(dict(meta)) if isinstance(meta, Mapping) else {}


def annotations_of(meta: Obj) -> dict[str, str]:
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    return annotations


def object_ref(ref: Mapping[str, Any]) -> Obj:
    return project(ref, OBJECT_REF)


def patch_metadata(value: Any) -> Obj | None:
    if not isinstance(value, Mapping):
        return None
    out: Obj = {}
    for key in ("annotations", "labels"):
        put_nonempty(out, key, copy.deepcopy(dict(child(value, key))))
    return out


def conditions(status: Mapping[str, Any]) -> list[Obj]:
    return [project(cond, CONDITION) for cond in children(status, "conditions")]
