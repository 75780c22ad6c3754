"""The Rollout controller's view of its analysis: its AnalysisRuns and the templates it names.

`AnalysisObserver.setup` watches AnalysisRuns (indexed by the Rollout that owns them: a run's change
re-queues its Rollout), AnalysisTemplates and ClusterAnalysisTemplates (a template created or changed
re-queues the Rollouts that name it, so a Rollout waiting for a missing template starts at once).
`observe(rollout, ...)` returns the frozen `AnalysisObserved` the planner reads (planner/analysis.py
decides). A Rollout without analysis and without runs costs two dict lookups.

What it must not do: decide anything, or write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.api.analysis import AnalysisPhase, AnalysisTemplateSpec
from graylane.api.rollout_v1beta1 import Rollout
from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.informer import Informer, object_key
from graylane.planner.analysis import template_keys
from graylane.planner.analysis_observed import AnalysisObserved, RunSeen, TemplateKey
from graylane.runtime.manager import Manager, Named

__all__ = ["OWNER_INDEX", "AnalysisObserver", "run_seen"]

log = logging.getLogger(__name__)
OWNER_INDEX = "owner"
TEMPLATE_INDEX = "analysis-template"
_A = "analysis.graylane.io/"


def _owner_index(run: Obj) -> list[str]:
    refs = (run.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref.get("uid")) for ref in refs if ref.get("kind") == "Rollout" and ref.get("uid")]


def _template_index(rollout: Obj) -> list[str]:
    """`namespace/name` of every namespaced template, `/name` of every cluster template, it names."""
    namespace = (rollout.get("metadata") or {}).get("namespace", "")
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    body = strategy.get("canary") or strategy.get("blueGreen") or {}
    blocks = [step.get("analysis") for step in body.get("steps") or [] if isinstance(step, dict)]
    blocks.append(body.get("analysis"))
    found: set[str] = set()
    for block in blocks:
        refs = block.get("templates") if isinstance(block, dict) else None
        for ref in refs if isinstance(refs, list) else []:
            scope = "" if ref.get("clusterScope") else namespace
            found.add(f"{scope}/{ref.get('templateName', '')}")
    return sorted(found)


class AnalysisObserver:
    def __init__(self) -> None:
        self._runs: Informer | None = None
        self._templates: Informer | None = None
        self._cluster_templates: Informer | None = None

    def setup(self, manager: Manager, controller: Named, rollouts: Informer) -> None:
        rollouts.add_index(TEMPLATE_INDEX, _template_index)

        def rollout_of(run: Obj) -> list[str]:
            namespace = (run.get("metadata") or {}).get("namespace", "")
            names = [
                ref.get("name")
                for ref in (run.get("metadata") or {}).get("ownerReferences") or []
                if ref.get("kind") == "Rollout"
            ]
            return [f"{namespace}/{name}" for name in names if name]

        def naming(template: Obj) -> list[str]:
            meta = template.get("metadata") or {}
            value = f"{meta.get('namespace') or ''}/{meta.get('name', '')}"
            return [key for key in map(object_key, rollouts.by_index(TEMPLATE_INDEX, value)) if key]

        self._runs = manager.watch(controller, r.ANALYSIS_RUN, keys=rollout_of)
        self._runs.add_index(OWNER_INDEX, _owner_index)
        self._templates = manager.watch(controller, r.ANALYSIS_TEMPLATE, keys=naming)
        self._cluster_templates = manager.watch(controller, r.CLUSTER_ANALYSIS_TEMPLATE, keys=naming)

    def observe(
        self,
        rollout: Rollout,
        stable_template: Mapping[str, Any] | None = None,
        release_template: Mapping[str, Any] | None = None,
    ) -> AnalysisObserved:
        assert self._runs is not None
        uid = str(rollout.metadata.get("uid") or "")
        runs = tuple(run_seen(run) for run in self._runs.by_index(OWNER_INDEX, uid)) if uid else ()
        keys = template_keys(rollout)
        if not runs and not keys:
            return AnalysisObserved()
        namespace = str(rollout.metadata.get("namespace") or "")
        return AnalysisObserved(
            runs=runs,
            templates=self._template_specs(namespace, keys),
            stable_template=stable_template,
            release_template=release_template,
        )

    def _template_specs(
        self, namespace: str, keys: Iterable[TemplateKey]
    ) -> dict[TemplateKey, AnalysisTemplateSpec | str]:
        assert self._templates is not None
        assert self._cluster_templates is not None
        found: dict[TemplateKey, AnalysisTemplateSpec | str] = {}
        for cluster, name in keys:
            obj = self._cluster_templates.get(None, name) if cluster else self._templates.get(namespace, name)
            if obj is None:
                continue
            try:
                found[(cluster, name)] = AnalysisTemplateSpec.model_validate(obj.get("spec") or {})
            except ValueError as err:
                found[(cluster, name)] = f"its spec does not parse: {err}"
        return found


def run_seen(run: Obj) -> RunSeen:
    """What the planner needs of a run (no full parse: a run may hold hundreds of measurements)."""
    meta, spec, status = run.get("metadata") or {}, run.get("spec") or {}, run.get("status") or {}
    labels = meta.get("labels") or {}
    return RunSeen(
        name=str(meta.get("name", "")),
        step=str(labels.get(_A + "step", "")),
        revision=str(labels.get(_A + "revision", "")),
        release=str(labels.get(_A + "release", "")),
        phase=str(status.get("phase") or ""),
        message=str(status.get("message") or ""),
        terminate=bool(spec.get("terminate")),
        deleting=bool(meta.get("deletionTimestamp")),
        exposure_hold=_exposure_hold(spec, status),
        progress=_progress(status),
    )


def _exposure_hold(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """The message of the latest look of a running exposure metric that was outside its tolerance."""
    exposure = {
        m.get("name") for m in spec.get("metrics") or [] if ((m.get("provider") or {}).get("exposure"))
    }
    for result in status.get("metricResults") or []:
        if result.get("name") not in exposure or result.get("phase") != AnalysisPhase.RUNNING:
            continue
        last = (result.get("measurements") or [{}])[-1]
        if last.get("phase") == AnalysisPhase.INCONCLUSIVE:
            return str(last.get("message") or last.get("value") or "")
    return ""


def _progress(status: Mapping[str, Any]) -> str:
    """`name count/phase value` per metric still measuring, e.g. "error-rate 2 Successful, last 0.01"."""
    parts = []
    for result in status.get("metricResults") or []:
        if result.get("phase") not in (AnalysisPhase.RUNNING, AnalysisPhase.PENDING):
            continue
        last = (result.get("measurements") or [{}])[-1]
        value = str(last.get("value") or "")
        shown = f", last {value[:80]}" if value else ""
        parts.append(f"{result.get('name')}: {int(result.get('count') or 0)} measured{shown}")
    return "; ".join(parts)
