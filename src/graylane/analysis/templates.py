"""From a Rollout's analysis block and its templates to an AnalysisRun spec (pure).

What this module does:
- ``resolve_rollout_args``: the Rollout's arguments to plain values: ``value`` as is,
  ``valueFrom.podTemplateHashValue`` Stable/Latest as the stable or new pod-template-hash,
  ``valueFrom.fieldRef.fieldPath`` read from the Rollout object (``metadata.name``,
  ``metadata.labels['app']``, ``spec.strategy...``).
- ``build_run_spec``: several templates into one run, as Argo merges them: metrics, dryRun and
  measurementRetention concatenated (a metric name used twice is an error), template arguments merged
  (the same name with two different defaults is an error), the Rollout's values override the defaults
  (values for arguments no template declares are ignored), every argument must end with a value or a
  Secret reference, and ``{{args.NAME}}`` is replaced in every string of every metric. Secret arguments
  stay references: their values are substituted only into queries at measurement time (``planner``), so
  no secret is ever written into the AnalysisRun.

What it must not do: read templates or Secrets from the cluster (the controller passes them in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graylane.api.analysis import (
    AnalysisRunSpec,
    AnalysisTemplateSpec,
    Argument,
    Metric,
    PodTemplateHashValue,
)

__all__ = ["ResolutionError", "build_run_spec", "read_field", "resolve_rollout_args"]

_PATH_PART: Final = re.compile(r"""\.?([A-Za-z0-9_-]+)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[(\d+)\]""")


class ResolutionError(ValueError):
    """The analysis cannot be built; the message names the argument, metric or path."""


def read_field(obj: Mapping[str, Any], path: str) -> str:
    """The value at ``path`` in ``obj`` as a string (e.g. ``metadata.labels['app']``)."""
    position, current = 0, obj
    parts: list[str | int] = []
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if match is None or match.end() == position:
            raise ResolutionError(f"fieldRef {path!r}: cannot parse it at position {position}")
        name, single, double, index = match.groups()
        parts.append(
            int(index) if index is not None else next(p for p in (name, single, double) if p is not None)
        )
        position = match.end()
    node: Any = current
    for part in parts:
        in_list = isinstance(part, int) and isinstance(node, list) and part < len(node)
        in_map = isinstance(part, str) and isinstance(node, Mapping) and part in node
        if not (in_list or in_map):
            raise ResolutionError(f"fieldRef {path!r}: {part!r} not found in the Rollout")
        node = node[part]
    if isinstance(node, Mapping | list):
        raise ResolutionError(f"fieldRef {path!r} points at an object, not a value")
    return "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)


def resolve_rollout_args(
    args: Sequence[Argument], rollout: Mapping[str, Any], *, stable_hash: str, latest_hash: str
) -> list[Argument]:
    """The Rollout's analysis arguments with every ``valueFrom`` turned into a ``value``."""
    resolved: list[Argument] = []
    for arg in args:
        source = arg.value_from
        if source is None:
            resolved.append(Argument(name=arg.name, value=arg.value))
        elif source.pod_template_hash_value is not None:
            stable = source.pod_template_hash_value is PodTemplateHashValue.STABLE
            value = stable_hash if stable else latest_hash
            if not value:
                which = source.pod_template_hash_value
                raise ResolutionError(
                    f"argument {arg.name!r}: the {which} pod-template-hash is not known yet"
                )
            resolved.append(Argument(name=arg.name, value=value))
        elif source.field_ref is not None:
            resolved.append(Argument(name=arg.name, value=read_field(rollout, source.field_ref.field_path)))
        else:
            raise ResolutionError(
                f"argument {arg.name!r}: valueFrom needs podTemplateHashValue or fieldRef here"
            )
    return resolved


def _merge_args(templates: Sequence[AnalysisTemplateSpec]) -> dict[str, Argument]:
    merged: dict[str, Argument] = {}
    for spec in templates:
        for arg in spec.args:
            known = merged.get(arg.name)
            if (
                known is not None
                and known.value is not None
                and arg.value is not None
                and known.value != arg.value
            ):
                raise ResolutionError(
                    f"argument {arg.name!r} has two different default values in the templates: "
                    f"{known.value!r} and {arg.value!r}"
                )
            if known is None or (known.value is None and known.value_from is None):
                merged[arg.name] = arg
    return merged


def _substitute(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in values.items():
            value = value.replace("{{args." + name + "}}", text)
        return value
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    return value


def build_run_spec(templates: Sequence[AnalysisTemplateSpec], args: Sequence[Argument]) -> AnalysisRunSpec:
    """One run spec from ``templates`` and the Rollout's resolved ``args`` (see the module docstring)."""
    if not templates:
        raise ResolutionError("an analysis needs at least one template")
    merged = _merge_args(templates)
    for arg in args:
        if arg.name in merged and arg.value is not None:
            merged[arg.name] = Argument(name=arg.name, value=arg.value)
    for arg in merged.values():
        secret = arg.value_from is not None and arg.value_from.secret_key_ref is not None
        if arg.value is None and not secret:
            raise ResolutionError(
                f"argument {arg.name!r} needs a value: give it in the Rollout's analysis args"
            )
    values = {name: arg.value for name, arg in merged.items() if arg.value is not None}
    metrics: list[Metric] = []
    seen: set[str] = set()
    for spec in templates:
        for metric in spec.metrics:
            if metric.name in seen:
                raise ResolutionError(f"metric {metric.name!r} is defined by more than one template")
            seen.add(metric.name)
            dumped = metric.model_dump(by_alias=True, exclude_none=True)
            metrics.append(Metric.model_validate(_substitute(dumped, values)))
    return AnalysisRunSpec(
        metrics=metrics,
        args=list(merged.values()),
        dry_run=[entry for spec in templates for entry in spec.dry_run],
        measurement_retention=[entry for spec in templates for entry in spec.measurement_retention],
    )
