"""Builders for planner tests: a Rollout and a Workload with sensible defaults, overridable per case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.observed import RolloutObserved, Workload

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def rollout(
    *,
    status: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    disabled: bool = False,
    steps: list[dict[str, Any]] | None = None,
) -> Rollout:
    obj = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default", "generation": 2, **(metadata or {})},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "disabled": disabled,
            "strategy": {"canary": {"steps": steps or [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]}},
        },
        "status": status or {},
    }
    return Rollout.from_obj(obj)


def workload(**overrides: Any) -> Workload:
    fields: dict[str, Any] = {
        "api_version": "apps/v1",
        "kind": "Deployment",
        "name": "demo",
        "generation": 1,
        "status_consistent": True,
        "replicas": 5,
        "labels": {"rollouts.kruise.io/workload-type": "deployment"},
        "stable_revision": "s1",
        "canary_revision": "c1",
        "pod_template_hash": "p1",
    }
    fields.update(overrides)
    return Workload(**fields)


def observed(r: Rollout, w: Workload | None) -> RolloutObserved:
    return RolloutObserved(rollout=r, workload=w, now=NOW)
