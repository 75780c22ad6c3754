"""Acceptance: CRDs, conversion and validating webhooks on the real local cluster (webhook server in-process).

The API server calls graylane's server on 127.0.0.1 (URL mode) for every v1alpha1 read or write and for
every Rollout create/update; each test checks what a Kruise Rollout user would see.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graylane.cluster.build import Versions, binaries
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient
from graylane.webhook import install as inst
from tests.integration.webhook_fixtures import (  # noqa: F401
    InstalledGraylane,
    webhook_mutator,
    webhook_server,
    webhooks_in_process,
)

pytestmark = pytest.mark.usefixtures("controller_stopped", "webhooks_in_process")


@pytest.fixture
def webhooks(webhooks_in_process: InstalledGraylane) -> InstalledGraylane:  # noqa: F811
    return webhooks_in_process


Obj = dict[str, Any]
WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
ROLLING_STYLE = "rollouts.kruise.io/rolling-style"
TRAFFIC_ROUTING = "rollouts.kruise.io/trafficrouting"
DENIED = 'admission webhook "vrollout.kb.io" denied the request'


def beta(name: str = "demo", workload: str = "web") -> Obj:
    routing = {"service": "web", "ingress": {"name": "web"}, "gracePeriodSeconds": 5}
    steps = [{"replicas": 1, "traffic": "20%"}, {"replicas": "50%", "traffic": "50%", "pause": {}}]
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "workloadRef": {**WORKLOAD, "name": workload},
            "strategy": {"canary": {"steps": steps, "trafficRoutings": [routing]}},
        },
    }


def alpha(name: str = "old") -> Obj:
    steps = [{"weight": 10}, {"weight": 40, "replicas": 3, "pause": {"duration": 30}}]
    routing = {"service": "web", "ingress": {"name": "web"}, "gracePeriodSeconds": 5}
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "annotations": {ROLLING_STYLE: "partition", TRAFFIC_ROUTING: "tr-a"}},
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "strategy": {"canary": {"steps": steps, "trafficRoutings": [routing]}},
        },
    }


def canary(obj: Obj) -> Obj:
    return obj["spec"]["strategy"]["canary"]  # type: ignore[no-any-return]


# -- (a) conversion --------------------------------------------------------------------------------------


async def test_a_v1alpha1_rollout_reads_back_as_v1beta1(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.ROLLOUT_V1ALPHA1, alpha(), namespace)

    got = await kube.get(r.ROLLOUT, "old", namespace)

    assert got["apiVersion"] == "rollouts.kruise.io/v1beta1"
    assert got["spec"]["workloadRef"] == WORKLOAD
    steps = canary(got)["steps"]
    assert (steps[0]["traffic"], steps[0]["replicas"]) == ("10%", "10%")
    assert (steps[1]["traffic"], steps[1]["replicas"], steps[1]["pause"]) == ("40%", 3, {"duration": 30})
    assert "weight" not in steps[0]
    assert canary(got).get("enableExtraWorkloadForCanary", False) is False  # rolling-style: partition
    assert canary(got)["trafficRoutingRef"] == "tr-a"
    assert canary(got)["trafficRoutings"] == [
        {"service": "web", "ingress": {"name": "web"}, "gracePeriodSeconds": 5}
    ]


@pytest.mark.parametrize(("extra_workload", "style"), [(True, "canary"), (False, "partition")])
async def test_a_v1beta1_rollout_reads_back_as_v1alpha1(
    kube: KubeClient, namespace: str, extra_workload: bool, style: str
) -> None:
    body = beta()
    canary(body)["enableExtraWorkloadForCanary"] = extra_workload
    canary(body)["trafficRoutingRef"] = "tr-b"
    await kube.create(r.ROLLOUT, body, namespace)

    got = await kube.get(r.ROLLOUT_V1ALPHA1, "demo", namespace)

    assert got["apiVersion"] == "rollouts.kruise.io/v1alpha1"
    assert got["spec"]["objectRef"]["workloadRef"] == WORKLOAD
    steps = canary(got)["steps"]
    assert [(s["weight"], s["replicas"]) for s in steps] == [(20, 1), (50, "50%")]
    assert "traffic" not in steps[0]
    assert got["metadata"]["annotations"][ROLLING_STYLE] == style
    assert got["metadata"]["annotations"][TRAFFIC_ROUTING] == "tr-b"
    assert "trafficRoutingRef" not in canary(got)


async def test_status_converts_to_canary_status(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Progressing", step=2, state="StepPaused")

    got = await kube.get(r.ROLLOUT_V1ALPHA1, "demo", namespace)

    assert got["status"]["phase"] == "Progressing"
    assert got["status"]["canaryStatus"]["currentStepIndex"] == 2
    assert got["status"]["canaryStatus"]["currentStepState"] == "StepPaused"


async def set_status(
    kube: KubeClient, namespace: str, name: str, phase: str, step: int = 1, state: str = ""
) -> None:
    sub = {
        "observedWorkloadGeneration": 1,
        "rolloutHash": "h",
        "stableRevision": "s1",
        "podTemplateHash": "p1",
        "canaryRevision": "c1",
        "canaryReplicas": 1,
        "canaryReadyReplicas": 1,
        "currentStepIndex": step,
        "currentStepState": state or "StepUpgrade",
        "nextStepIndex": step + 1,
        "finalisingStep": "",
        "message": "in step",
    }
    status = {
        "phase": phase,
        "message": f"Rollout is in step({step}/2)",
        "currentStepIndex": step,
        "currentStepState": state or "StepUpgrade",
        "canaryStatus": sub,
    }
    await kube.patch(r.ROLLOUT, name, {"status": status}, namespace, subresource="status")


# -- (b) printer columns ---------------------------------------------------------------------------------


async def kubectl(kubeconfig: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(binaries(Versions())["kubectl"]),
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_get_rollouts_shows_the_printer_columns(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Progressing", step=2, state="StepPaused")

    out = await kubectl(kubeconfig, "-n", namespace, "get", "rollouts")

    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "STATUS", "CANARY_STEP", "CANARY_STATE", "MESSAGE", "AGE"]
    assert row.split()[:4] == ["demo", "Progressing", "2", "StepPaused"]
    assert "Rollout is in step(2/2)" in row


async def test_kubectl_get_v1alpha1_rollouts_reads_canary_status(
    kube: KubeClient, namespace: str, kubeconfig: Path
) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Progressing", step=1, state="StepUpgrade")

    out = await kubectl(kubeconfig, "-n", namespace, "get", "rollouts.v1alpha1.rollouts.kruise.io")

    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "STATUS", "CANARY_STEP", "CANARY_STATE"]
    assert row.split()[:4] == ["demo", "Progressing", "1", "StepUpgrade"]


# -- (c) validation ------------------------------------------------------------------------------------------

Mutation = Callable[[Obj], None]


def steps(*values: Obj) -> Mutation:
    def mutate(obj: Obj) -> None:
        canary(obj)["steps"] = list(values)

    return mutate


def routing(**fields: Any) -> Mutation:
    def mutate(obj: Obj) -> None:
        canary(obj)["trafficRoutings"] = [{"service": "web", "ingress": {"name": "web"}, **fields}]

    return mutate


def without_provider(obj: Obj) -> None:
    canary(obj)["trafficRoutings"] = [{"service": "web"}]


def gateway_without_route(obj: Obj) -> None:
    canary(obj)["trafficRoutings"] = [{"service": "web", "gateway": {}}]


def two_routings(obj: Obj) -> None:
    one = {"service": "web", "ingress": {"name": "web"}}
    canary(obj)["trafficRoutings"] = [one, {**one, "ingress": {"name": "other"}}]


def workload(api_version: str, kind: str) -> Mutation:
    def mutate(obj: Obj) -> None:
        obj["spec"]["workloadRef"] = {"apiVersion": api_version, "kind": kind, "name": "web"}

    return mutate


def both_strategies(obj: Obj) -> None:
    obj["spec"]["strategy"]["blueGreen"] = {"steps": [{"replicas": "100%"}]}


def no_strategy(obj: Obj) -> None:
    obj["spec"]["strategy"] = {}


def blue_green_on(kind: str) -> Mutation:
    def mutate(obj: Obj) -> None:
        obj["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": kind, "name": "web"}
        obj["spec"]["strategy"] = {"blueGreen": {"steps": [{"replicas": "100%", "traffic": "0%"}]}}

    return mutate


P = "Spec.Strategy.Canary"
BAD_V1BETA1 = [
    pytest.param(
        workload("v1", "Pod"),
        "Spec.ObjectRef.WorkloadRef",
        "WorkloadRef kind is not supported",
        id="workloadRef-kind",
    ),
    pytest.param(
        blue_green_on("StatefulSet"),
        "Spec.ObjectRef.WorkloadRef",
        "WorkloadRef kind is not supported for bluegreen style",
        id="workloadRef-bluegreen",
    ),
    pytest.param(
        no_strategy, "Spec.Strategy", "Canary and BlueGreen cannot both be empty", id="strategy-empty"
    ),
    pytest.param(
        both_strategies, "Spec.Strategy", "Canary and BlueGreen cannot both be set", id="strategy-both"
    ),
    pytest.param(steps(), f"{P}.Steps", "The number of Canary.Steps cannot be empty", id="steps-empty"),
    pytest.param(
        steps({"traffic": "10%"}), f"{P}.Steps[0].steps", "replicas cannot be empty", id="replicas-empty"
    ),
    pytest.param(
        steps({"replicas": "0%"}),
        f"{P}.Steps[0].Replicas",
        'replicas must be positive number, or a percentage with "0%" < canaryReplicas <= "100%"',
        id="replicas-zero",
    ),
    pytest.param(
        steps({"replicas": "120%"}),
        f"{P}.Steps[0].Replicas",
        'or a percentage with "0%" < canaryReplicas <= "100%"',
        id="replicas-over-100",
    ),
    pytest.param(
        steps({"replicas": "60%", "traffic": "10%"}),
        f"{P}.Steps[0].steps",
        "replicas must not greater than partition-percent-limit if traffic specified",
        id="partition-limit",
    ),
    pytest.param(
        steps({"replicas": 1, "traffic": "0%"}),
        f"{P}.Steps[0].steps",
        'traffic must be percentage with "0%" < traffic <= "100%" in canary strategy',
        id="traffic-zero",
    ),
    pytest.param(
        steps({"replicas": 3}, {"replicas": 1}),
        f"{P}.Steps.CanaryReplicas",
        "Steps.CanaryReplicas must be a non decreasing sequence",
        id="non-decreasing",
    ),
    pytest.param(
        two_routings, P, "Rollout currently only support single TrafficRouting.", id="trafficRoutings-two"
    ),
    pytest.param(
        routing(gracePeriodSeconds=-1),
        f"{P}.TrafficRouting.GracePeriodSeconds",
        "TrafficRouting.GracePeriodSeconds cannot be negative",
        id="grace-negative",
    ),
    pytest.param(
        routing(service=""),
        f"{P}.TrafficRouting.Service",
        "TrafficRouting.Service cannot be empty",
        id="service-empty",
    ),
    pytest.param(
        without_provider,
        f"{P}.TrafficRouting.TrafficRoutings",
        "TrafficRoutings are not set",
        id="provider-missing",
    ),
    pytest.param(
        routing(ingress={"name": ""}),
        f"{P}.TrafficRouting.Ingress",
        "TrafficRouting.Ingress.Ingress cannot be empty",
        id="ingress-name-empty",
    ),
    pytest.param(
        gateway_without_route,
        f"{P}.TrafficRouting.Gateway",
        "TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute",
        id="gateway-no-route",
    ),
]


def assert_rejected(err: pytest.ExceptionInfo[ApiError], path: str, message: str) -> None:
    assert err.value.code == 422, err.value
    assert DENIED in err.value.message
    assert path in err.value.message
    assert message in err.value.message


@pytest.mark.parametrize(("mutate", "path", "message"), BAD_V1BETA1)
async def test_an_invalid_v1beta1_rollout_is_rejected_with_422(
    kube: KubeClient, namespace: str, mutate: Mutation, path: str, message: str
) -> None:
    body = beta()
    mutate(body)

    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT, body, namespace)

    assert_rejected(err, path, message)


def alpha_style(style: str) -> Mutation:
    def mutate(obj: Obj) -> None:
        obj["metadata"]["annotations"][ROLLING_STYLE] = style

    return mutate


def alpha_step(step: Obj) -> Mutation:
    def mutate(obj: Obj) -> None:
        canary(obj)["steps"] = [step]

    return mutate


BAD_V1ALPHA1 = [
    pytest.param(
        alpha_style("bluegreen"),
        "RollingStyle",
        "Rolling style must be 'Canary', 'Partition' or empty",
        id="rolling-style",
    ),
    pytest.param(
        alpha_step({"pause": {}}),
        f"{P}.Steps[0].steps",
        "weight and replicas cannot be empty at the same time",
        id="weight-and-replicas-empty",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "message"), BAD_V1ALPHA1)
async def test_an_invalid_v1alpha1_rollout_is_rejected_with_422(
    kube: KubeClient, namespace: str, mutate: Mutation, path: str, message: str
) -> None:
    body = alpha()
    mutate(body)

    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT_V1ALPHA1, body, namespace)

    assert_rejected(err, path, message)


@pytest.mark.parametrize(
    ("resource", "body"),
    [(r.ROLLOUT, beta()), (r.ROLLOUT_V1ALPHA1, alpha())],
    ids=["v1beta1", "v1alpha1"],
)
async def test_a_valid_rollout_is_admitted(
    kube: KubeClient, namespace: str, resource: r.Resource, body: Obj
) -> None:
    created = await kube.create(resource, copy.deepcopy(body), namespace)

    assert created["metadata"]["uid"]


async def test_a_second_rollout_on_the_same_workload_is_a_conflict(kube: KubeClient, namespace: str) -> None:
    first = beta("first")
    first["spec"]["disabled"] = True  # disabled Rollouts still count, as upstream
    await kube.create(r.ROLLOUT, first, namespace)

    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT, beta("second"), namespace)

    assert_rejected(
        err,
        "Conflict Checker",
        f"This rollout conflict with Rollout({namespace}/first), one workload only have less than one",
    )
    await kube.create(r.ROLLOUT, beta("third", workload="api"), namespace)  # another workload is fine


def change_workload(obj: Obj) -> None:
    obj["spec"]["workloadRef"]["name"] = "api"


def change_routing(obj: Obj) -> None:
    canary(obj)["trafficRoutings"][0]["gracePeriodSeconds"] = 9


def change_style(obj: Obj) -> None:
    canary(obj)["enableExtraWorkloadForCanary"] = True


def add_step(obj: Obj) -> None:
    canary(obj)["steps"].append({"replicas": "100%"})


def change_step_contents(obj: Obj) -> None:
    canary(obj)["steps"][0] = {"replicas": 2, "traffic": "30%", "pause": {"duration": 10}}


FROZEN = [
    pytest.param(
        change_workload, "Spec.ObjectRef", "Rollout 'ObjectRef' field is immutable", id="workloadRef"
    ),
    pytest.param(
        change_routing,
        "Spec.Strategy.Canary|BlueGreen.TrafficRoutings",
        "Rollout 'Strategy.Canary|BlueGreen.TrafficRoutings' field is immutable",
        id="trafficRoutings",
    ),
    pytest.param(
        change_style,
        "Spec.Strategy.Canary|BlueGreen",
        "Rollout style and enableExtraWorkloadForCanary are immutable",
        id="style",
    ),
    pytest.param(
        add_step, "Spec.Strategy.Canary|BlueGreen", "Amount of Rollout steps are immutable", id="step-count"
    ),
]


@pytest.mark.parametrize(("mutate", "path", "message"), FROZEN)
async def test_fields_are_immutable_while_progressing(
    kube: KubeClient, namespace: str, mutate: Mutation, path: str, message: str
) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Progressing")
    stored = await kube.get(r.ROLLOUT, "demo", namespace)
    mutate(stored)

    with pytest.raises(ApiError) as err:
        await kube.replace(r.ROLLOUT, stored)

    assert_rejected(err, path, message)


async def test_step_contents_may_change_while_progressing(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Progressing")
    stored = await kube.get(r.ROLLOUT, "demo", namespace)
    change_step_contents(stored)

    updated = await kube.replace(r.ROLLOUT, stored)

    assert canary(updated)["steps"][0]["traffic"] == "30%"


async def test_fields_may_change_when_not_progressing(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)
    await set_status(kube, namespace, "demo", "Healthy")
    stored = await kube.get(r.ROLLOUT, "demo", namespace)
    change_workload(stored)

    updated = await kube.replace(r.ROLLOUT, stored)

    assert updated["spec"]["workloadRef"]["name"] == "api"


async def test_status_updates_are_not_validated(kube: KubeClient, namespace: str) -> None:
    await kube.create(r.ROLLOUT, beta(), namespace)

    await set_status(kube, namespace, "demo", "Progressing", step=99, state="Bogus")

    assert (await kube.get(r.ROLLOUT, "demo", namespace))["status"]["currentStepIndex"] == 99


# -- the rest of the installation ---------------------------------------------------------------------


def deployment(name: str = "web") -> Obj:
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"rollouts.kruise.io/workload-type": "deployment"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    }


async def test_labelled_deployment_updates_pass_the_mutating_webhook(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(r.DEPLOYMENT, deployment(), namespace)

    patched = await kube.patch(r.DEPLOYMENT, "web", {"spec": {"replicas": 2}}, namespace)

    assert patched["spec"]["replicas"] == 2
    assert patched["spec"].get("paused") is not True  # the default mutator changes nothing


async def test_webhook_configurations_carry_the_upstream_names_and_policies(kube: KubeClient) -> None:
    mutating = await kube.get(r.MUTATING_WEBHOOK, inst.MUTATING_CONFIGURATION)
    validating = await kube.get(r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION)

    workloads = {w["name"]: w for w in mutating["webhooks"]}
    [vrollout] = validating["webhooks"]
    assert sorted(workloads) == [
        "mcloneset.kb.io",
        "mdaemonset.kb.io",
        "mdeployment.kb.io",
        "mnativedaemonset.kb.io",
        "munifiedworload.kb.io",
    ]
    assert vrollout["name"] == "vrollout.kb.io"
    mdeployment = workloads["mdeployment.kb.io"]
    for hook in (*workloads.values(), vrollout):
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:")
    assert {"key": "rollouts.kruise.io/workload-type", "operator": "Exists"} in mdeployment["objectSelector"][
        "matchExpressions"
    ]


async def test_crds_use_the_conversion_webhook(kube: KubeClient, webhooks: InstalledGraylane) -> None:
    for name in ("rollouts.rollouts.kruise.io", "batchreleases.rollouts.kruise.io"):
        crd = await kube.get(r.CRD, name)
        conversion = crd["spec"]["conversion"]
        assert conversion["strategy"] == "Webhook"
        assert conversion["webhook"]["clientConfig"]["url"] == f"{webhooks.url_base}/convert"
        assert conversion["webhook"]["conversionReviewVersions"] == ["v1", "v1beta1"]


async def test_install_is_idempotent(kube: KubeClient, webhooks: InstalledGraylane) -> None:
    before = await kube.get(r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION)

    await inst.install(
        kube,
        url_base=webhooks.url_base,
        service=None,
        ca_pem=webhooks.ca_pem,
        namespace=webhooks.namespace,
    )

    after = await kube.get(r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
