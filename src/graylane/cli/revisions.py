"""History and undo for StatefulSets, DaemonSets and OpenKruise's workloads: their ControllerRevisions.

A Deployment's past revisions are its ReplicaSets (cli/tables.py, cli/patches.py). Every other kind
graylane releases keeps its past pod templates in ControllerRevisions it owns (the StatefulSet and
DaemonSet controllers, and OpenKruise's for CloneSets, Advanced StatefulSets and Advanced DaemonSets):
`data` holds `{"spec": {"template": {..., "$patch": "replace"}}}`, `revision` the number, the name (or
the `controller-revision-hash` label) the revision its pods carry.

- `revision_rows`: `graylane history`, one row per revision (pods on it, ready/total), marking the
  stable revision of a running release and the one matching the current template;
- `undo_target`: `graylane undo`, the release's stable revision while one runs, else kubectl's
  previous revision (or `--to-revision N`); `build_template_patch` writes its template back, guarded by
  the workload's resourceVersion, and the Rollout sees a rollback.

Pure: no I/O, no click.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from graylane.api.rollout_v1beta1 import Rollout
from graylane.api.workloads import lookup, pod_on_revision
from graylane.cli import patches
from graylane.cli.patches import Refused
from graylane.cli.tables import HistoryRow, age, images_of

__all__ = ["build_template_patch", "revision_hash", "revision_rows", "revision_template", "undo_target"]

Obj = dict[str, Any]


def revision_template(cr: Mapping[str, Any]) -> Obj:
    """The pod template a ControllerRevision recorded (without the strategic-merge `$patch` key)."""
    template = copy.deepcopy(((cr.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return dict(template)


def revision_hash(cr: Mapping[str, Any]) -> str:
    """What the revision's pods carry: the `controller-revision-hash` label (DaemonSets), else the name."""
    meta = cr.get("metadata") or {}
    return str((meta.get("labels") or {}).get("controller-revision-hash") or meta.get("name") or "")


def _number(cr: Mapping[str, Any]) -> int:
    return int(cr.get("revision") or 0)


def _is(cr: Mapping[str, Any], revision: str) -> bool:
    """Whether `cr` is the revision a status names (a full name, or a CloneSet's hash suffix)."""
    name = str((cr.get("metadata") or {}).get("name") or "")
    return bool(revision) and (revision in (name, revision_hash(cr)) or name.endswith(f"-{revision}"))


def _same(template: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    return patches.same_template(_comparable(template), _comparable(other))


def _comparable(template: Mapping[str, Any]) -> Obj:
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        for key in ("controller-revision-hash", "pod-template-hash"):
            labels.pop(key, None)
    return out


def revision_rows(
    workload: Obj, revisions: Sequence[Obj], pods: Sequence[Obj], rollout: Rollout, now: dt.datetime
) -> list[HistoryRow]:
    """One row per ControllerRevision, oldest first."""
    sub = rollout.status.sub_status()
    stable = sub.stable_revision if sub is not None and patches.release_in_progress(rollout) else ""
    current = (workload.get("spec") or {}).get("template") or {}
    rows = []
    for cr in sorted(revisions, key=_number):
        template = revision_template(cr)
        mine = [
            p
            for p in pods
            if pod_on_revision((p.get("metadata") or {}).get("labels") or {}, revision_hash(cr))
        ]
        ready = sum(1 for p in mine if _ready(p))
        notes = (["stable"] if _is(cr, stable) else []) + (
            ["current template"] if _same(template, current) else []
        )
        rows.append(
            HistoryRow(
                revision=str(_number(cr) or "-"),
                hash=revision_hash(cr),
                images=images_of({"spec": {"template": template}}),
                pods=f"{ready}/{len(mine)}",
                age=age((cr.get("metadata") or {}).get("creationTimestamp"), now),
                note=", ".join(notes),
            )
        )
    return rows


def undo_target(rollout: Rollout, revisions: Sequence[Obj], to_revision: int) -> tuple[Obj, str]:
    """The ControllerRevision to go back to: the release's stable one, else kubectl's previous one."""
    ref = rollout.spec.workload_ref
    kind = lookup(ref.api_version, ref.kind)
    what = kind.title if kind is not None else ref.kind
    sub = rollout.status.sub_status()
    if patches.release_in_progress(rollout) and sub is not None and not to_revision:
        found = next((cr for cr in revisions if _is(cr, sub.stable_revision)), None)
        if found is None:
            raise Refused(
                f"the stable revision {sub.stable_revision} of {what} {ref.name} has no ControllerRevision "
                "(its controller keeps none): set its previous template yourself"
            )
        return dict(found), "stable"
    ordered = sorted((cr for cr in revisions if _number(cr) > 0), key=_number)
    if to_revision:
        found = next((cr for cr in ordered if _number(cr) == to_revision), None)
        if found is None:
            raise Refused(f"unable to find specified revision {to_revision} in history")
        return dict(found), "previous"
    if len(ordered) < 2:
        raise Refused(f"no rollout history found for {what} {ref.name}: there is no previous revision")
    return dict(ordered[-2]), "previous"


def build_template_patch(workload: Mapping[str, Any], template: Mapping[str, Any]) -> list[Obj] | None:
    """JSON patch putting `template` back (None: the workload already has it), conditioned on the
    resourceVersion read (409 if the workload changed meanwhile)."""
    if _same(template, (workload.get("spec") or {}).get("template") or {}):
        return None
    rv = workload["metadata"]["resourceVersion"]
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/template", "value": dict(template)},
    ]


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
