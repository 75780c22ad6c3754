"""Metric analysis in the Rollout's step machine (graylane's; Kruise's StepMetricsAnalysis is a no-op).

What this module decides, from the snapshot of the Rollout's AnalysisRuns (planner/analysis_observed.py):
- at StepMetricsAnalysis of a step with ``analysis``: create the step's run (the templates merged, the
  arguments resolved, measured exposure told the step's share), then wait for its verdict. Successful:
  on to StepPaused, where the verdict stands in for the person: without a ``pause.duration`` the step
  is approved at once (with one, the step still waits that long). Failed: roll back. Inconclusive or
  Error: StepPaused, held for a person with the evidence in status.message (approve continues, as for a
  manual pause). While a measured-exposure look is outside its tolerance the step holds, the observed
  split in status.message and in the condition;
- background ``analysis``: its run starts at ``startingStep`` (default 1) and runs beside the steps;
  Failed at any step rolls back; Inconclusive or Error holds every following step for a person;
- rolling back = setting the workload's template back to the stable ReplicaSet's (with the release
  recorded for `graylane retry`, as `graylane abort` does): Kruise's own fast-rollback path then
  cancels the release (traffic to stable first). The failing metric, its query, value and condition
  stay in status.message through the cancellation, in the ``Analysis`` condition and in a Warning Event;
- runs that no longer decide anything (another step's, a finished or cancelled release's) are
  terminated; every run is owned by the Rollout, so it is garbage-collected with it.
Runs are named after the Rollout, the revision, the release (when it began: a retried release is a new
one) and the step, so a repeated create finds the name taken and nothing is created twice.

A Rollout without analysis meets none of this: every function returns at once, changing nothing.
What it must not do: I/O, read a clock, or judge data (the AnalysisRun controller does).
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Final

from graylane.analysis.templates import ResolutionError, build_run_spec, resolve_rollout_args
from graylane.api import analysis as an
from graylane.api.abort_record import ABORT_RECORD_ANNOTATION, abort_record_value, clean_template
from graylane.api.common import RolloutCondition
from graylane.api.enums import ConditionStatus, ConditionType, ProgressingReason, RolloutPhase, StepState
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner import conditions
from graylane.planner.actions import (
    CreateAnalysisRun,
    RecordEvent,
    RollBackWorkload,
    SetRolloutAnnotation,
    TerminateAnalysisRun,
)
from graylane.planner.analysis_observed import RunSeen
from graylane.planner.context import Pass
from graylane.planner.weights import traffic_percent

__all__ = [
    "CONDITION",
    "Gate",
    "Reason",
    "background",
    "cancel_message",
    "forget",
    "has_analysis",
    "metrics_analysis",
    "pause_gate",
    "run_name",
    "settle_runs",
    "template_keys",
]

CONDITION: Final = "Analysis"  # graylane's condition type, next to Kruise's Progressing and Succeeded
RETRY_SECONDS: Final = 15.0  # a missing template is also woken by its creation; this is a safety net
_DONE: Final = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
_HOLDING: Final = frozenset({"Inconclusive", "Error"})


class Reason(enum.StrEnum):
    RUNNING = "AnalysisRunRunning"
    SUCCESSFUL = "AnalysisRunSuccessful"
    FAILED = "AnalysisRunFailed"
    INCONCLUSIVE = "AnalysisRunInconclusive"
    ERROR = "AnalysisRunError"
    EXPOSURE = "ExposureMismatch"
    NOT_STARTED = "AnalysisNotStarted"


class Gate(enum.Enum):
    """What analysis says about leaving StepPaused."""

    NONE = "none"  # nothing: Kruise's pause rules apply
    HOLD = "hold"  # a person must approve (the reason is in status.message)
    PROMOTE = "promote"  # the step's analysis succeeded: it approves the step


# -- the step machine's hooks -----------------------------------------------------------------------


def metrics_analysis(p: Pass) -> bool:
    """StepMetricsAnalysis; True to fall through to StepPaused in the same pass."""
    block = p.current_step.analysis
    if block is None:
        p.sub.current_step_state = StepState.STEP_PAUSED
        return True
    label = str(p.sub.current_step_index)
    run = _run(p, label)
    if run is None:
        weight = traffic_percent(p.current_step.traffic) if _routed(p.rollout) else None
        _start(p, block, label, weight)
        return False
    if run.phase == "Failed":
        _roll_back(p, run)
        return False
    if run.phase in _DONE:  # Successful approves the step at StepPaused; the others hold it there
        if run.phase == "Successful":
            _condition(p, ConditionStatus.TRUE, Reason.SUCCESSFUL, f"analysis {run.name} Successful")
        p.sub.current_step_state = StepState.STEP_PAUSED
        return True
    _running(p, run)
    return False


def pause_gate(p: Pass) -> Gate:
    """At StepPaused: hold for a person on an inconclusive run, approve on a successful step run."""
    step_run = _run(p, str(p.sub.current_step_index)) if p.current_step.analysis is not None else None
    for run in (step_run, _run(p, an.BACKGROUND_STEP) if _background_block(p.rollout) else None):
        if run is not None and run.phase in _HOLDING:
            _hold(p, run)
            return Gate.HOLD
    if step_run is not None and step_run.phase == "Successful":
        return Gate.PROMOTE
    return Gate.NONE


def background(p: Pass) -> bool:
    """The release-wide analysis, checked on every pass of the step machine; False: stop the pass."""
    block = _background_block(p.rollout)
    if block is None or p.sub.current_step_index < (block.starting_step or 1):
        return True
    run = _run(p, an.BACKGROUND_STEP)
    if run is None:
        _start(p, block, an.BACKGROUND_STEP, None, quiet=True)
        return True
    if run.phase == "Failed":
        _roll_back(p, run)
        return False
    return True


def settle_runs(p: Pass) -> None:
    """Terminate every run still measuring that no longer decides anything."""
    current = _current(p)
    for run in p.observed.analysis.runs:
        if run.phase in _DONE or run.terminate or run.deleting:
            continue
        if (run.revision, run.release, run.step) not in current:
            p.act(TerminateAnalysisRun(run.name))


def forget(items: list[RolloutCondition]) -> list[RolloutCondition]:
    """A new release starts without the last one's Analysis condition."""
    return conditions.remove_condition(items, CONDITION)


def cancel_message(p: Pass, message: str) -> str:
    """Kruise's cancelling message, with the analysis failure that caused it (if one did)."""
    found = conditions.get_condition(p.status.conditions, CONDITION)
    if found is None or found.reason != Reason.FAILED or found.status != ConditionStatus.FALSE:
        return message
    return message if found.message in message else f"{message}: {found.message}"


# -- names and keys -----------------------------------------------------------------------------------


def run_name(rollout: str, revision: str, release: str, step: str) -> str:
    suffix = "bg" if step == an.BACKGROUND_STEP else step
    digest = hashlib.sha256(f"{revision}/{release}".encode()).hexdigest()[:5]
    tail = f"-{revision[:10]}-{digest}-{suffix}"
    return rollout[: 253 - len(tail)] + tail


def _release(p: Pass) -> str:
    """When this release began: the Progressing condition turned True (seconds since the epoch)."""
    found = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    since = found.last_transition_time if found is not None else None
    return str(int(since.timestamp())) if since is not None else "0"


def _run(p: Pass, step: str) -> RunSeen | None:
    return p.observed.analysis.run(p.sub.canary_revision, _release(p), step)


def _current(p: Pass) -> set[tuple[str, str, str]]:
    """The runs that may keep measuring: the background run and, at StepMetricsAnalysis, the step's."""
    progressing = conditions.get_condition(p.status.conditions, ConditionType.PROGRESSING)
    reason = progressing.reason if progressing is not None else ""
    live = reason in (ProgressingReason.IN_ROLLING, ProgressingReason.PAUSED)
    if p.status.phase != RolloutPhase.PROGRESSING or not live or p.status.canary_status is None:
        return set()
    key = (p.sub.canary_revision, _release(p))
    current = {(*key, an.BACKGROUND_STEP)}
    if p.sub.current_step_state == StepState.STEP_METRICS_ANALYSIS:
        current.add((*key, str(p.sub.current_step_index)))
    return current


def _background_block(rollout: Rollout) -> an.RolloutBackgroundAnalysis | None:
    active = rollout.spec.strategy.active()
    return active.analysis if active is not None else None


def _routed(rollout: Rollout) -> bool:
    return bool(rollout.spec.strategy.traffic_routings())


# -- starting a run -------------------------------------------------------------------------------


def _start(p: Pass, block: an.RolloutAnalysis, step: str, weight: int | None, *, quiet: bool = False) -> None:
    """Create the run, or say why it cannot start (quietly wait for a pod-template-hash not known yet)."""
    name = run_name(str(p.rollout.metadata.get("name", "")), p.sub.canary_revision, _release(p), step)
    specs, missing = _templates(p, block)
    if missing:
        _not_started(p, name, missing)
        return
    if _needs_unknown_hash(p, block):
        if not quiet:
            _not_started(p, name, "the new pods' pod-template-hash is not known yet")
        return
    try:
        args = resolve_rollout_args(
            block.args,
            p.rollout.to_obj(),
            stable_hash=p.sub.stable_revision,
            latest_hash=p.sub.pod_template_hash,
        )
        spec = _with_weight(build_run_spec(specs, args), weight)
    except (ResolutionError, ValueError) as err:
        _not_started(p, name, str(err))
        return
    p.act(CreateAnalysisRun(_run_object(p, name, step, spec)))
    what = "the whole release" if step == an.BACKGROUND_STEP else f"step {step}"
    p.act(RecordEvent("Normal", "AnalysisRunCreated", f"analysis {name} started for {what}"))
    _condition(p, ConditionStatus.TRUE, Reason.RUNNING, f"analysis {name} of {what} is running")
    if step != an.BACKGROUND_STEP:
        p.status.message = _step_text(p, f"and waits for analysis {name}")


def _templates(p: Pass, block: an.RolloutAnalysis) -> tuple[list[an.AnalysisTemplateSpec], str]:
    specs: list[an.AnalysisTemplateSpec] = []
    for ref in block.templates:
        kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
        found = p.observed.analysis.templates.get((ref.cluster_scope, ref.template_name))
        if found is None:
            return [], f"{kind} {ref.template_name!r} not found"
        if isinstance(found, str):
            return [], f"{kind} {ref.template_name!r} cannot be used: {found}"
        specs.append(found)
    return specs, ""


def _needs_unknown_hash(p: Pass, block: an.RolloutAnalysis) -> bool:
    for arg in block.args:
        source = arg.value_from.pod_template_hash_value if arg.value_from is not None else None
        if source is an.PodTemplateHashValue.LATEST and not p.sub.pod_template_hash:
            return True
        if source is an.PodTemplateHashValue.STABLE and not p.sub.stable_revision:
            return True
    return False


def _with_weight(spec: an.AnalysisRunSpec, weight: int | None) -> an.AnalysisRunSpec:
    """Measured exposure compares with the step's share: written into the run, never taken from a template."""
    metrics = []
    for metric in spec.metrics:
        share = metric.provider.exposure
        if share is not None:
            share = share.model_copy(update={"expected_weight": weight})
            metric = metric.model_copy(
                update={"provider": metric.provider.model_copy(update={"exposure": share})}
            )
        metrics.append(metric)
    return spec.model_copy(update={"metrics": metrics})


def _run_object(p: Pass, name: str, step: str, spec: an.AnalysisRunSpec) -> dict[str, Any]:
    meta = p.rollout.metadata
    rollout_name = str(meta.get("name", ""))
    labels = {
        an.STEP_LABEL: step,
        an.REVISION_LABEL: p.sub.canary_revision,
        an.RELEASE_LABEL: _release(p),
    }
    if len(rollout_name) <= 63:  # a label value's limit; the Rollout finds its runs by owner anyway
        labels[an.ROLLOUT_LABEL] = rollout_name
    owner = {
        "apiVersion": p.rollout.api_version,
        "kind": "Rollout",
        "name": rollout_name,
        "uid": meta.get("uid", ""),
        "controller": True,
    }
    return {
        "apiVersion": an.API_VERSION,
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace", ""),
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": spec.to_obj(),
    }


def _not_started(p: Pass, name: str, why: str) -> None:
    message = f"analysis {name} cannot start: {why}"
    if _condition(p, ConditionStatus.FALSE, Reason.NOT_STARTED, message):
        p.act(RecordEvent("Warning", Reason.NOT_STARTED, message))
    p.status.message = _step_text(p, f"and {message}")
    p.wait(RETRY_SECONDS)


# -- following a run ----------------------------------------------------------------------------------


def _running(p: Pass, run: RunSeen) -> None:
    progress = f" ({run.progress})" if run.progress else ""
    if run.exposure_hold:
        message = f"exposure of analysis {run.name}: {run.exposure_hold}"
        if _condition(p, ConditionStatus.FALSE, Reason.EXPOSURE, message):
            p.act(RecordEvent("Warning", Reason.EXPOSURE, message))
        p.status.message = _step_text(p, f"and holds: {message}")
        return
    _condition(p, ConditionStatus.TRUE, Reason.RUNNING, f"analysis {run.name} is running{progress}")
    p.status.message = _step_text(p, f"and waits for analysis {run.name}{progress}")


def _hold(p: Pass, run: RunSeen) -> None:
    reason = Reason.ERROR if run.phase == "Error" else Reason.INCONCLUSIVE
    evidence = f"analysis {run.name} {run.phase}: {run.message}"
    if _condition(p, ConditionStatus.FALSE, reason, evidence):
        p.act(RecordEvent("Warning", reason, evidence))
    p.status.message = _step_text(p, f"and you need manually confirm to enter the next step: {evidence}")


def _roll_back(p: Pass, run: RunSeen) -> None:
    evidence = f"analysis {run.name} Failed: {run.message}"
    observed, workload = p.observed.analysis, p.workload
    if observed.stable_template is None or observed.release_template is None or workload.kind != "Deployment":
        why = "the stable ReplicaSet is not found" if workload.kind == "Deployment" else "not a Deployment"
        message = f"{evidence}; graylane cannot roll back ({why}): undo the release by hand"
        if _condition(p, ConditionStatus.FALSE, Reason.FAILED, message):
            p.act(RecordEvent("Warning", Reason.FAILED, message))
        p.status.message = message
        p.wait(RETRY_SECONDS)
        return
    if _condition(p, ConditionStatus.FALSE, Reason.FAILED, evidence):
        p.act(RecordEvent("Warning", Reason.FAILED, f"{evidence}; rolling back to the stable revision"))
    p.status.message = f"rolling back to the stable revision: {evidence}"
    record = abort_record_value(observed.release_template, observed.stable_template)
    p.act(SetRolloutAnnotation(ABORT_RECORD_ANNOTATION, record))
    p.act(RollBackWorkload(clean_template(observed.stable_template)))


# -- status ---------------------------------------------------------------------------------------------


def _condition(p: Pass, status: str, reason: str, message: str) -> bool:
    """Set the Analysis condition; True when its reason changed (an Event is due: a new message alone,
    e.g. the next exposure look's numbers, is not worth one)."""
    before = conditions.get_condition(p.status.conditions, CONDITION)
    p.status.conditions = conditions.set_condition(
        p.status.conditions, CONDITION, status, reason, message, p.observed.now
    )
    return before is None or before.reason != reason


def _step_text(p: Pass, rest: str) -> str:
    return f"Rollout is in step({p.sub.current_step_index}/{len(p.steps)}), {rest}"


def template_keys(rollout: Rollout) -> list[tuple[bool, str]]:
    """Every template the Rollout's analysis blocks name (for the observer)."""
    active = rollout.spec.strategy.active()
    if active is None:
        return []
    blocks: list[an.RolloutAnalysis] = [s.analysis for s in active.steps if s.analysis is not None]
    if active.analysis is not None:
        blocks.append(active.analysis)
    return sorted({(ref.cluster_scope, ref.template_name) for b in blocks for ref in b.templates})


def has_analysis(rollout: Rollout) -> bool:
    return bool(template_keys(rollout))
