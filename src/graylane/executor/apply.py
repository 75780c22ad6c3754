"""Carry out a plan's actions against the API, in order, then write the status once.

Thin on purpose: every decision was made by the planner. Writes carry the resourceVersion they were
planned from, so a concurrent change (a user's approval patch, another writer) makes the write fail
with a conflict and the key is re-planned from fresh state instead of overwriting what changed.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from graylane.api.rollout_v1beta1 import RolloutStatus
from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.planner.actions import (
    Action,
    AddRolloutFinalizer,
    LabelWorkload,
    Plan,
    RemoveRolloutFinalizer,
    SetRolloutAnnotation,
)
from graylane.planner.observed import Workload

__all__ = ["Executor"]


class Executor:
    """Applies the actions of one Rollout's plan; holds no state between reconciles."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def execute(self, rollout: Obj, workload: Workload | None, plan: Plan) -> None:
        for action in plan.actions:
            await self._handler(action)(rollout, workload, action)
        if plan.status is not None:
            await self.write_status(rollout, plan.status)

    def _handler(self, action: Action) -> Callable[[Obj, Workload | None, Any], Awaitable[None]]:
        handlers: dict[type, Callable[[Obj, Workload | None, Any], Awaitable[None]]] = {
            AddRolloutFinalizer: functools.partial(self._finalizers, add=True),
            RemoveRolloutFinalizer: functools.partial(self._finalizers, add=False),
            SetRolloutAnnotation: self._annotate,
            LabelWorkload: self._label_workload,
        }
        return handlers[type(action)]

    async def _finalizers(self, rollout: Obj, _: Workload | None, action: Any, *, add: bool) -> None:
        meta = rollout["metadata"]
        current = list(meta.get("finalizers") or [])
        wanted = [*current, action.finalizer] if add else [f for f in current if f != action.finalizer]
        body = {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}}
        updated = await self.client.patch(r.ROLLOUT, meta["name"], body, meta["namespace"])
        _carry_version(rollout, updated)

    async def _annotate(self, rollout: Obj, _: Workload | None, action: SetRolloutAnnotation) -> None:
        meta = rollout["metadata"]
        body = {"metadata": {"annotations": {action.key: action.value}}}
        updated = await self.client.patch(r.ROLLOUT, meta["name"], body, meta["namespace"])
        _carry_version(rollout, updated)

    async def _label_workload(self, rollout: Obj, workload: Workload | None, action: LabelWorkload) -> None:
        if workload is None:
            return
        body = {"metadata": {"labels": {action.key: action.value}}}
        await self.client.patch(r.DEPLOYMENT, workload.name, body, rollout["metadata"]["namespace"])

    async def write_status(self, rollout: Obj, status: RolloutStatus) -> None:
        """Replace the status subresource, guarded by the resourceVersion the plan was made from."""
        body = {
            "apiVersion": r.ROLLOUT.api_version,
            "kind": "Rollout",
            "metadata": {k: rollout["metadata"][k] for k in ("name", "namespace", "resourceVersion")},
            "status": status.to_obj(),
        }
        updated = await self.client.replace(r.ROLLOUT, body, subresource="status")
        _carry_version(rollout, updated)


def _carry_version(rollout: Obj, updated: Obj) -> None:
    """Later writes in the same reconcile build on our own write, not on the stale cached version."""
    rollout["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
