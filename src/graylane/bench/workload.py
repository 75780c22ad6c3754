"""The objects the benchmark creates and the patches it sends: pure builders, no I/O.

One app = one Deployment (labelled so the benchmark's watches can select its pods' ReplicaSets) and
one v1beta1 Rollout with the two steps of the issue: `[{replicas: 1, pause: {}}, {replicas: "100%"}]`.
The release style is either canary (`enableExtraWorkloadForCanary: true`, an extra canary Deployment)
or partition (the Deployment itself is upgraded in place, batch by batch).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = [
    "APP_LABEL",
    "NAMESPACE_PREFIX",
    "App",
    "Style",
    "approve_patch",
    "deployment",
    "image_patch",
    "layout",
    "namespace",
    "rollout",
]

Obj = dict[str, Any]
APP_LABEL = "bench.graylane.io/app"  # on Deployments and pod templates, so canary ReplicaSets carry it too
NAMESPACE_PREFIX = "bench-"
STEPS: list[Obj] = [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]
STEP_COUNT = len(STEPS)


class Style(enum.StrEnum):
    CANARY = "canary"  # enableExtraWorkloadForCanary: true
    PARTITION = "partition"  # the Deployment is upgraded in place


@dataclasses.dataclass(frozen=True, order=True)
class App:
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def layout(count: int, per_namespace: int) -> list[App]:
    """`count` apps, `per_namespace` to a namespace: bench-0000/app-00 ... (sortable names)."""
    if count < 1 or per_namespace < 1:
        raise ValueError("count and per_namespace must be positive")
    width = len(str(max((count - 1) // per_namespace, 1)))
    return [
        App(f"{NAMESPACE_PREFIX}{i // per_namespace:0{width}d}", f"app-{i % per_namespace:02d}")
        for i in range(count)
    ]


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(app: App, replicas: int, image: str) -> Obj:
    labels = {"app": app.name, APP_LABEL: app.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app.name, "namespace": app.namespace, "labels": {APP_LABEL: app.name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app.name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def rollout(app: App, style: Style) -> Obj:
    canary: Obj = {"steps": [dict(step) for step in STEPS]}
    if style is Style.CANARY:
        canary["enableExtraWorkloadForCanary"] = True
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
            "strategy": {"canary": canary},
        },
    }


def image_patch(image: str) -> Obj:
    """Strategic-merge patch of the container image: the release."""
    return {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}


def approve_patch() -> Obj:
    """Merge patch of the status subresource, as `kubectl-kruise rollout approve` writes it."""
    return {"status": {"canaryStatus": {"currentStepState": "StepReady"}}}
