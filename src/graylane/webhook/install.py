"""Register graylane's webhooks: the CRDs with their conversion webhook, and the webhook configurations.

What is written (names, paths, rules and policies as in Kruise Rollout's manifests, so a cluster moved from
Kruise keeps the same objects):

- every CRD from `crdgen.render_all()`; those crdgen gives a Webhook conversion (Rollout, BatchRelease)
  get our `/convert` address and caBundle in place of its placeholder;
- `kruise-rollout-mutating-webhook-configuration` with one webhook per workload kind, each for UPDATEs of
  workloads labelled `rollouts.kruise.io/workload-type` and not the controller-manager's own:
  `mdeployment.kb.io` (apps/v1 deployments), `mcloneset.kb.io` (apps.kruise.io/v1alpha1 clonesets),
  `mdaemonset.kb.io` (apps.kruise.io daemonsets, v1alpha1 as Kruise's, and v1beta1, so an update made
  in v1beta1 reaches the webhook with its status.updateRevision), `mnativedaemonset.kb.io` (apps/v1
  daemonsets) and `munifiedworload.kb.io` for StatefulSet-like kinds. The OpenKruise kinds' rules are
  registered whether their CRDs exist or not (a rule for a resource nobody serves matches nothing), so
  a CloneSet created after OpenKruise is installed is held from its first update, with no re-install.
  Kruise's unified webhook matches every resource (`*`) on CREATE too; here it names the StatefulSets
  (apps/v1 and apps.kruise.io) on UPDATE, the only ones it acts on: with failurePolicy Fail, `*` would
  put every labelled object's writes behind graylane;
- `kruise-rollout-validating-webhook-configuration` with `vrollout.kb.io` (CREATE/UPDATE of rollouts,
  v1alpha1 and v1beta1).

All with failurePolicy Fail, sideEffects None, admissionReviewVersions v1, v1beta1, timeoutSeconds 10 and
the given caBundle. The webhooks are reached by URL (`url_base`, a process outside the cluster) or through
the Service `kruise-rollout-webhook-service` (in-cluster). `install()` is idempotent: call it again to
re-inject a new caBundle. This module must not start servers or generate certificates.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from graylane.api import crdgen
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.kube.resources import Resource
from graylane.webhook.server import (
    CONVERT_PATH,
    MUTATE_ADVANCED_DAEMONSET_PATH,
    MUTATE_CLONESET_PATH,
    MUTATE_DAEMONSET_PATH,
    MUTATE_DEPLOYMENT_PATH,
    MUTATE_UNIFIED_PATH,
    VALIDATE_ROLLOUT_PATH,
)

__all__ = [
    "MUTATING_CONFIGURATION",
    "SERVICE_NAME",
    "VALIDATING_CONFIGURATION",
    "Endpoint",
    "ServiceRef",
    "crd_objects",
    "install",
    "mutating_configuration",
    "uninstall",
    "validating_configuration",
    "wait_established",
    "with_conversion",
]

Obj = dict[str, Any]

MUTATING_CONFIGURATION = "kruise-rollout-mutating-webhook-configuration"
VALIDATING_CONFIGURATION = "kruise-rollout-validating-webhook-configuration"
SERVICE_NAME = "kruise-rollout-webhook-service"
REVIEW_VERSIONS = ["v1", "v1beta1"]
TIMEOUT_SECONDS = 10  # the API server's default; written out so the object says what it does
WORKLOAD_TYPE_LABEL = "rollouts.kruise.io/workload-type"
MANAGED_BY = {"app.kubernetes.io/managed-by": "graylane"}


@dataclasses.dataclass(frozen=True)
class ServiceRef:
    """The in-cluster Service in front of the webhook server; namespace None means install()'s namespace."""

    name: str = SERVICE_NAME
    namespace: str | None = None
    port: int = 443


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the API server calls us, and the CA it must trust: exactly one of url_base or service."""

    ca_pem: bytes
    url_base: str | None = None
    service: ServiceRef | None = None
    namespace: str = "kruise-rollout"

    def __post_init__(self) -> None:
        if (self.url_base is None) == (self.service is None):
            raise ValueError("give exactly one of url_base (URL mode) or service (Service mode)")

    def client_config(self, path: str) -> Obj:
        """A WebhookClientConfig (admissionregistration and apiextensions use the same shape)."""
        config: Obj = {"caBundle": base64.b64encode(self.ca_pem).decode()}
        if self.url_base is not None:
            config["url"] = self.url_base.rstrip("/") + path
        elif self.service is not None:
            namespace = self.service.namespace or self.namespace
            service = {
                "namespace": namespace,
                "name": self.service.name,
                "path": path,
                "port": self.service.port,
            }
            config["service"] = service
        return config


# -- desired objects (pure) ----------------------------------------------------------------------------


def crd_objects(rendered: Mapping[str, str]) -> list[Obj]:
    """Every CustomResourceDefinition in crdgen's files (filename -> YAML), in filename order."""
    import yaml  # only for files given by hand: the controller installs crdgen's objects, without YAML

    crds: list[Obj] = []
    for name in sorted(rendered):
        docs = yaml.safe_load_all(rendered[name])
        crds.extend(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")
    return crds


def with_conversion(crd: Obj, endpoint: Endpoint) -> Obj:
    """The CRD with crdgen's placeholder conversion address replaced by ours (CRDs without one unchanged)."""
    return crdgen.with_conversion_client(crd, endpoint.client_config(CONVERT_PATH))


# (webhook name, path, rules) of the workload webhooks, in Kruise's names and paths.
_WORKLOAD_WEBHOOKS: tuple[tuple[str, str, list[tuple[str, list[str], str]]], ...] = (
    ("mdeployment.kb.io", MUTATE_DEPLOYMENT_PATH, [("apps", ["v1"], "deployments")]),
    ("mcloneset.kb.io", MUTATE_CLONESET_PATH, [("apps.kruise.io", ["v1alpha1"], "clonesets")]),
    (
        "mdaemonset.kb.io",
        MUTATE_ADVANCED_DAEMONSET_PATH,
        [("apps.kruise.io", ["v1alpha1", "v1beta1"], "daemonsets")],
    ),
    ("mnativedaemonset.kb.io", MUTATE_DAEMONSET_PATH, [("apps", ["v1"], "daemonsets")]),
    (
        "munifiedworload.kb.io",
        MUTATE_UNIFIED_PATH,
        [("apps", ["v1"], "statefulsets"), ("apps.kruise.io", ["v1alpha1", "v1beta1"], "statefulsets")],
    ),
)


def mutating_configuration(endpoint: Endpoint) -> Obj:
    selector = {
        "matchExpressions": [
            {"key": "control-plane", "operator": "NotIn", "values": ["controller-manager"]},
            {"key": WORKLOAD_TYPE_LABEL, "operator": "Exists"},
        ]
    }
    webhooks = []
    for name, path, rules in _WORKLOAD_WEBHOOKS:
        webhook = _webhook(name, endpoint, path)
        webhook["rules"] = [_rule(group, versions, ["UPDATE"], plural) for group, versions, plural in rules]
        webhook["objectSelector"] = selector
        webhooks.append(webhook)
    return _configuration("MutatingWebhookConfiguration", MUTATING_CONFIGURATION, webhooks)


def validating_configuration(endpoint: Endpoint) -> Obj:
    webhook = _webhook("vrollout.kb.io", endpoint, VALIDATE_ROLLOUT_PATH)
    webhook["rules"] = [
        _rule("rollouts.kruise.io", ["v1alpha1", "v1beta1"], ["CREATE", "UPDATE"], "rollouts")
    ]
    return _configuration("ValidatingWebhookConfiguration", VALIDATING_CONFIGURATION, [webhook])


def _webhook(name: str, endpoint: Endpoint, path: str) -> Obj:
    return {
        "name": name,
        "clientConfig": endpoint.client_config(path),
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": REVIEW_VERSIONS,
        "timeoutSeconds": TIMEOUT_SECONDS,
    }


def _rule(group: str, versions: list[str], operations: list[str], resource: str) -> Obj:
    return {"apiGroups": [group], "apiVersions": versions, "operations": operations, "resources": [resource]}


def _configuration(kind: str, name: str, webhooks: list[Obj]) -> Obj:
    metadata = {"name": name, "labels": dict(MANAGED_BY)}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "webhooks": webhooks,
    }


# -- talking to the cluster ------------------------------------------------------------------------------


async def install(
    kube: KubeClient,
    *,
    url_base: str | None,
    service: ServiceRef | None,
    ca_pem: bytes,
    namespace: str,
    crds: Mapping[str, str] | None = None,
    established_timeout: float = 60.0,
) -> None:
    """Create or update the CRDs (wait until Established) and both webhook configurations.

    `namespace` is where graylane runs (Kruise's POD_NAMESPACE), used for the Service in Service mode.
    `crds` (YAML files) defaults to crdgen's objects, the same CRDs as `crdgen.render_all()`.
    """
    endpoint = Endpoint(ca_pem, url_base, service, namespace)
    desired = [with_conversion(crd, endpoint) for crd in _crds(crds)]
    for crd in desired:
        await _apply(kube, r.CRD, crd)
    names = [crd["metadata"]["name"] for crd in desired]
    try:
        async with asyncio.timeout(established_timeout):
            await wait_established(kube, names)
    except TimeoutError:
        raise TimeoutError(f"CRDs not Established within {established_timeout:.0f}s: {names}") from None
    await _apply(kube, r.MUTATING_WEBHOOK, mutating_configuration(endpoint))
    await _apply(kube, r.VALIDATING_WEBHOOK, validating_configuration(endpoint))


async def uninstall(
    kube: KubeClient, *, remove_crds: bool = False, crds: Mapping[str, str] | None = None
) -> None:
    """Delete both webhook configurations; the CRDs too only if `remove_crds`.

    The CRDs stay by default because deleting a CRD deletes every object of that kind in the cluster: the
    users' Rollouts would be gone. While they stay, v1alpha1 reads still need the conversion webhook.
    """
    await kube.delete(r.MUTATING_WEBHOOK, MUTATING_CONFIGURATION)
    await kube.delete(r.VALIDATING_WEBHOOK, VALIDATING_CONFIGURATION)
    if remove_crds:
        for crd in _crds(crds):
            await kube.delete(r.CRD, crd["metadata"]["name"])


async def wait_established(kube: KubeClient, names: Iterable[str]) -> None:
    """Poll until every named CRD has condition Established=True (bound it with asyncio.timeout)."""
    pending = set(names)
    while pending:
        for name in sorted(pending):
            if _established(await kube.get(r.CRD, name)):
                pending.discard(name)
        if pending:
            await asyncio.sleep(0.2)


def _established(crd: Obj) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def _apply(kube: KubeClient, res: Resource, desired: Obj, attempts: int = 5) -> None:
    """Create, or replace keeping the object's other labels and annotations; retried on write races."""
    name = desired["metadata"]["name"]
    for _ in range(attempts):
        current = await kube.get_or_none(res, name)
        try:
            if current is None:
                await kube.create(res, desired)
            elif _differs(current, _over(current, desired)):
                await kube.replace(res, _over(current, desired))
            return
        except ApiError as err:
            if not (err.conflict or err.already_exists):
                raise
    raise RuntimeError(f"{res.kind} {name} kept changing while being written; gave up after {attempts} tries")


def _over(current: Obj, desired: Obj) -> Obj:
    """`desired` carrying `current`'s resourceVersion and the labels/annotations others put there."""
    old_meta, new_meta = current.get("metadata", {}), desired["metadata"]
    metadata = {
        **new_meta,
        "resourceVersion": old_meta.get("resourceVersion"),
        "labels": {**(old_meta.get("labels") or {}), **(new_meta.get("labels") or {})},
        "annotations": {**(old_meta.get("annotations") or {}), **(new_meta.get("annotations") or {})},
    }
    return {**desired, "metadata": metadata}


def _differs(current: Obj, wanted: Obj) -> bool:
    """Whether writing `wanted` would change anything (the API server fills defaults we do not send:
    compare only what we send)."""
    return any(
        _subset_differs(current.get(key), value) for key, value in wanted.items() if key != "metadata"
    ) or any(
        (current.get("metadata") or {}).get(k) != v
        for k, v in wanted["metadata"].items()
        if k != "resourceVersion"
    )


def _subset_differs(live: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return not isinstance(live, dict) or any(_subset_differs(live.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            not isinstance(live, list)
            or len(live) != len(want)
            or any(_subset_differs(a, b) for a, b in zip(live, want, strict=True))
        )
    return bool(live != want)


def _crds(rendered: Mapping[str, str] | None) -> list[Obj]:
    """The CRDs from YAML files when given, else straight from crdgen's objects: the YAML text of
    `render_all()` is for the committed files, and writing and reading it again cost every leader
    0.3 s of CPU and 2 MB of resident memory at start-up (issue 14)."""
    if rendered is not None:
        return crd_objects(rendered)
    return [crd for _, crd in sorted(crdgen.crd_documents().items())]
