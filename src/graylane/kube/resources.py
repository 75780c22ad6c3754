"""Descriptors of the API resources graylane reads and writes, and how to build their URL paths.

Objects are plain JSON dicts everywhere below the API layer so that fields graylane does not know
(a newer Kubernetes, a user's extra annotations) survive a read-modify-write unchanged.
This module must not do I/O.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

__all__ = [
    "ANALYSIS_RUN",
    "ANALYSIS_TEMPLATE",
    "BATCHRELEASE",
    "CLONESET",
    "CLUSTER_ANALYSIS_TEMPLATE",
    "CONFIGMAP",
    "CRD",
    "DAEMONSET",
    "DEPLOYMENT",
    "EVENT",
    "HTTPROUTE",
    "INGRESS",
    "KRUISE_DAEMONSET",
    "KRUISE_STATEFULSET",
    "LEASE",
    "MUTATING_WEBHOOK",
    "NAMESPACE",
    "NODE",
    "POD",
    "REPLICASET",
    "ROLLOUT",
    "ROLLOUTHISTORY",
    "ROLLOUT_V1ALPHA1",
    "SERVICE",
    "STATEFULSET",
    "TRAFFICROUTING",
    "VALIDATING_WEBHOOK",
    "Resource",
]


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """`/api/v1/namespaces/ns/pods/name/status`-style path; no namespace on a namespaced kind: all."""
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if self.namespaced and namespace is not None:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


ROLLOUT = Resource("rollouts.kruise.io", "v1beta1", "rollouts", "Rollout")
ROLLOUT_V1ALPHA1 = Resource("rollouts.kruise.io", "v1alpha1", "rollouts", "Rollout")
BATCHRELEASE = Resource("rollouts.kruise.io", "v1beta1", "batchreleases", "BatchRelease")
TRAFFICROUTING = Resource("rollouts.kruise.io", "v1alpha1", "trafficroutings", "TrafficRouting")
ROLLOUTHISTORY = Resource("rollouts.kruise.io", "v1alpha1", "rollouthistories", "RolloutHistory")
# graylane's analysis group (api/analysis.py).
ANALYSIS_RUN = Resource("analysis.graylane.io", "v1alpha1", "analysisruns", "AnalysisRun")
ANALYSIS_TEMPLATE = Resource("analysis.graylane.io", "v1alpha1", "analysistemplates", "AnalysisTemplate")
CLUSTER_ANALYSIS_TEMPLATE = Resource(
    "analysis.graylane.io", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", False
)
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
REPLICASET = Resource("apps", "v1", "replicasets", "ReplicaSet")
HPA = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
STATEFULSET = Resource("apps", "v1", "statefulsets", "StatefulSet")
DAEMONSET = Resource("apps", "v1", "daemonsets", "DaemonSet")
# OpenKruise's workloads, in the versions Kruise Rollout reads them (graylane.api.workloads).
CLONESET = Resource("apps.kruise.io", "v1alpha1", "clonesets", "CloneSet")
KRUISE_STATEFULSET = Resource("apps.kruise.io", "v1beta1", "statefulsets", "StatefulSet")
KRUISE_DAEMONSET = Resource("apps.kruise.io", "v1alpha1", "daemonsets", "DaemonSet")
POD = Resource("", "v1", "pods", "Pod")
SERVICE = Resource("", "v1", "services", "Service")
CONFIGMAP = Resource("", "v1", "configmaps", "ConfigMap")
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
EVENT = Resource("events.k8s.io", "v1", "events", "Event")
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")
INGRESS = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
HTTPROUTE = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
CRD = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
MUTATING_WEBHOOK = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    False,
)
VALIDATING_WEBHOOK = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    False,
)
