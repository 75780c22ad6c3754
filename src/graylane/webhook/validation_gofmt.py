"""Print Rollout fragments the way upstream's Go webhook prints them in field errors.

Kruise Rollout's validator hands the *decoded Go value* of a bad field to ``field.Invalid``; apimachinery then
prints it with ``%#v`` (after dereferencing one top-level pointer). To reproduce those messages from the raw
JSON the apiserver sends us, this module describes the handful of upstream Go types involved (type name,
field order, pointer and slice shape), decodes JSON into a canonical Python form the way ``encoding/json``
would fill the Go struct, and prints that form with Go's ``%#v`` rules. The canonical form also gives us
``reflect.DeepEqual`` semantics (nil vs empty slice, unknown fields ignored) for the immutability checks.

Must not: validate anything, or know which rule reports which value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "INT32",
    "INT_OR_STRING",
    "STRING",
    "Field",
    "GoType",
    "IntOrString",
    "Ptr",
    "Scalar",
    "Slice",
    "Struct",
    "VersionSchemas",
    "decode",
    "go_quote",
    "go_syntax",
    "render_bad_value",
    "schemas_for",
    "type_name",
]

# Go prints nested pointers as "(*T)(0xc000123456)"; the address differs on every call, so a fixed
# placeholder keeps our messages deterministic while keeping upstream's shape.
_ADDRESS = "0xc000000000"


@dataclass(frozen=True)
class Scalar:
    """A Go string/integer/bool type; ``name`` is what Go shows for a pointer to it."""

    name: str
    kind: Literal["string", "int", "bool"]


@dataclass(frozen=True)
class IntOrString:
    """k8s.io/apimachinery intstr.IntOrString."""


@dataclass(frozen=True)
class Ptr:
    elem: GoType


@dataclass(frozen=True)
class Slice:
    elem: GoType


@dataclass(frozen=True)
class Field:
    go_name: str
    json_name: str | None  # None: embedded struct whose fields are inlined in the same JSON object
    type: GoType


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Field, ...]


GoType: TypeAlias = Scalar | IntOrString | Ptr | Slice | Struct

STRING = Scalar("string", "string")
INT32 = Scalar("int32", "int")
INT_OR_STRING = IntOrString()


def decode(go_type: GoType, raw: object) -> object:
    """Canonical, comparable form of ``raw`` once decoded into ``go_type`` (nil pointers/slices are None)."""
    if isinstance(go_type, Ptr):
        return None if raw is None else decode(go_type.elem, raw)
    if isinstance(go_type, Slice):
        return tuple(decode(go_type.elem, item) for item in raw) if isinstance(raw, list) else None
    if isinstance(go_type, Struct):
        return _decode_struct(go_type, raw)
    if isinstance(go_type, IntOrString):
        return _decode_int_or_string(raw)
    return _decode_scalar(go_type, raw)


def _decode_struct(go_type: Struct, raw: object) -> tuple[object, ...]:
    source = raw if isinstance(raw, dict) else {}
    return tuple(
        decode(f.type, source if f.json_name is None else source.get(f.json_name)) for f in go_type.fields
    )


def _decode_int_or_string(raw: object) -> tuple[int, int, str]:
    # (Type, IntVal, StrVal) as in the Go struct: Type 0 is Int, 1 is String.
    if isinstance(raw, str):
        return (1, 0, raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return (0, raw, "")
    return (0, 0, "")


def _decode_scalar(go_type: Scalar, raw: object) -> object:
    if go_type.kind == "bool":
        return raw if isinstance(raw, bool) else False
    if go_type.kind == "int":
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    return raw if isinstance(raw, str) else ""


def type_name(go_type: GoType) -> str:
    """The Go spelling of a type, e.g. ``[]v1beta1.CanaryStep`` or ``*intstr.IntOrString``."""
    if isinstance(go_type, Ptr):
        return "*" + type_name(go_type.elem)
    if isinstance(go_type, Slice):
        return "[]" + type_name(go_type.elem)
    if isinstance(go_type, IntOrString):
        return "intstr.IntOrString"
    return go_type.name


def go_syntax(go_type: GoType, value: object) -> str:
    """Go's ``%#v`` of an already decoded value, as printed when nested inside another value."""
    if isinstance(go_type, Ptr):
        return f"({type_name(go_type)})({'nil' if value is None else _ADDRESS})"
    if isinstance(go_type, Slice):
        return _slice_syntax(go_type, value)
    if isinstance(go_type, Struct):
        return _struct_syntax(go_type, value)
    if isinstance(go_type, IntOrString):
        kind, int_val, str_val = value if isinstance(value, tuple) else (0, 0, "")
        return f"intstr.IntOrString{{Type:{kind}, IntVal:{int_val}, StrVal:{go_quote(str(str_val))}}}"
    return _scalar_syntax(value)


def _slice_syntax(go_type: Slice, value: object) -> str:
    if not isinstance(value, tuple):
        return f"{type_name(go_type)}(nil)"
    items = ", ".join(go_syntax(go_type.elem, item) for item in value)
    return f"{type_name(go_type)}{{{items}}}"


def _struct_syntax(go_type: Struct, value: object) -> str:
    values = value if isinstance(value, tuple) else ()
    parts = (f"{f.go_name}:{go_syntax(f.type, v)}" for f, v in zip(go_type.fields, values, strict=False))
    return f"{go_type.name}{{{', '.join(parts)}}}"


def _scalar_syntax(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return go_quote(str(value))


def render_bad_value(go_type: GoType | None, raw: object) -> str:
    """apimachinery ``field.Error.ErrorBody`` value printing for a value upstream passed as ``go_type``.

    A nil interface or nil pointer prints as the *quoted* string "null" (apimachinery substitutes the
    string "null" and then formats it with %q). Without a type, plain JSON scalars print as Go would.
    """
    if isinstance(go_type, Ptr):
        if raw is None:
            return go_quote("null")
        go_type = go_type.elem
    if go_type is None:
        return _untyped_value(raw)
    value = decode(go_type, raw)
    if isinstance(go_type, Scalar):
        return _scalar_syntax(value)
    return go_syntax(go_type, value)


def _untyped_value(raw: object) -> str:
    if raw is None:
        return go_quote("null")
    if isinstance(raw, bool | int | str):
        return _scalar_syntax(raw)
    # Not something upstream reports; keep it readable rather than guess a Go type.
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, Go escapes, printable Unicode kept as is."""
    return '"' + "".join(_quote_char(ch) for ch in text) + '"'


def _quote_char(ch: str) -> str:
    if ch in ('"', "\\"):
        return "\\" + ch
    if ch.isprintable():
        return ch
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:  # not a valid rune: Go substitutes U+FFFD, which is printable
        return "\ufffd"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# --- The upstream Go types that appear in the validator's messages ------------------------------------

_HEADER_MATCH = Struct(
    "v1.HTTPHeaderMatch",
    (
        Field("Type", "type", Ptr(Scalar("v1.HeaderMatchType", "string"))),
        Field("Name", "name", STRING),
        Field("Value", "value", STRING),
    ),
)
_QUERY_MATCH = Struct(
    "v1.HTTPQueryParamMatch",
    (
        Field("Type", "type", Ptr(Scalar("v1.QueryParamMatchType", "string"))),
        Field("Name", "name", STRING),
        Field("Value", "value", STRING),
    ),
)
# Only ever printed as a nested pointer, so its fields never show.
_HEADER_FILTER = Ptr(Scalar("v1.HTTPHeaderFilter", "string"))
_PATH_MATCH = Ptr(Scalar("v1.HTTPPathMatch", "string"))


def _object_ref(name: str) -> Struct:
    return Struct(
        name,
        (
            Field("APIVersion", "apiVersion", STRING),
            Field("Kind", "kind", STRING),
            Field("Name", "name", STRING),
        ),
    )


def _route_match(pkg: str) -> Struct:
    headers = Field("Headers", "headers", Slice(_HEADER_MATCH))
    if pkg == "v1alpha1":
        return Struct("v1alpha1.HttpRouteMatch", (headers,))
    return Struct(
        "v1beta1.HttpRouteMatch",
        (
            Field("Path", "path", _PATH_MATCH),
            headers,
            Field("QueryParams", "queryParams", Slice(_QUERY_MATCH)),
        ),
    )


def _canary_step(pkg: str) -> Struct:
    amount = (
        Field("Weight", "weight", Ptr(INT32))
        if pkg == "v1alpha1"
        else Field("Traffic", "traffic", Ptr(STRING))
    )
    strategy = Struct(
        f"{pkg}.TrafficRoutingStrategy",
        (
            amount,
            Field("RequestHeaderModifier", "requestHeaderModifier", _HEADER_FILTER),
            Field("Matches", "matches", Slice(_route_match(pkg))),
        ),
    )
    pause = Struct(f"{pkg}.RolloutPause", (Field("Duration", "duration", Ptr(INT32)),))
    return Struct(
        f"{pkg}.CanaryStep",
        (
            Field("TrafficRoutingStrategy", None, strategy),
            Field("Replicas", "replicas", Ptr(INT_OR_STRING)),
            Field("Pause", "pause", pause),
        ),
    )


@dataclass(frozen=True)
class VersionSchemas:
    """The Go types of one Rollout API version that the validator reports."""

    workload_ref: Struct
    steps: Slice
    ingress: Struct
    gateway: Struct
    traffic_routing: Struct


def _schemas(pkg: str) -> VersionSchemas:
    ingress = Struct(
        f"{pkg}.IngressTrafficRouting",
        (Field("ClassType", "classType", STRING), Field("Name", "name", STRING)),
    )
    gateway = Struct(f"{pkg}.GatewayTrafficRouting", (Field("HTTPRouteName", "httpRouteName", Ptr(STRING)),))
    custom_ref = _object_ref("v1alpha1.CustomNetworkRef" if pkg == "v1alpha1" else "v1beta1.ObjectRef")
    routing = Struct(
        f"{pkg}.TrafficRoutingRef",
        (
            Field("Service", "service", STRING),
            Field("GracePeriodSeconds", "gracePeriodSeconds", INT32),
            Field("Ingress", "ingress", Ptr(ingress)),
            Field("Gateway", "gateway", Ptr(gateway)),
            Field("CustomNetworkRefs", "customNetworkRefs", Slice(custom_ref)),
        ),
    )
    workload_ref = _object_ref("v1alpha1.WorkloadRef" if pkg == "v1alpha1" else "v1beta1.ObjectRef")
    return VersionSchemas(workload_ref, Slice(_canary_step(pkg)), ingress, gateway, routing)


_V1ALPHA1 = _schemas("v1alpha1")
_V1BETA1 = _schemas("v1beta1")


def schemas_for(pkg: Literal["v1alpha1", "v1beta1"]) -> VersionSchemas:
    return _V1ALPHA1 if pkg == "v1alpha1" else _V1BETA1
