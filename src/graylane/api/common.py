"""Shared building blocks of the API models: the base model, Go-shaped serialisation, small shared types.

What this module does:
- ``KubeModel``: the pydantic base of every model (camelCase aliases, unknown fields kept so they
  round-trip), with ``from_obj`` / ``to_obj``.
- ``go_dump``: turns a model into the dict Kruise's Go code would produce for the same object. Each
  field follows its Go json tag: a field without ``omitempty`` is always written (``GoTag.ALWAYS``), a Go
  pointer is omitted only when nil (``GoTag.POINTER``), any other field is omitted when it holds its zero
  value (``None``, ``False``, ``0``, ``""``, empty list or map). Map keys are sorted, as Go sorts them,
  which makes the output usable for Kruise-compatible hashes (see ``hashing``).
- Annotated markers read by ``go_dump`` and by ``crdgen`` (``GoTag``, ``Format``, ``CRD_DEFAULT``,
  ``ListMapKey``), the ``IntOrString`` helpers, and the small types several kinds share.

What it must not do: know about any particular kind, version or CRD file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

__all__ = [
    "CRD_DEFAULT",
    "Format",
    "GoTag",
    "Int32",
    "Int64",
    "IntOrString",
    "KubeModel",
    "ListMapKey",
    "ObjectRef",
    "PatchPodTemplateMetadata",
    "RolloutCondition",
    "format_time",
    "go_dump",
    "go_tag",
    "is_percent",
    "percent",
    "scaled_int_or_percent",
]


class GoTag(Enum):
    """How the Go json tag of a field treats its zero value (see the module docstring)."""

    ALWAYS = "always"  # no omitempty, and required in the CRD schema
    ALWAYS_OPTIONAL = "always-optional"  # no omitempty, but ``+optional`` in the CRD schema
    POINTER = "pointer"  # ``*T`` with omitempty: a zero value is still written


@dataclass(frozen=True)
class Format:
    """OpenAPI ``format`` of an integer field in the CRD (``int32`` / ``int64``)."""

    name: str


@dataclass(frozen=True)
class ListMapKey:
    """Marks a list as ``x-kubernetes-list-type: map`` keyed by ``key`` in the CRD."""

    key: str


class _CrdDefault:
    """Marks a field whose model default is also declared as ``default`` in the CRD schema."""

    def __repr__(self) -> str:
        return "CRD_DEFAULT"


CRD_DEFAULT: Final = _CrdDefault()

Int32 = Annotated[int, Format("int32")]
Int64 = Annotated[int, Format("int64")]
# k8s intstr.IntOrString: an absolute number or a "N%" string.
IntOrString = int | str


class KubeModel(BaseModel):
    """Base of every API model: exact JSON names via aliases, unknown fields kept for round trips."""

    # defer_build: a model's validator is built when it first validates, not at import. The controller
    # imports every kind's models but most processes validate a few (issue 14: resident memory).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True
    )

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Self:
        """Parse a plain JSON-like dict (as read from the API server)."""
        return cls.model_validate(obj)

    def to_obj(self) -> dict[str, Any]:
        """Dump to the plain dict Kruise would write for this object (unknown fields included)."""
        return go_dump(self)


# --- Go-shaped serialisation ------------------------------------------------------------------------


def go_tag(field: FieldInfo) -> GoTag | None:
    """The ``GoTag`` marker of a field, if any."""
    return next((m for m in field.metadata if isinstance(m, GoTag)), None)


def go_dump(model: BaseModel, *, keep_extra: bool = True) -> dict[str, Any]:
    """Dump ``model`` field by field in declaration (= Go struct) order, applying Go's omitempty rules.

    ``keep_extra=False`` drops fields the model does not know, as Go's decoder would.
    """
    out: dict[str, Any] = {}
    for field in _go_fields(type(model)):
        value = getattr(model, field.name)
        if field.kept(value):
            out[field.key] = _dump_value(value, keep_extra)
    if keep_extra and model.model_extra:
        for key, value in model.model_extra.items():
            out.setdefault(key, _dump_value(value, keep_extra))
    return out


@dataclass(frozen=True, slots=True)
class _GoField:
    """What go_dump needs of one field, read from its FieldInfo once per class."""

    name: str
    key: str  # the JSON name
    always: bool  # no omitempty (GoTag.ALWAYS / ALWAYS_OPTIONAL) or required: written even when zero
    pointer: bool  # GoTag.POINTER: omitted only when None

    def kept(self, value: object) -> bool:
        """Go's omitempty: None, false, 0, "" and empty collections are not written, unless the field
        is always written; a pointer, a struct or a time is written whenever it is set."""
        if self.always:
            return True
        if value is None:
            return False
        return self.pointer or isinstance(value, BaseModel | datetime) or bool(value)


_GO_FIELDS = "__graylane_go_fields__"


def _go_fields(cls: type[BaseModel]) -> tuple[_GoField, ...]:
    """The class' fields as go_dump reads them, kept on the class (derived from its definition, so it
    never goes stale): go_dump runs for every status a controller writes or compares, and looking the
    tags up field by field was a tenth of a Rollout plan's time (issue 14)."""
    found: tuple[_GoField, ...] | None = cls.__dict__.get(_GO_FIELDS)
    if found is None:
        found = tuple(_go_field(name, field) for name, field in cls.model_fields.items())
        type.__setattr__(cls, _GO_FIELDS, found)
    return found


def _go_field(name: str, field: FieldInfo) -> _GoField:
    tag = go_tag(field)
    always = tag in (GoTag.ALWAYS, GoTag.ALWAYS_OPTIONAL) or field.is_required()
    return _GoField(name, field.alias or name, always, tag is GoTag.POINTER)


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _dump_value(value: object, keep_extra: bool) -> Any:
    if type(value) in _SCALARS:  # exact types: a str-valued Enum is not one
        return value
    if isinstance(value, BaseModel):
        return go_dump(value, keep_extra=keep_extra)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, list | tuple):
        return [_dump_value(item, keep_extra) for item in value]
    if isinstance(value, dict):
        # Go writes map keys sorted; doing the same keeps hashes byte-identical.
        return {key: _dump_value(value[key], keep_extra) for key in sorted(value)}
    return value


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, as ``metav1.Time`` marshals (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- IntOrString -------------------------------------------------------------------------------------

_PERCENT = re.compile(r"^[+-]?[0-9]+%$")


def is_percent(value: IntOrString) -> bool:
    """True for the string form ``"N%"``."""
    return isinstance(value, str) and value.endswith("%")


def percent(value: int) -> str:
    """``10`` -> ``"10%"``."""
    return f"{value}%"


def scaled_int_or_percent(value: IntOrString, total: int, *, round_up: bool) -> int:
    """k8s ``GetScaledValueFromIntOrPercent``: an int as is, ``"N%"`` as N% of ``total``.

    Raises ``ValueError`` for a string that is not a whole-number percentage, like Go does.
    """
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: string is not a percentage: {value!r}")
    if not _PERCENT.match(value):
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
    scaled = int(value[:-1]) * total
    return -(-scaled // 100) if round_up else scaled // 100


# --- small shared types ------------------------------------------------------------------------------


class ObjectRef(KubeModel):
    """Reference to an object in the same namespace (Go ``ObjectRef`` / v1alpha1 ``WorkloadRef``)."""

    api_version: str
    kind: str
    name: str


class PatchPodTemplateMetadata(KubeModel):
    """Labels and annotations patched onto the canary pod template."""

    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class RolloutCondition(KubeModel):
    """One entry of ``status.conditions`` (Rollout and BatchRelease)."""

    type: str
    status: str
    last_update_time: datetime | None = None
    last_transition_time: datetime | None = None
    reason: Annotated[str, GoTag.ALWAYS] = ""
    message: Annotated[str, GoTag.ALWAYS] = ""
