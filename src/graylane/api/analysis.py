"""``analysis.graylane.io/v1alpha1``: metric analysis templates, runs, and the Rollout fields that name them.

What this module does: models AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun (metric fields
follow Argo Rollouts' names and meaning: ``interval``, ``count``, ``successCondition``,
``failureCondition``, ``failureLimit``, ``inconclusiveLimit``, ``consecutiveErrorLimit``, ``initialDelay``,
``dryRun``, ``args``), graylane's two providers (``prometheus`` with a condition over ``result``, and
``judge``, the statistical canary-versus-stable comparison), the run's status (every measurement with its
value, phase, times and message, per-metric counters, the verdict), and the ``analysis`` blocks a Rollout
step or a whole release uses to name templates and arguments. Every field carries a description, so
``kubectl explain`` documents the generated CRDs. Also the small parsers the spec's strings need
(Go durations, decimals), so every reader of a field parses it one way.

What it must not do: evaluate conditions, judge data or schedule measurements (``graylane.analysis``
does), or talk to the API server. Kruise's group is untouched: a Rollout without analysis has none of
these fields and serialises exactly as before.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from graylane.api.common import CRD_DEFAULT, GoTag, Int32, Int64, IntOrString, KubeModel

__all__ = [
    "API_VERSION",
    "BACKGROUND_STEP",
    "DEFAULT_CONSECUTIVE_ERROR_LIMIT",
    "DEFAULT_EXPOSURE_MIN_REQUESTS",
    "DEFAULT_EXPOSURE_TOLERANCE",
    "DEFAULT_EXPOSURE_WINDOW",
    "DEFAULT_MEASUREMENT_RETENTION",
    "GROUP",
    "RELEASE_LABEL",
    "REVISION_LABEL",
    "ROLLOUT_LABEL",
    "STEP_LABEL",
    "AnalysisPhase",
    "AnalysisRun",
    "AnalysisRunSpec",
    "AnalysisRunStatus",
    "AnalysisTemplate",
    "AnalysisTemplateRef",
    "AnalysisTemplateSpec",
    "Argument",
    "ClusterAnalysisTemplate",
    "CountQueries",
    "CountsJudge",
    "Direction",
    "DryRun",
    "ExposureMetric",
    "FieldRef",
    "JudgeEffect",
    "JudgeMetric",
    "JudgeReport",
    "JudgeSide",
    "JudgeState",
    "JudgeTest",
    "JudgeVerdict",
    "Measurement",
    "MeasurementRetention",
    "Metric",
    "MetricProvider",
    "MetricResult",
    "PodTemplateHashValue",
    "PrometheusMetric",
    "RolloutAnalysis",
    "RolloutBackgroundAnalysis",
    "RunSummary",
    "SamplesJudge",
    "SecretKeyRef",
    "ValueFrom",
    "parse_decimal",
    "parse_duration",
]

GROUP: Final = "analysis.graylane.io"
API_VERSION: Final = "analysis.graylane.io/v1alpha1"
# Argo's defaults: four errors in a row are tolerated, the fifth ends the metric in Error.
DEFAULT_CONSECUTIVE_ERROR_LIMIT: Final = 4
# Argo keeps 10; graylane keeps more so a whole step's evidence stays readable, still bounding the object.
DEFAULT_MEASUREMENT_RETENTION: Final = 100
# Measured exposure: the share is judged over this window, within this many percentage points, on at
# least this many requests (fewer cannot tell 20% from 15%: one request is 0.2 points at 500).
DEFAULT_EXPOSURE_WINDOW: Final = "30s"
DEFAULT_EXPOSURE_TOLERANCE: Final = "5"
DEFAULT_EXPOSURE_MIN_REQUESTS: Final = 100

# Labels graylane puts on the AnalysisRuns it creates for a Rollout (the Rollout finds its runs by them).
ROLLOUT_LABEL: Final = "analysis.graylane.io/rollout"
STEP_LABEL: Final = "analysis.graylane.io/step"  # "1".."n", or BACKGROUND_STEP
REVISION_LABEL: Final = "analysis.graylane.io/revision"  # the canary revision released
RELEASE_LABEL: Final = "analysis.graylane.io/release"  # which release of that revision (a retry is another)
BACKGROUND_STEP: Final = "background"

DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"
_OPTIONAL_DURATION_PATTERN: Final = r"^$|" + DURATION_PATTERN
DECIMAL_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?$|^\.[0-9]+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
OptionalDuration = Annotated[str, Field(pattern=_OPTIONAL_DURATION_PATTERN)]
DecimalString = Annotated[str, Field(pattern=DECIMAL_PATTERN)]


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"30s"``, ``"1m30s"``, ``"500ms"``, ``"0"``).

    Raises ``ValueError`` naming what is allowed; a sign or a bare number other than ``0`` is refused,
    as Argo's ``DurationString`` refuses it.
    """
    if text == "0":
        return 0.0
    if not text or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use a Go duration such as 30s, 5m or 1m30s")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


def parse_decimal(text: str, *, low: float, high: float, name: str) -> float:
    """A decimal string in ``[low, high]`` as a float; ``ValueError`` says which range is allowed."""
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} must be a decimal number such as 0.05, got {text!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {text!r}")
    return value


class AnalysisPhase(StrEnum):
    """Phase of a measurement, a metric or a whole run (Argo's ``AnalysisPhase`` values)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        return self not in (AnalysisPhase.PENDING, AnalysisPhase.RUNNING)


class JudgeVerdict(StrEnum):
    """What the judge concluded at one look."""

    PASS = "Pass"  # no regression beyond the margin (early: shown; at the last look: none found)
    FAIL = "Fail"  # a regression beyond the margin, at the configured false-alarm rate
    UNDECIDED = "Undecided"  # not yet: more looks follow
    NO_DATA = "NoData"  # too little data to say anything at the last look


class Direction(StrEnum):
    """Which way a sample metric gets worse."""

    INCREASE = "Increase"  # e.g. latency: higher is worse
    DECREASE = "Decrease"  # e.g. throughput: lower is worse


class PodTemplateHashValue(StrEnum):
    """Argo's ``valueFrom.podTemplateHashValue``: the stable or the new (canary) pod-template-hash."""

    STABLE = "Stable"
    LATEST = "Latest"


# --- arguments -----------------------------------------------------------------------------------------


class SecretKeyRef(KubeModel):
    """A key of a Secret in the run's namespace (template arguments only)."""

    name: str = Field(description="Name of the Secret, in the namespace of the AnalysisRun.")
    key: str = Field(description="Key inside the Secret whose value becomes the argument.")


class FieldRef(KubeModel):
    """A field of the Rollout, e.g. ``metadata.labels['app']`` (Rollout arguments only)."""

    field_path: str = Field(
        description="Path of a Rollout field, e.g. metadata.name or metadata.labels['app']."
    )


class ValueFrom(KubeModel):
    """Where an argument's value comes from; exactly one source."""

    secret_key_ref: SecretKeyRef | None = Field(
        None, description="Take the value from a Secret (AnalysisTemplate arguments only)."
    )
    field_ref: FieldRef | None = Field(
        None, description="Take the value from a field of the Rollout (Rollout analysis arguments only)."
    )
    pod_template_hash_value: PodTemplateHashValue | None = Field(
        None,
        description="Stable or Latest: the stable or the new revision's pod-template-hash "
        "(Rollout analysis arguments only).",
    )


class Argument(KubeModel):
    """A named argument, substituted as ``{{args.NAME}}`` into the template's strings."""

    name: str = Field(description="Argument name, referenced as {{args.NAME}}.")
    value: Annotated[str | None, GoTag.POINTER] = Field(
        None, description="Literal value. A template argument without value or valueFrom must be given one."
    )
    value_from: ValueFrom | None = Field(None, description="Take the value from elsewhere instead of value.")


# --- providers -----------------------------------------------------------------------------------------


class PrometheusMetric(KubeModel):
    """An instant PromQL query; the conditions see its result as ``result``."""

    address: str = Field(description="Base URL of the Prometheus server, e.g. http://prometheus:9090.")
    query: str = Field(
        description="Instant PromQL query. A vector becomes a list (result[0]), a scalar a number. "
        "An empty vector or a NaN value is an Error measurement, never a success."
    )
    timeout: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="Seconds to wait for an answer (default 10, at most 300)."
    )


class CountQueries(KubeModel):
    """Two counter queries for one version; ``{{window}}`` is replaced by the look's window, e.g. 60s."""

    events: str = Field(
        description="PromQL for the number of bad events (e.g. 5xx responses) in the window, "
        'e.g. sum(increase(http_requests_total{version="v2",code=~"5.."}[{{window}}])).'
    )
    total: str = Field(description="PromQL for the number of all events (requests) in the same window.")


class CountsJudge(KubeModel):
    """Rare-event counts: compare the canary's event rate with the stable's (exact conditional test)."""

    canary: CountQueries = Field(description="Queries for the canary (new) version.")
    stable: CountQueries = Field(description="Queries for the stable version.")


class SamplesJudge(KubeModel):
    """Latency-like samples: range queries whose every point is a sample (rank and dispersion tests)."""

    canary: str = Field(
        description="PromQL range query for the canary; every point of every series returned over the "
        "analysis window is one sample."
    )
    stable: str = Field(description="PromQL range query for the stable version, over the same window.")
    step: Duration = Field("15s", description="Resolution of the range queries (default 15s).")
    direction: Annotated[Direction, CRD_DEFAULT] = Field(
        Direction.INCREASE, description="Increase (default: higher is worse, as latency) or Decrease."
    )


class JudgeMetric(KubeModel):
    """graylane's statistical judge: canary versus stable over the same window, at a set false-alarm rate.

    Exactly one of ``counts`` and ``samples``. Each measurement is one look at the data so far; with
    ``earlyStop`` the decisions are always valid (a mixture sequential test), so looking every interval
    does not inflate false alarms.
    """

    address: str = Field(description="Base URL of the Prometheus server the judge reads.")
    timeout: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="Seconds to wait for each query (default 10, at most 300)."
    )
    counts: CountsJudge | None = Field(None, description="Compare rates of rare events such as errors.")
    samples: SamplesJudge | None = Field(None, description="Compare latency-like samples.")
    alpha: Annotated[DecimalString, CRD_DEFAULT] = Field(
        "0.05",
        description="False-alarm rate: the chance of failing a canary that is no worse (default 0.05).",
    )
    margin: Annotated[DecimalString, CRD_DEFAULT] = Field(
        "0",
        description="Practical-significance margin as a fraction: a canary worse by less than this "
        "(0.1 = 10%) is not a regression. Early passes need a margin above 0.",
    )
    early_stop: Annotated[bool | None, GoTag.POINTER] = Field(
        None,
        description="Decide as soon as the evidence allows (default true, always-valid sequential test); "
        "false decides only at the last look, with a fixed-sample test.",
    )
    min_samples: Annotated[Int32 | None, GoTag.POINTER] = Field(
        None,
        description="Least canary data for a verdict: requests (counts, default 100) or samples "
        "(samples, default 20). With less at the last look the verdict is NoData (Inconclusive).",
    )


class ExposureMetric(KubeModel):
    """Measured exposure: the canary's share of the requests the gateway itself counted, against the share
    the step intends. A measurement outside the tolerance holds the step (it never fails the release: a
    gateway that ignores the weight is not the new version's fault); the metric succeeds after ``count``
    measurements within it (default 1)."""

    address: str = Field(description="Base URL of the Prometheus server that scrapes the gateway.")
    canary: str = Field(
        description="PromQL: requests the gateway sent to the canary backend in the window, e.g. "
        'sum(increase(traefik_service_requests_total{service=~"ns-app-canary-80@.*"}[{{window}}])) '
        "or vector(0). No series is an Error (missing data), so add `or vector(0)`."
    )
    total: str = Field(
        description="PromQL: requests the gateway sent to the stable and the canary backends together, "
        "over the same window."
    )
    window: Duration = Field(
        DEFAULT_EXPOSURE_WINDOW, description="The window {{window}} stands for (default 30s)."
    )
    tolerance: Annotated[DecimalString, CRD_DEFAULT] = Field(
        DEFAULT_EXPOSURE_TOLERANCE,
        description="Allowed distance between the observed and the intended canary share, in percentage "
        "points (default 5).",
    )
    min_requests: Annotated[Int32 | None, GoTag.POINTER] = Field(
        None,
        description="Fewest requests in the window for a measurement (default 100); fewer is an Error "
        "measurement (too little traffic to see the split).",
    )
    expected_weight: Annotated[Int32 | None, GoTag.POINTER] = Field(
        None,
        description="The canary share the step intends, in percent. graylane writes it into the "
        "AnalysisRun from the step's traffic; a value in a template is replaced.",
    )
    timeout: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="Seconds to wait for each query (default 10, at most 300)."
    )


class MetricProvider(KubeModel):
    """Exactly one provider."""

    prometheus: PrometheusMetric | None = Field(None, description="A PromQL query judged by the conditions.")
    judge: JudgeMetric | None = Field(None, description="The statistical canary-versus-stable judge.")
    exposure: ExposureMetric | None = Field(
        None, description="Measured exposure: the gateway's observed split against the step's share."
    )


# --- templates -----------------------------------------------------------------------------------------


class Metric(KubeModel):
    """One metric: what to measure, how often, and when it fails (Argo's semantics)."""

    name: str = Field(description="Name of the metric, unique in the template.")
    interval: OptionalDuration = Field(
        "", description="Time between measurements, e.g. 30s. Without it the metric is measured once."
    )
    initial_delay: OptionalDuration = Field(
        "", description="Wait this long after the run starts before the first measurement."
    )
    count: Annotated[IntOrString | None, GoTag.POINTER] = Field(
        None,
        description="Number of measurements (errors not counted). Unset with an interval: measure until "
        "the run is terminated. May be {{args.NAME}}.",
    )
    success_condition: str = Field(
        "", description="Expression over result that marks a measurement Successful, e.g. result[0] < 0.05."
    )
    failure_condition: str = Field(
        "", description="Expression over result that marks a measurement Failed, e.g. result[0] >= 0.05."
    )
    failure_limit: Annotated[IntOrString | None, GoTag.POINTER] = Field(
        None, description="Failed measurements tolerated before the metric fails (default 0; -1: never)."
    )
    inconclusive_limit: Annotated[IntOrString | None, GoTag.POINTER] = Field(
        None, description="Inconclusive measurements tolerated before the metric is Inconclusive (default 0)."
    )
    consecutive_error_limit: Annotated[IntOrString | None, GoTag.POINTER] = Field(
        None, description="Errors in a row tolerated before the metric ends in Error (default 4)."
    )
    provider: MetricProvider = Field(description="Where the measurement comes from.")


class DryRun(KubeModel):
    """Metrics recorded without deciding anything."""

    metric_name: str = Field(description="Metric name, or a regular expression matched against whole names.")


class MeasurementRetention(KubeModel):
    """How many measurements of a metric the run's status keeps."""

    metric_name: str = Field(description="Metric name, or a regular expression matched against whole names.")
    limit: Int32 = Field(description="Measurements kept (the counters always count all of them).")


class AnalysisTemplateSpec(KubeModel):
    """Metrics and the arguments they take."""

    metrics: list[Metric] = Field(description="The metrics to measure; a run fails when any of them fails.")
    args: list[Argument] = Field(
        default_factory=list, description="Arguments the metrics use as {{args.NAME}}."
    )
    dry_run: list[DryRun] = Field(
        default_factory=list, description="Metrics that are measured and recorded but never decide the run."
    )
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=list, description="Measurements kept per metric (default 100)."
    )


class AnalysisTemplate(KubeModel):
    api_version: Literal["analysis.graylane.io/v1alpha1"] = "analysis.graylane.io/v1alpha1"
    kind: Literal["AnalysisTemplate"] = "AnalysisTemplate"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AnalysisTemplateSpec = Field(description="The metrics and their arguments.")


class ClusterAnalysisTemplate(KubeModel):
    api_version: Literal["analysis.graylane.io/v1alpha1"] = "analysis.graylane.io/v1alpha1"
    kind: Literal["ClusterAnalysisTemplate"] = "ClusterAnalysisTemplate"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AnalysisTemplateSpec = Field(description="The metrics and their arguments.")


# --- runs ----------------------------------------------------------------------------------------------


class AnalysisRunSpec(KubeModel):
    """The templates' metrics with arguments resolved, as one run measures them."""

    metrics: list[Metric] = Field(description="The metrics to measure.")
    args: list[Argument] = Field(default_factory=list, description="Argument values used by the metrics.")
    terminate: bool = Field(
        False, description="Stop measuring; metrics without a count are then assessed as they stand."
    )
    dry_run: list[DryRun] = Field(default_factory=list, description="Metrics that never decide the run.")
    measurement_retention: list[MeasurementRetention] = Field(
        default_factory=list, description="Measurements kept per metric (default 100)."
    )


class JudgeSide(KubeModel):
    """What the judge saw of one version."""

    events: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="Bad events in the analysis so far (counts)."
    )
    total: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="All events in the analysis so far (counts)."
    )
    rate: Annotated[float | None, GoTag.POINTER] = Field(None, description="events / total.")
    samples: Annotated[Int64 | None, GoTag.POINTER] = Field(None, description="Number of samples (samples).")
    median: Annotated[float | None, GoTag.POINTER] = Field(None, description="Median sample (samples).")
    dropped: Annotated[Int64 | None, GoTag.POINTER] = Field(
        None, description="NaN or infinite points left out (samples)."
    )


class JudgeTest(KubeModel):
    """One hypothesis test of a look."""

    name: str = Field(description="conditional-binomial, mann-whitney or brown-forsythe.")
    p_value: float = Field(
        description="p-value of 'the canary is no worse than the margin allows' (always valid when "
        "sequential)."
    )
    threshold: float = Field(description="The test fails the canary when pValue is below this.")
    statistic: Annotated[float | None, GoTag.POINTER] = Field(
        None, description="z statistic of the test, when it has one."
    )
    rejected: bool = Field(False, description="True when this test found a regression.")


class JudgeEffect(KubeModel):
    """An effect size with its confidence interval (a confidence sequence when sequential)."""

    name: str = Field(description="What is estimated, e.g. rate ratio (canary / stable).")
    estimate: Annotated[float | None, GoTag.POINTER] = Field(None, description="Point estimate.")
    lower: Annotated[float | None, GoTag.POINTER] = Field(None, description="Lower confidence bound.")
    upper: Annotated[float | None, GoTag.POINTER] = Field(
        None, description="Upper confidence bound (absent: unbounded)."
    )
    confidence: Annotated[float | None, GoTag.POINTER] = Field(
        None, description="Confidence level of the interval, e.g. 0.95."
    )


class JudgeReport(KubeModel):
    """The judge's evidence at one look."""

    verdict: JudgeVerdict = Field(description="Pass, Fail, Undecided or NoData.")
    look: Int32 = Field(description="1-based number of this look.")
    final: bool = Field(False, description="True at the last planned look.")
    sequential: bool = Field(False, description="True when decisions are always valid (earlyStop).")
    canary: JudgeSide = Field(default_factory=JudgeSide, description="Canary data so far.")
    stable: JudgeSide = Field(default_factory=JudgeSide, description="Stable data so far.")
    tests: list[JudgeTest] = Field(default_factory=list, description="The hypothesis tests.")
    effects: list[JudgeEffect] = Field(default_factory=list, description="Effect sizes with intervals.")


class JudgeState(KubeModel):
    """What the judge carries from look to look."""

    looks: list[list[Int64]] = Field(
        default_factory=list,
        description="Counts judge: [canaryEvents, canaryTotal, stableEvents, stableTotal] of every look.",
    )
    window_end: datetime | None = Field(None, description="End of the last window read.")
    max_log_lr: dict[str, float] = Field(
        default_factory=dict,
        description="Largest log likelihood ratio seen per test (its always-valid p-value is exp(-x)).",
    )


class Measurement(KubeModel):
    """One measurement: its phase, value and evidence."""

    phase: AnalysisPhase = Field(description="Successful, Failed, Inconclusive or Error.")
    message: str = Field("", description="Why, for anything but Successful (e.g. the query error).")
    started_at: datetime | None = Field(None, description="When the measurement started.")
    finished_at: datetime | None = Field(None, description="When it finished.")
    value: str = Field("", description="The measured value, as the conditions saw it.")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Evidence: the query as run, the window read."
    )
    judge: JudgeReport | None = Field(None, description="The judge's statistics (judge metrics).")


class MetricResult(KubeModel):
    """Measurements and counters of one metric."""

    name: str = Field(description="Metric name.")
    phase: AnalysisPhase = Field(description="Pending, Running or the metric's outcome.")
    measurements: list[Measurement] = Field(
        default_factory=list, description="The latest measurements (see measurementRetention)."
    )
    message: str = Field("", description="Why the metric ended as it did, with the evidence.")
    count: Int32 = Field(0, description="Measurements taken, errors not counted.")
    successful: Int32 = Field(0, description="Successful measurements.")
    failed: Int32 = Field(0, description="Failed measurements.")
    inconclusive: Int32 = Field(0, description="Inconclusive measurements.")
    error: Int32 = Field(0, description="Measurements that ended in Error.")
    consecutive_error: Int32 = Field(0, description="Errors since the last measurement without one.")
    dry_run: bool = Field(False, description="True when the metric never decides the run.")
    judge: JudgeState | None = Field(None, description="State the judge carries between looks.")


class RunSummary(KubeModel):
    """How many metrics ended in each phase."""

    count: Int32 = Field(0, description="Metrics.")
    successful: Int32 = Field(0, description="Successful metrics.")
    failed: Int32 = Field(0, description="Failed metrics.")
    inconclusive: Int32 = Field(0, description="Inconclusive metrics.")
    error: Int32 = Field(0, description="Metrics in Error.")


class AnalysisRunStatus(KubeModel):
    """The run's verdict and evidence."""

    phase: str = Field("", description="Pending, Running, Successful, Failed, Error or Inconclusive.")
    message: str = Field("", description="The verdict's reason: the deciding metric, value and condition.")
    metric_results: list[MetricResult] = Field(default_factory=list, description="Per metric.")
    started_at: datetime | None = Field(None, description="When the run started measuring.")
    run_summary: RunSummary | None = Field(None, description="Metrics that decide, by phase.")
    dry_run_summary: RunSummary | None = Field(None, description="Dry-run metrics, by phase.")

    def result(self, name: str) -> MetricResult | None:
        return next((r for r in self.metric_results if r.name == name), None)


class AnalysisRun(KubeModel):
    api_version: Literal["analysis.graylane.io/v1alpha1"] = "analysis.graylane.io/v1alpha1"
    kind: Literal["AnalysisRun"] = "AnalysisRun"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AnalysisRunSpec = Field(description="What the run measures.")
    status: AnalysisRunStatus = Field(
        default_factory=AnalysisRunStatus, description="Measurements and verdict, written by graylane."
    )


# --- on the Rollout ------------------------------------------------------------------------------------


class AnalysisTemplateRef(KubeModel):
    """A template a Rollout's analysis uses."""

    template_name: str = Field(description="Name of the AnalysisTemplate (or ClusterAnalysisTemplate).")
    cluster_scope: bool = Field(False, description="True for a ClusterAnalysisTemplate.")


class RolloutAnalysis(KubeModel):
    """Analysis of one step (graylane): the step waits for the run; failure rolls the release back."""

    templates: list[AnalysisTemplateRef] = Field(
        description="Templates whose metrics are measured together in one AnalysisRun."
    )
    args: list[Argument] = Field(
        default_factory=list,
        description="Values for the templates' arguments: value, or valueFrom "
        "fieldRef / podTemplateHashValue.",
    )


class RolloutBackgroundAnalysis(RolloutAnalysis):
    """Analysis of a whole release (graylane): runs beside the steps; failure at any step rolls back."""

    starting_step: Annotated[Int32 | None, GoTag.POINTER] = Field(
        None, description="1-based step at which the background analysis starts (default: the first)."
    )
