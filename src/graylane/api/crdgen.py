"""Generate graylane's CRDs from the API models (the controller-gen of graylane).

The four ``rollouts.kruise.io`` CRDs are Kruise's; the three ``analysis.graylane.io`` ones
(AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun) are graylane's own and carry the fields'
descriptions, so ``kubectl explain`` documents them.

What this module does: walks the pydantic models and writes a structural OpenAPI v3 schema per served
version (everything inlined; ``x-kubernetes-int-or-string`` for IntOrString; unknown fields preserved
only where Kruise preserves them; enums, defaults, ``maxItems`` and list-map markers as upstream), the
status subresource, Kruise's printer columns, storage flags, and for Rollout and BatchRelease a Webhook
conversion. Keys are sorted, as controller-gen sorts them, so output is deterministic.
``python -m graylane.api.crdgen [DIR]`` rewrites ``manifests/crds/`` (``--check`` only compares).

The conversion ``clientConfig`` is a placeholder, ``url: https://graylane-conversion.invalid/convert``:
the API server accepts the CRD as is, but conversions fail until the installer replaces it with the
real webhook address and ``caBundle`` (``with_conversion_client`` does that on a parsed CRD).

What it must not do: hand-write schema fragments that the models could express, or talk to a cluster.
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from graylane.api import analysis, batchrelease, rollout_v1alpha1, rollout_v1beta1
from graylane.api.common import CRD_DEFAULT, Format, GoTag, ListMapKey, go_tag
from graylane.api.rollouthistory import RolloutHistory
from graylane.api.trafficrouting import TrafficRouting

__all__ = ["CONVERSION_URL_PLACEHOLDER", "crd_documents", "main", "render_all", "with_conversion_client"]

GROUP: Final = "rollouts.kruise.io"
CONVERSION_URL_PLACEHOLDER: Final = "https://graylane-conversion.invalid/convert"
_HEADER: Final = "# Generated from the graylane.api models by `python -m graylane.api.crdgen`. Do not edit.\n"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    description: str = ""

    def to_obj(self) -> dict[str, Any]:
        out = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        return {**out, "description": self.description} if self.description else out


@dataclass(frozen=True)
class Version:
    name: str
    model: type[BaseModel]
    storage: bool
    columns: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Crd:
    kind: str
    plural: str
    versions: tuple[Version, ...]
    webhook_conversion: bool = False
    group: str = GROUP
    scope: str = "Namespaced"
    description: str = ""  # of the root schema: what `kubectl explain KIND` prints first
    short_names: tuple[str, ...] = ()


_CANARY: Final = "The rollout canary"
_AGE: Final = Column("AGE", "date", ".metadata.creationTimestamp")


def _rollout_columns(step_path: str) -> tuple[Column, ...]:
    return (
        Column("STATUS", "string", ".status.phase", "The rollout status phase"),
        Column("CANARY_STEP", "integer", f"{step_path}.currentStepIndex", f"{_CANARY} status step"),
        Column("CANARY_STATE", "string", f"{step_path}.currentStepState", f"{_CANARY} status step state"),
        Column("MESSAGE", "string", ".status.message", f"{_CANARY} status message"),
        _AGE,
    )


# Kruise keeps the v1alpha1 path for KIND in v1beta1 too, so the column is empty there (upstream quirk).
_BATCH_RELEASE_COLUMNS: Final = (
    Column("KIND", "string", ".spec.targetReference.workloadRef.kind"),
    Column("PHASE", "string", ".status.phase"),
    Column("BATCH", "integer", ".status.canaryStatus.currentBatch"),
    Column("BATCH-STATE", "string", ".status.canaryStatus.batchState"),
    _AGE,
)
_TRAFFIC_ROUTING_COLUMNS: Final = (
    Column("STATUS", "string", ".status.phase", "The TrafficRouting status phase"),
    Column("MESSAGE", "string", ".status.message", "The TrafficRouting canary status message"),
    _AGE,
)

_ANALYSIS_RUN_COLUMNS: Final = (
    Column("STATUS", "string", ".status.phase", "The analysis run's phase"),
    Column("MESSAGE", "string", ".status.message", "Why the run ended as it did"),
    _AGE,
)

CRDS: Final = (
    Crd(
        "Rollout",
        "rollouts",
        (
            Version("v1alpha1", rollout_v1alpha1.Rollout, False, _rollout_columns(".status.canaryStatus")),
            Version("v1beta1", rollout_v1beta1.Rollout, True, _rollout_columns(".status")),
        ),
        webhook_conversion=True,
    ),
    Crd(
        "BatchRelease",
        "batchreleases",
        (
            Version("v1alpha1", batchrelease.BatchReleaseV1alpha1, False, _BATCH_RELEASE_COLUMNS),
            Version("v1beta1", batchrelease.BatchRelease, True, _BATCH_RELEASE_COLUMNS),
        ),
        webhook_conversion=True,
    ),
    Crd(
        "TrafficRouting",
        "trafficroutings",
        (Version("v1alpha1", TrafficRouting, True, _TRAFFIC_ROUTING_COLUMNS),),
    ),
    Crd("RolloutHistory", "rollouthistories", (Version("v1alpha1", RolloutHistory, True),)),
    Crd(
        "AnalysisTemplate",
        "analysistemplates",
        (Version("v1alpha1", analysis.AnalysisTemplate, True),),
        group=analysis.GROUP,
        description="Metrics to measure during a release, and when they fail (graylane).",
        short_names=("at",),
    ),
    Crd(
        "ClusterAnalysisTemplate",
        "clusteranalysistemplates",
        (Version("v1alpha1", analysis.ClusterAnalysisTemplate, True),),
        group=analysis.GROUP,
        scope="Cluster",
        description="An AnalysisTemplate usable from every namespace (graylane).",
        short_names=("cat",),
    ),
    Crd(
        "AnalysisRun",
        "analysisruns",
        (Version("v1alpha1", analysis.AnalysisRun, True, _ANALYSIS_RUN_COLUMNS),),
        group=analysis.GROUP,
        description="One analysis of a release: every measurement, and the verdict (graylane).",
        short_names=("ar",),
    ),
)


# --- schema from models ------------------------------------------------------------------------------


def model_schema(model: type[BaseModel], *, root: bool = False) -> dict[str, Any]:
    """Structural schema of ``model``; the root object has no ``required`` and an opaque ``metadata``."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        opaque_metadata = root and key == "metadata"
        properties[key] = {"type": "object"} if opaque_metadata else _field_schema(field)
        if not root and (field.is_required() or go_tag(field) is GoTag.ALWAYS):
            required.append(key)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = sorted(required)
    return schema


def _field_schema(field: FieldInfo) -> dict[str, Any]:
    schema = _type_schema(field.annotation, list(field.metadata))
    if CRD_DEFAULT in field.metadata:
        default = field.get_default(call_default_factory=True)
        schema["default"] = default.value if isinstance(default, Enum) else default
    if field.description:
        schema["description"] = field.description
    return schema


def _type_schema(tp: Any, meta: list[Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        return _type_schema(base, [*meta, *extra])
    if tp is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if origin in (Union, types.UnionType):
        return _union_schema(tp, meta)
    if origin is Literal:
        return {"type": "string"}
    if origin is list:
        return _list_schema(get_args(tp)[0], meta)
    if origin is dict:
        return _map_schema(get_args(tp)[1])
    return _scalar_schema(tp, meta)


def _union_schema(tp: Any, meta: list[Any]) -> dict[str, Any]:
    members = [arg for arg in get_args(tp) if arg is not type(None)]
    if set(members) == {int, str}:
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    if len(members) != 1:
        raise TypeError(f"no CRD schema for union {tp!r}")
    return _type_schema(members[0], meta)


def _map_schema(value: Any) -> dict[str, Any]:
    if value is Any:
        return {"type": "object"}
    return {"type": "object", "additionalProperties": _type_schema(value, [])}


def _list_schema(item: Any, meta: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": _type_schema(item, [])}
    for marker in meta:
        if getattr(marker, "max_length", None) is not None:
            schema["maxItems"] = marker.max_length
        elif isinstance(marker, ListMapKey):
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = [marker.key]
    return schema


def _scalar_schema(tp: Any, meta: list[Any]) -> dict[str, Any]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return model_schema(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"type": "string", "enum": [member.value for member in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        formats = [marker.name for marker in meta if isinstance(marker, Format)]
        return {"type": "integer", **({"format": formats[0]} if formats else {})}
    if tp is float:
        return {"type": "number"}
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if tp is str:
        return _string_schema(meta)
    raise TypeError(f"no CRD schema for {tp!r}")


def _string_schema(meta: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    # pydantic keeps length limits as annotated_types.MinLen/MaxLen and the pattern in its own metadata.
    for marker in meta:
        if getattr(marker, "min_length", None) is not None:
            schema["minLength"] = marker.min_length
        if getattr(marker, "max_length", None) is not None:
            schema["maxLength"] = marker.max_length
        if getattr(marker, "pattern", None):
            schema["pattern"] = marker.pattern
    return schema


# --- CRD documents -----------------------------------------------------------------------------------


def _version_obj(crd: Crd, version: Version) -> dict[str, Any]:
    schema = model_schema(version.model, root=True)
    if crd.description:
        schema["description"] = crd.description
    out: dict[str, Any] = {
        "name": version.name,
        "served": True,
        "storage": version.storage,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
    }
    if version.columns:
        out["additionalPrinterColumns"] = [column.to_obj() for column in version.columns]
    return out


def _crd_obj(crd: Crd) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": crd.kind,
        "listKind": f"{crd.kind}List",
        "plural": crd.plural,
        "singular": crd.kind.lower(),
    }
    if crd.short_names:
        names["shortNames"] = list(crd.short_names)
    spec: dict[str, Any] = {
        "group": crd.group,
        "names": names,
        "scope": crd.scope,
        "versions": [_version_obj(crd, version) for version in crd.versions],
    }
    if crd.webhook_conversion:
        spec["conversion"] = {
            "strategy": "Webhook",
            "webhook": {
                "clientConfig": {"url": CONVERSION_URL_PLACEHOLDER},
                "conversionReviewVersions": ["v1", "v1beta1"],
            },
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{crd.group}"},
        "spec": spec,
    }


def crd_documents() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, sorted by file name."""
    docs = {f"{crd.group}_{crd.plural}.yaml": _crd_obj(crd) for crd in CRDS}
    return dict(sorted(docs.items()))


def render_all() -> dict[str, str]:
    """File name -> YAML text of every CRD, sorted by file name."""
    import yaml  # the committed files' text; the controller installs `crd_documents()` and needs no YAML

    return {
        name: _HEADER + yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, explicit_start=True)
        for name, doc in crd_documents().items()
    }


def with_conversion_client(crd: Mapping[str, Any], client_config: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a CRD object whose conversion webhook uses ``client_config`` (``url`` or ``service``,
    plus ``caBundle``) instead of the placeholder. CRDs without webhook conversion are copied unchanged."""
    out = copy.deepcopy(dict(crd))
    webhook = out.get("spec", {}).get("conversion", {}).get("webhook")
    if webhook is not None:
        webhook["clientConfig"] = copy.deepcopy(dict(client_config))
    return out


# --- command line ------------------------------------------------------------------------------------


def default_output_dir() -> Path:
    """``manifests/crds`` of the source checkout this module lives in."""
    return Path(__file__).resolve().parents[3] / "manifests" / "crds"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the CRD files; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [arg for arg in args if arg != "--check"]
    out_dir = Path(paths[0]) if paths else default_output_dir()
    stale = [name for name, text in render_all().items() if _stale(out_dir / name, text)]
    if check:
        for name in stale:
            print(f"out of date: {out_dir / name}", file=sys.stderr)
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out_dir / name).write_text(text, encoding="utf-8")
    return 0


def _stale(path: Path, text: str) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != text


if __name__ == "__main__":
    raise SystemExit(main())
