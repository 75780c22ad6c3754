"""Rules for analysis templates and runs, each error naming its field path and what is allowed.

What this module does: ``validate_template_spec`` checks an AnalysisTemplate's (or
ClusterAnalysisTemplate's) spec before it is used; ``validate_run_spec`` checks a resolved run (the same
rules, plus: no ``{{args.NAME}}`` left unresolved except secret arguments). Beyond the CRD schema: one
provider per metric, unique names, durations and decimals that parse, limits that are whole numbers,
``count > 1`` only with an ``interval`` (Argo's rule), conditions that compile, an http(s) address, the
judge's own rules (exactly one of counts/samples, an interval and a count of looks, no conditions or
limits it would ignore), measured exposure's (both queries, a window, a tolerance in percentage points,
no conditions or limits it would ignore), regular expressions that compile, and arguments with at most
one source.

What it must not do: read the cluster (a template's existence is the controller's business).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlparse

from graylane.analysis.expr import ConditionError, compile_condition
from graylane.api.analysis import (
    AnalysisRunSpec,
    AnalysisTemplateSpec,
    Argument,
    ExposureMetric,
    JudgeMetric,
    Metric,
    parse_decimal,
    parse_duration,
)

__all__ = ["MAX_JUDGE_LOOKS", "MAX_TIMEOUT", "FieldIssue", "validate_run_spec", "validate_template_spec"]

MAX_JUDGE_LOOKS: Final = 200  # every look's counts are kept in status and re-read at each look
MAX_TIMEOUT: Final = 300
_ARG = re.compile(r"\{\{\s*args\.([^}\s]+)\s*\}\}")


@dataclass(frozen=True)
class FieldIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def validate_template_spec(spec: AnalysisTemplateSpec, path: str = "spec") -> list[FieldIssue]:
    issues = _args(spec.args, f"{path}.args", template=True)
    issues += _metrics(spec.metrics, f"{path}.metrics", unresolved_ok=True)
    return issues + _patterns(spec, path)


def validate_run_spec(spec: AnalysisRunSpec, path: str = "spec") -> list[FieldIssue]:
    issues = _args(spec.args, f"{path}.args", template=True)
    secret = {arg.name for arg in spec.args if arg.value_from is not None and arg.value_from.secret_key_ref}
    issues += _metrics(spec.metrics, f"{path}.metrics", unresolved_ok=False, secret=secret)
    for arg in spec.args:
        if arg.value is None and arg.value_from is None:
            issues.append(FieldIssue(f"{path}.args", f"argument {arg.name!r} has no value"))
    return issues + _patterns(spec, path)


def _patterns(spec: AnalysisTemplateSpec | AnalysisRunSpec, path: str) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    names = [("dryRun", i, e.metric_name) for i, e in enumerate(spec.dry_run)]
    names += [("measurementRetention", i, e.metric_name) for i, e in enumerate(spec.measurement_retention)]
    for field, index, pattern in names:
        try:
            re.compile(pattern)
        except re.error as err:
            issues.append(
                FieldIssue(f"{path}.{field}[{index}].metricName", f"invalid regular expression: {err}")
            )
    for index, entry in enumerate(spec.measurement_retention):
        if entry.limit < 1:
            issues.append(FieldIssue(f"{path}.measurementRetention[{index}].limit", "must be at least 1"))
    return issues


def _args(args: Sequence[Argument], path: str, *, template: bool) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    seen: set[str] = set()
    for index, arg in enumerate(args):
        where = f"{path}[{index}]"
        if not arg.name:
            issues.append(FieldIssue(f"{where}.name", "must not be empty"))
        if arg.name in seen:
            issues.append(FieldIssue(f"{where}.name", f"duplicate argument {arg.name!r}"))
        seen.add(arg.name)
        source = arg.value_from
        if source is None:
            continue
        if arg.value is not None:
            issues.append(FieldIssue(where, "value and valueFrom are mutually exclusive"))
        given = [
            name
            for name, v in (
                ("secretKeyRef", source.secret_key_ref),
                ("fieldRef", source.field_ref),
                ("podTemplateHashValue", source.pod_template_hash_value),
            )
            if v is not None
        ]
        allowed = ("secretKeyRef",) if template else ("fieldRef", "podTemplateHashValue")
        if len(given) != 1:
            issues.append(
                FieldIssue(f"{where}.valueFrom", f"exactly one of {', '.join(allowed)} is required")
            )
        elif given[0] not in allowed:
            issues.append(
                FieldIssue(f"{where}.valueFrom.{given[0]}", f"not allowed here; use {' or '.join(allowed)}")
            )
    return issues


def _metrics(
    metrics: Sequence[Metric],
    path: str,
    *,
    unresolved_ok: bool,
    secret: frozenset[str] | set[str] = frozenset(),
) -> list[FieldIssue]:
    if not metrics:
        return [FieldIssue(path, "at least one metric is required")]
    issues: list[FieldIssue] = []
    seen: set[str] = set()
    for index, metric in enumerate(metrics):
        where = f"{path}[{index}]"
        if not metric.name:
            issues.append(FieldIssue(f"{where}.name", "must not be empty"))
        elif metric.name in seen:
            issues.append(FieldIssue(f"{where}.name", f"duplicate metric name {metric.name!r}"))
        seen.add(metric.name)
        issues += _metric(metric, where, unresolved_ok, secret)
    return issues


def _unresolved(text: str, secret: frozenset[str] | set[str]) -> list[str]:
    return [name for name in _ARG.findall(text) if name not in secret]


def _metric(
    metric: Metric, where: str, unresolved_ok: bool, secret: frozenset[str] | set[str]
) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    if not unresolved_ok:
        for field, text in _strings(metric):
            for name in _unresolved(text, secret):
                issues.append(FieldIssue(f"{where}.{field}", f"argument {name!r} was not given a value"))
    for field, value in (("interval", metric.interval), ("initialDelay", metric.initial_delay)):
        if value:
            try:
                parse_duration(value)
            except ValueError as err:
                issues.append(FieldIssue(f"{where}.{field}", str(err)))
    issues += _limits(metric, where, unresolved_ok)
    for field, condition in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        if condition and not (unresolved_ok and _ARG.search(condition)):
            try:
                compile_condition(condition)
            except ConditionError as err:
                issues.append(FieldIssue(f"{where}.{field}", str(err)))
    return issues + _provider(metric, where)


def _strings(metric: Metric) -> list[tuple[str, str]]:
    out = [("successCondition", metric.success_condition), ("failureCondition", metric.failure_condition)]
    for field, value in (
        ("count", metric.count),
        ("failureLimit", metric.failure_limit),
        ("inconclusiveLimit", metric.inconclusive_limit),
        ("consecutiveErrorLimit", metric.consecutive_error_limit),
    ):
        if isinstance(value, str):
            out.append((field, value))
    prometheus, judge = metric.provider.prometheus, metric.provider.judge
    if prometheus is not None:
        out += [
            ("provider.prometheus.address", prometheus.address),
            ("provider.prometheus.query", prometheus.query),
        ]
    if judge is not None:
        out.append(("provider.judge.address", judge.address))
        if judge.counts is not None:
            for side in ("canary", "stable"):
                queries = getattr(judge.counts, side)
                out += [
                    (f"provider.judge.counts.{side}.events", queries.events),
                    (f"provider.judge.counts.{side}.total", queries.total),
                ]
        if judge.samples is not None:
            out += [
                ("provider.judge.samples.canary", judge.samples.canary),
                ("provider.judge.samples.stable", judge.samples.stable),
            ]
    share = metric.provider.exposure
    if share is not None:
        out += [
            ("provider.exposure.address", share.address),
            ("provider.exposure.canary", share.canary),
            ("provider.exposure.total", share.total),
        ]
    return out


def _limits(metric: Metric, where: str, unresolved_ok: bool) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    specs = (
        ("count", metric.count, 0),
        ("failureLimit", metric.failure_limit, -1),
        ("inconclusiveLimit", metric.inconclusive_limit, 0),
        ("consecutiveErrorLimit", metric.consecutive_error_limit, 0),
    )
    values: dict[str, int] = {}
    for field, value, low in specs:
        if value is None or (unresolved_ok and isinstance(value, str) and _ARG.search(value)):
            continue
        try:
            number = int(value)
        except ValueError:
            issues.append(FieldIssue(f"{where}.{field}", f"must be a whole number, got {value!r}"))
            continue
        if number < low:
            issues.append(FieldIssue(f"{where}.{field}", f"must be at least {low}, got {number}"))
        values[field] = number
    if values.get("count", 0) > 1 and not metric.interval:
        issues.append(FieldIssue(f"{where}.interval", "required when count is greater than 1"))
    return issues


def _provider(metric: Metric, where: str) -> list[FieldIssue]:
    prometheus, judge, share = metric.provider.prometheus, metric.provider.judge, metric.provider.exposure
    path = f"{where}.provider"
    if sum(p is not None for p in (prometheus, judge, share)) != 1:
        return [FieldIssue(path, "exactly one of prometheus, judge and exposure is required")]
    if share is not None:
        return _exposure(metric, share, where)
    if prometheus is not None:
        issues = _address(prometheus.address, f"{path}.prometheus.address")
        if not prometheus.query.strip():
            issues.append(FieldIssue(f"{path}.prometheus.query", "must not be empty"))
        return issues + _timeout(prometheus.timeout, f"{path}.prometheus.timeout")
    assert judge is not None
    return _judge(metric, judge, where)


def _address(address: str, path: str) -> list[FieldIssue]:
    if _ARG.search(address):
        return []
    parsed = urlparse(address)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [FieldIssue(path, f"must be an http:// or https:// URL, got {address!r}")]
    return []


def _timeout(timeout: int | None, path: str) -> list[FieldIssue]:
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
        return [FieldIssue(path, f"must be between 1 and {MAX_TIMEOUT} seconds, got {timeout}")]
    return []


def _exposure(metric: Metric, share: ExposureMetric, where: str) -> list[FieldIssue]:
    path = f"{where}.provider.exposure"
    issues = _address(share.address, f"{path}.address") + _timeout(share.timeout, f"{path}.timeout")
    for field in ("canary", "total"):
        if not getattr(share, field).strip():
            issues.append(FieldIssue(f"{path}.{field}", "must not be empty"))
    try:
        if parse_duration(share.window) < 1:
            issues.append(FieldIssue(f"{path}.window", "must be at least 1s"))
    except ValueError as err:
        issues.append(FieldIssue(f"{path}.window", str(err)))
    try:
        parse_decimal(share.tolerance, low=0.0, high=100.0, name="tolerance")
    except ValueError as err:
        issues.append(FieldIssue(f"{path}.tolerance", str(err)))
    if share.min_requests is not None and share.min_requests < 1:
        issues.append(FieldIssue(f"{path}.minRequests", "must be at least 1"))
    if share.expected_weight is not None and not 0 <= share.expected_weight <= 100:
        issues.append(FieldIssue(f"{path}.expectedWeight", "must be a percentage between 0 and 100"))
    return issues + _unused_conditions(
        metric, where, "not used by measured exposure (it compares the split with the step's): remove it"
    )


def _judge(metric: Metric, judge: JudgeMetric, where: str) -> list[FieldIssue]:
    path = f"{where}.provider.judge"
    issues = _address(judge.address, f"{path}.address") + _timeout(judge.timeout, f"{path}.timeout")
    if (judge.counts is None) == (judge.samples is None):
        issues.append(FieldIssue(path, "exactly one of counts and samples is required"))
    for field, low, high in (("alpha", 1e-6, 0.5), ("margin", 0.0, 10.0)):
        try:
            parse_decimal(getattr(judge, field), low=low, high=high, name=field)
        except ValueError as err:
            issues.append(FieldIssue(f"{path}.{field}", str(err)))
    if judge.min_samples is not None and judge.min_samples < 1:
        issues.append(FieldIssue(f"{path}.minSamples", "must be at least 1"))
    if judge.samples is not None:
        try:
            if parse_duration(judge.samples.step) < 1:
                issues.append(FieldIssue(f"{path}.samples.step", "must be at least 1s"))
        except ValueError as err:
            issues.append(FieldIssue(f"{path}.samples.step", str(err)))
    if not metric.interval:
        issues.append(FieldIssue(f"{where}.interval", "required for the judge: each look reads one interval"))
    count = metric.count
    if count is None:
        issues.append(
            FieldIssue(f"{where}.count", f"required for the judge: the number of looks (1-{MAX_JUDGE_LOOKS})")
        )
    elif not isinstance(count, str) or not _ARG.search(count):
        try:
            if not 1 <= int(count) <= MAX_JUDGE_LOOKS:
                issues.append(
                    FieldIssue(f"{where}.count", f"must be between 1 and {MAX_JUDGE_LOOKS} for the judge")
                )
        except ValueError:
            pass  # reported by _limits
    return issues + _unused_conditions(
        metric, where, "not used by the judge (it decides by its tests): remove it"
    )


def _unused_conditions(metric: Metric, where: str, message: str) -> list[FieldIssue]:
    """The verdict fields a provider that decides by itself ignores: set, they would mislead."""
    fields = (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
        ("failureLimit", metric.failure_limit),
        ("inconclusiveLimit", metric.inconclusive_limit),
    )
    return [FieldIssue(f"{where}.{field}", message) for field, value in fields if value]
