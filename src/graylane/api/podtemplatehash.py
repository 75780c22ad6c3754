"""Kruise's ``canaryRevision``: the Deployment controller's hash of a pod template, in Python.

What this module does: ``pod_template_hash(template)`` returns what Go's
``controller.ComputeHash(&template, nil)`` returns for the same template (Kruise Rollout's
``util.ComputeHash``; kube-controller-manager's ``pod-template-hash`` when the Deployment has no
``status.collisionCount``). Go computes it as:

1. print the ``v1.PodTemplateSpec`` struct with go-spew's ``%#v`` formatter, configured
   (k8s.io/utils ``dump.ForHash``) with sorted map keys and methods disabled: every value is preceded by
   its Go type in parentheses, unless it is a slice element, a map key or value, or the target of a
   pointer; structs print ``{Field:value ...}`` with *every* field in declaration order (zero values
   included), slices ``[a b]``, maps ``map[k:v]``, nil slices, maps and pointers ``<nil>``, strings raw;
2. FNV-32a over those bytes; 3. the decimal of the sum, each byte mapped through ``safe_encode``.

The printer walks the JSON the API server returns alongside the Go type graph of PodTemplateSpec
(``data/podtemplatespec.gotypes.json``, generated from the k8s.io/api module by ``tools/gotypes``; its
``provenance`` says which version). Since objects reach Go through protobuf, where an empty list or map
cannot be told from an absent one, both print as nil; an empty object for a pointer field (``{}``) is a
non-nil pointer to a zero struct. Types with their own JSON decoding are converted to their Go fields
(``IntOrString``, ``Quantity`` via ``quantity.parse_quantity``, a null ``metav1.Time``).

Templates it cannot reproduce raise ``UnsupportedTemplate``: quantities Go holds as ``inf.Dec``, a
timestamp or managedFields inside the template (Go decodes those through the process' local time zone).

What it must not do: read objects from the API, or decide what a revision change means.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from fnv_hash_fast import fnv1a_32

from graylane.api.quantity import UnsupportedQuantity, parse_quantity

__all__ = ["GoTypeGraph", "UnsupportedTemplate", "pod_template_hash", "spew_pod_template", "type_graph"]

_ALPHANUMS: Final = "bcdfghjklmnpqrstvwxz2456789"
_INTEGER_KINDS: Final = frozenset({"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16"})
_INTEGER_KINDS_ALL: Final = _INTEGER_KINDS | {"uint32", "uint64"}


class UnsupportedTemplate(ValueError):
    """The template holds a value whose Go in-memory form this module does not reproduce."""


class GoStruct(dict[str, Any]):
    """A struct value already in Go shape: fields are looked up by Go name, not by JSON name."""


@dataclasses.dataclass(frozen=True)
class GoField:
    go: str
    json: str
    type: str
    inline: bool


@dataclasses.dataclass(frozen=True)
class GoType:
    name: str
    kind: str
    elem: str = ""
    key: str = ""
    fields: tuple[GoField, ...] = ()
    custom: bool = False
    # What precedes each field's value: ``Name:``, after a space from the second field on.
    labels: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GoTypeGraph:
    """The generated type graph, with each type's zero value printed once (with and without its type)."""

    root: str
    types: Mapping[str, GoType]
    provenance: Mapping[str, str]
    zero_typed: Mapping[str, str]
    zero_bare: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GoTypeGraph:
        types = {name: _go_type(name, raw) for name, raw in data["types"].items()}
        graph = cls(data["root"], types, dict(data["provenance"]), {}, {})
        typed = {name: _Printer(graph).zero(name, typed=True) for name in types}
        bare = {name: _Printer(graph).zero(name, typed=False) for name in types}
        return dataclasses.replace(graph, zero_typed=typed, zero_bare=bare)


def _go_type(name: str, raw: Mapping[str, Any]) -> GoType:
    fields = tuple(
        GoField(f["go"], f["json"], f["type"], bool(f.get("inline"))) for f in raw.get("fields") or ()
    )
    labels = tuple(("" if i == 0 else " ") + f.go + ":" for i, f in enumerate(fields))
    kind, custom = raw["kind"], bool(raw.get("custom"))
    return GoType(name, kind, raw.get("elem", ""), raw.get("key", ""), fields, custom, labels)


def _load_graph() -> GoTypeGraph:
    text = resources.files("graylane.api").joinpath("data/podtemplatespec.gotypes.json").read_text("utf-8")
    return GoTypeGraph.from_json(json.loads(text))


def type_graph() -> GoTypeGraph:
    return _GRAPH


def spew_pod_template(template: Mapping[str, Any], graph: GoTypeGraph | None = None) -> str:
    """The text Go's hash input is for ``template`` (``dump.ForHash`` of the PodTemplateSpec)."""
    graph = graph or _GRAPH
    printer = _Printer(graph)
    printer.value(graph.root, template)
    return "".join(printer.out)


def pod_template_hash(
    template: Mapping[str, Any], collision_count: int | None = None, graph: GoTypeGraph | None = None
) -> str:
    """``controller.ComputeHash(&template, collisionCount)``: the ``pod-template-hash`` of ``template``."""
    data = spew_pod_template(template, graph).encode("utf-8")
    if collision_count is not None:
        # Go writes the count as a little-endian uint32 into an 8-byte buffer and hashes all 8 bytes.
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in str(fnv1a_32(data)).encode())


class _Printer:
    """go-spew's ``%#v`` formatter state: the output and its "omit the next type" flag.

    The flag is set before slice elements, map keys and values, and pointer targets, and cleared once a
    value has printed its type position. Go leaves it set after a nil pointer printed in such a place;
    the PodTemplateSpec graph has no slice or map of pointers, so that case never arises here.
    """

    def __init__(self, graph: GoTypeGraph) -> None:
        self.graph = graph
        self.out: list[str] = []
        self.omit_type = False

    def zero(self, name: str, *, typed: bool) -> str:
        self.omit_type = not typed
        self.value(name, None)
        return "".join(self.out)

    def value(self, name: str, value: Any) -> None:
        t = self.graph.types[name]
        if t.kind == "ptr":
            self._pointer(t, value)
            return
        if value is None and self.graph.zero_typed:
            self.out.append(self.graph.zero_bare[name] if self.omit_type else self.graph.zero_typed[name])
            self.omit_type = False
            return
        if not self.omit_type:
            self.out.append(f"({name})")
        self.omit_type = False
        if t.custom and value is not None and not isinstance(value, GoStruct):
            value = _decode_custom(name, value)
        self._body(t, value)

    def _pointer(self, t: GoType, value: Any) -> None:
        if value is None:
            self.out.append("<nil>" if self.omit_type else f"({t.name})<nil>")
            return
        self.out.append("<*>" if self.omit_type else f"({t.name})")
        self.omit_type = True
        self.value(t.elem, value)

    def _body(self, t: GoType, value: Any) -> None:
        kind = t.kind
        if kind == "struct":
            self._struct(t, value)
        elif kind == "string":
            self.out.append("" if value is None else _string(t, value))
        elif kind in _INTEGER_KINDS_ALL:
            self.out.append(str(_integer(t, value)))
        elif kind == "bool":
            self.out.append("true" if value is True else _false(t, value))
        elif kind == "slice":
            self._slice(t, value)
        elif kind == "map":
            self._map(t, value)
        else:
            raise UnsupportedTemplate(f"{t.name}: kind {kind} is not printed")

    def _struct(self, t: GoType, value: Any) -> None:
        if value is not None and not isinstance(value, Mapping):
            raise UnsupportedTemplate(f"{t.name}: expected an object, got {type(value).__name__}")
        by_go = isinstance(value, GoStruct)
        out, zeros = self.out, self.graph.zero_typed
        out.append("{")
        for f, label in zip(t.fields, t.labels, strict=True):
            if value is None:
                field_value = None
            elif f.inline and not by_go:
                field_value = value
            else:
                field_value = value.get(f.go if by_go else f.json)
            if field_value is None and not self.omit_type and zeros:
                out.append(label + zeros[f.type])  # the common case: an absent field, printed once
                self.omit_type = False
                continue
            out.append(label)
            self.value(f.type, field_value)
        out.append("}")

    def _slice(self, t: GoType, value: Any) -> None:
        if not value:  # protobuf cannot carry an empty list: Go holds nil
            self.out.append("<nil>")
            return
        if not isinstance(value, list):
            raise UnsupportedTemplate(f"{t.name}: expected a list, got {type(value).__name__}")
        self.out.append("[")
        for i, item in enumerate(value):
            if i:
                self.out.append(" ")
            self.omit_type = True
            self.value(t.elem, item)
        self.out.append("]")

    def _map(self, t: GoType, value: Any) -> None:
        if not value:
            self.out.append("<nil>")
            return
        if not isinstance(value, Mapping):
            raise UnsupportedTemplate(f"{t.name}: expected an object, got {type(value).__name__}")
        self.out.append("map[")
        # Go sorts string keys bytewise; UTF-8 keeps code point order, so Python's order is the same.
        for i, key in enumerate(sorted(value)):
            if i:
                self.out.append(" ")
            self.omit_type = True
            self.value(t.key, key)
            self.out.append(":")
            self.omit_type = True
            self.value(t.elem, value[key])
        self.out.append("]")


def _string(t: GoType, value: Any) -> str:
    if not isinstance(value, str):
        raise UnsupportedTemplate(f"{t.name}: expected a string, got {value!r}")
    return value


def _integer(t: GoType, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedTemplate(f"{t.name}: expected an integer, got {value!r}")
    return value


def _false(t: GoType, value: Any) -> str:
    if value is None or value is False:
        return "false"
    raise UnsupportedTemplate(f"{t.name}: expected a boolean, got {value!r}")


def _decode_custom(name: str, value: Any) -> GoStruct:
    """Types with their own JSON decoding, turned into the Go fields they decode to."""
    if name == "intstr.IntOrString":
        if isinstance(value, int) and not isinstance(value, bool):
            return GoStruct(Type=0, IntVal=value, StrVal="")
        return GoStruct(Type=1, IntVal=0, StrVal=_string_of(name, value))
    if name == "resource.Quantity":
        try:
            parsed = parse_quantity(_string_of(name, value))
        except UnsupportedQuantity as err:
            raise UnsupportedTemplate(str(err)) from err
        amount = GoStruct(value=parsed.value, scale=parsed.scale)
        return GoStruct(i=amount, d=GoStruct(Dec=None), s=parsed.cached, Format=parsed.format)
    raise UnsupportedTemplate(f"{name} values inside a pod template are not reproduced (got {value!r})")


def _string_of(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UnsupportedTemplate(f"{name}: expected a string, got {value!r}")
    return value


# Immutable after import: the generated graph and the zero values printed from it.
_GRAPH: Final = _load_graph()
