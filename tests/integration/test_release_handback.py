"""Issue 10 on the real cluster: a release always ends with the workload handed back, and a write the
API server refuses is said in the Rollout's status and an Event.

- Deleting a Rollout at any moment just after a release started (0 to 0.9 s after `kubectl set image`,
  and once its BatchRelease exists) leaves the Deployment unpaused and rolling natively to the new
  version, in both rolling styles; before the runtime it stayed paused forever (template v2, pods v1).
- A finished release leaves nothing of graylane's on the Deployment (paused, Recreate, annotations,
  the controlled-by label), no canary Deployment and no BatchRelease.
- A ValidatingAdmissionPolicy (the API server's own admission, no webhook) that refuses graylane's
  metadata patch of a Rollout: the refusal shows in status.message and one Warning Event, not an
  endless loop of errors; once the policy is gone the release goes on and the message is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from graylane.api import keys
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from graylane.kube.resources import Resource
from tests.integration.builders import deployment
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

POLICY = Resource(
    "admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", False
)
BINDING = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    False,
)
OURS = (
    keys.IN_PROGRESSING_ANNOTATION,
    keys.BATCH_RELEASE_CONTROL_ANNOTATION,
    keys.DEPLOYMENT_STRATEGY_ANNOTATION,
    keys.DEPLOYMENT_EXTRA_STATUS_ANNOTATION,
)


def rollout_of(style: str, steps: list[dict[str, Any]] | None = None) -> Obj:
    canary: dict[str, Any] = {"steps": steps or [{"replicas": 1, "pause": {}}, {"replicas": "100%"}]}
    if style == "Canary":
        canary["enableExtraWorkloadForCanary"] = True
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "strategy": {"canary": canary},
        },
    }


def left_on(dep: Obj) -> list[str]:
    """What a release left on the Deployment; empty once it is handed back to its native controller."""
    meta, spec = dep["metadata"], dep["spec"]
    left = [k for k in OURS if k in (meta.get("annotations") or {})]
    if keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL in (meta.get("labels") or {}):
        left.append(keys.ADVANCED_DEPLOYMENT_CONTROL_LABEL)
    if spec.get("paused"):
        left.append("spec.paused")
    if spec.get("strategy", {}).get("type") == "Recreate":
        left.append("strategy Recreate")
    return left


async def then_handed_back(rel: Release) -> None:
    await eventually(
        rel.deployment, lambda d: left_on(d) == [], what="the Deployment handed back", timeout=120
    )
    await rel.then_pods({V2: 5}, what="5 v2 pods, rolled natively", timeout=120)
    assert await rel.canary_deployments() == []
    await eventually(
        lambda: rel.kube.get_or_none(r.BATCHRELEASE, rel.name, rel.namespace),
        lambda br: br is None,
        what="no BatchRelease left",
    )


@pytest.mark.parametrize("style", ["Partition", "Canary"])
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.6, 0.9])
async def test_deleting_the_rollout_just_after_the_release_started_hands_the_workload_back(
    kube: KubeClient, namespace: str, style: str, delay: float
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout_of(style))
    await rel.when_image(V2)
    await asyncio.sleep(delay)  # the moment of deletion is the point of the test, not a wait for state
    await kube.delete(r.ROLLOUT, "demo", namespace)

    await eventually(
        lambda: kube.get_or_none(r.ROLLOUT, "demo", namespace),
        lambda ro: ro is None,
        what="the Rollout finalised and gone",
        timeout=90,
    )
    await then_handed_back(rel)


@pytest.mark.parametrize("style", ["Partition", "Canary"])
async def test_deleting_the_rollout_mid_batch_hands_the_workload_back(
    kube: KubeClient, namespace: str, style: str
) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout_of(style))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await kube.delete(r.ROLLOUT, "demo", namespace)
    await then_handed_back(rel)


@pytest.mark.parametrize("style", ["Partition", "Canary"])
async def test_a_finished_release_leaves_nothing_behind(kube: KubeClient, namespace: str, style: str) -> None:
    rel = Release(kube, namespace)
    await rel.given_deployment(replicas=5)
    await rel.given_rollout(rollout_of(style))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.when_approved()
    await rel.then_completed()
    dep = await rel.deployment()
    assert left_on(dep) == []  # checked when the Rollout says Succeeded, not eventually
    await then_handed_back(rel)


def _deny_rollout_updates(namespace: str) -> tuple[Obj, Obj]:
    name = f"deny-rollout-updates-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["rollouts.kruise.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["rollouts"],
                    },
                    # A ConfigMap probe tells when the API server has loaded the policy.
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["configmaps"],
                    },
                ]
            },
            # Refuses graylane's own metadata patch (the hash annotation), as a policy engine might.
            "validations": [
                {
                    "expression": "!has(object.metadata.annotations) || "
                    "!('rollouts.kruise.io/hash' in object.metadata.annotations)",
                    "message": "rollout annotations are frozen in this namespace",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return policy, binding


async def _policy_in_force(kube: KubeClient, namespace: str) -> None:
    """Admission policies load asynchronously: wait until an update the policy forbids is refused."""
    probe = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "probe",
            "namespace": namespace,
            "annotations": {keys.ROLLOUT_HASH_ANNOTATION: "x"},
        },
    }
    await kube.create(r.CONFIGMAP, probe)

    async def refused() -> bool:
        try:
            await kube.patch(r.CONFIGMAP, "probe", {"data": {"n": str(time.monotonic())}}, namespace)
        except ApiError as err:
            return err.code in (400, 403, 422)
        return False

    await eventually(refused, bool, what="the admission policy in force", timeout=60)


async def _events(kube: KubeClient, namespace: str, reason: str) -> list[Obj]:
    listed = await kube.list(CORE_EVENT, namespace, field_selector="involvedObject.name=demo")
    return [e for e in listed["items"] if e.get("reason") == reason]


async def test_a_refused_write_is_said_in_the_rollout_status_and_one_event(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    policy, binding = _deny_rollout_updates(namespace)
    await kube.create(POLICY, policy)
    await kube.create(BINDING, binding)
    try:
        await _policy_in_force(kube, namespace)
        await kube.create(r.DEPLOYMENT, deployment("demo", namespace, replicas=2, image=V1))
        # Created without the hash annotation: the create is admitted, graylane's patch that adds it is not.
        await kube.create(
            r.ROLLOUT, {**rollout_of("Partition"), "metadata": {"name": "demo", "namespace": namespace}}
        )
        ro = await eventually(
            lambda: kube.get(r.ROLLOUT, "demo", namespace),
            lambda o: "could not patch Rollout demo" in (o.get("status") or {}).get("message", ""),
            what="the refusal in status.message",
            timeout=90,
        )
        assert "rollout annotations are frozen in this namespace" in ro["status"]["message"]
        await asyncio.sleep(5)  # measuring that nothing repeats needs time to pass: a window, not a wait
        events = await _events(kube, namespace, "WriteRefused")
        assert [(e["type"], e.get("count", 1)) for e in events] == [("Warning", 1)]
    finally:
        await _delete_quietly(kube, BINDING, binding["metadata"]["name"])
        await _delete_quietly(kube, POLICY, policy["metadata"]["name"])

    await eventually(
        lambda: kube.get(r.ROLLOUT, "demo", namespace),
        lambda o: (
            keys.ROLLOUT_HASH_ANNOTATION in (o["metadata"].get("annotations") or {})
            and not (o.get("status") or {}).get("message", "").startswith("graylane could not")
        ),
        what="the patch through and the message cleared once the policy is gone",
        timeout=360,  # the key was held back, doubling up to 5 minutes at most
    )


async def _delete_quietly(kube: KubeClient, res: Resource, name: str) -> None:
    with contextlib.suppress(ApiError):
        await kube.delete(res, name)
