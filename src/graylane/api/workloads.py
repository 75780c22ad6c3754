"""The workload kinds graylane releases, as Kruise Rollout does: one table, read by every layer.

What this module does: names each kind (API group, kind, the version graylane reads and writes it in,
its resource), how Kruise Rollout drives it (the `Family`), the value of the
`rollouts.kruise.io/workload-type` label the Rollout controller puts on it, and the pod label that tells
its revisions apart (what a canary Service selects on). `lookup` finds the entry for a Rollout's
`workloadRef` (any served version of the kind: Kruise compares group and kind only); `SUPPORTED` is the
sentence the webhook and the Rollout's status use to say what is supported.

Kinds (reference §2.7, ecosystem.md): Deployment (canary or partition style, see batchrelease/), CloneSet
(partition "100%" → replicas - batch), StatefulSet and Advanced StatefulSet (StatefulSet-like: integer
`rollingUpdate.partition`), Advanced DaemonSet (integer partition over `desiredNumberScheduled`) and the
native DaemonSet (Kruise master: `OnDelete`, the partition in an annotation, old pods deleted batch by
batch).

What it must not do: I/O, or decide anything about a release.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Final

from graylane.api import keys

__all__ = [
    "ADVANCED_DAEMONSET",
    "ADVANCED_STATEFULSET",
    "CLONESET",
    "DAEMONSET",
    "DEPLOYMENT",
    "KINDS",
    "OPENKRUISE_GROUP",
    "STATEFULSET",
    "SUPPORTED",
    "Family",
    "WorkloadKind",
    "api_group",
    "lookup",
    "pod_on_revision",
]

OPENKRUISE_GROUP: Final = "apps.kruise.io"


class Family(enum.StrEnum):
    """How a kind is released (which BatchRelease control drives it, which webhook holds it)."""

    DEPLOYMENT = "Deployment"
    CLONESET = "CloneSet"
    STATEFULSET_LIKE = "StatefulSetLike"
    ADVANCED_DAEMONSET = "AdvancedDaemonSet"
    NATIVE_DAEMONSET = "NativeDaemonSet"


@dataclasses.dataclass(frozen=True)
class WorkloadKind:
    group: str
    kind: str
    version: str  # the version graylane reads and writes it in, where served
    plural: str
    family: Family
    type_label: str  # value of rollouts.kruise.io/workload-type
    revision_label: str  # the pod label whose value is the pod's revision
    # Other versions a workloadRef may name, read where the preferred one is not served.
    also: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions graylane can read it in, preferred first."""
        return (self.version, *self.also)

    @property
    def openkruise(self) -> bool:
        """An OpenKruise kind: served only where OpenKruise's CRDs are installed."""
        return self.group == OPENKRUISE_GROUP

    @property
    def title(self) -> str:
        """How users name it: "Advanced StatefulSet (apps.kruise.io/v1beta1)"."""
        prefix = "Advanced " if self.openkruise and self.kind in ("StatefulSet", "DaemonSet") else ""
        versions = ", ".join(f"{self.group}/{v}" for v in (self.version, *self.also))
        return f"{prefix}{self.kind} ({versions})"


DEPLOYMENT = WorkloadKind(
    "apps", "Deployment", "v1", "deployments", Family.DEPLOYMENT, "deployment", keys.POD_TEMPLATE_HASH_LABEL
)
STATEFULSET = WorkloadKind(
    "apps",
    "StatefulSet",
    "v1",
    "statefulsets",
    Family.STATEFULSET_LIKE,
    "statefulset",
    keys.CONTROLLER_REVISION_HASH_LABEL,
)
DAEMONSET = WorkloadKind(
    "apps",
    "DaemonSet",
    "v1",
    "daemonsets",
    Family.NATIVE_DAEMONSET,
    "daemonset",
    keys.CONTROLLER_REVISION_HASH_LABEL,
)
# CloneSet pods carry both controller-revision-hash (<name>-<hash>) and pod-template-hash (<hash>);
# Kruise Rollout selects on pod-template-hash.
CLONESET = WorkloadKind(
    OPENKRUISE_GROUP,
    "CloneSet",
    "v1alpha1",
    "clonesets",
    Family.CLONESET,
    "cloneset",
    keys.POD_TEMPLATE_HASH_LABEL,
)
ADVANCED_STATEFULSET = WorkloadKind(
    OPENKRUISE_GROUP,
    "StatefulSet",
    "v1beta1",
    "statefulsets",
    Family.STATEFULSET_LIKE,
    "statefulset",
    keys.CONTROLLER_REVISION_HASH_LABEL,
    also=("v1alpha1",),
)
# Read and written as v1beta1 (status.updateRevision) where served, else as v1alpha1 (status.daemonSetHash).
ADVANCED_DAEMONSET = WorkloadKind(
    OPENKRUISE_GROUP,
    "DaemonSet",
    "v1beta1",
    "daemonsets",
    Family.ADVANCED_DAEMONSET,
    "daemonset",
    keys.CONTROLLER_REVISION_HASH_LABEL,
    also=("v1alpha1",),
)

KINDS: Final = (DEPLOYMENT, STATEFULSET, DAEMONSET, CLONESET, ADVANCED_STATEFULSET, ADVANCED_DAEMONSET)
_BY_GROUP_KIND: Final = {(k.group, k.kind): k for k in KINDS}
SUPPORTED: Final = ", ".join(k.title for k in KINDS)


def api_group(api_version: str) -> str:
    """The group of `group/version` ("" for the core `v1` or anything that does not parse)."""
    parts = api_version.split("/")
    return parts[0] if len(parts) == 2 else ""


def lookup(api_version: str, kind: str) -> WorkloadKind | None:
    """The kind a workloadRef names (by group and kind, any version), or None when graylane cannot
    release it."""
    return _BY_GROUP_KIND.get((api_group(api_version), kind))


def pod_on_revision(labels: Mapping[str, Any], revision: str) -> bool:
    """Whether a pod with these labels is on `revision` (Kruise's IsConsistentWithRevision): its
    controller-revision-hash ends with it (a StatefulSet's is the full revision name), or its
    pod-template-hash is its suffix (a CloneSet's revision is `<name>-<hash>`)."""
    if not revision:
        return False
    crh = str(labels.get(keys.CONTROLLER_REVISION_HASH_LABEL) or "")
    pth = str(labels.get(keys.POD_TEMPLATE_HASH_LABEL) or "")
    return bool(crh and crh.endswith(revision)) or bool(pth and revision.endswith(pth))
