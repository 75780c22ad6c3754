"""Admission on the real cluster, through the webhook the running controller serves.

- Issue 10 item 4: a v1alpha1 Rollout that the v1beta1 rules would refuse at its next write (the
  controller's own included) is refused on create, naming the v1alpha1 field.
- Issue 15 item 10: a v1alpha1 update that removes steps during a release is refused with Kruise's
  message, as the v1beta1 rule every later write would meet refuses it.
- Issue 15 item 7: Istio customNetworkRefs + an nginx Ingress + a query-parameter match is admitted and
  routed as Kruise does: the VirtualService routes the query, the nginx Ingress sends that match nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from tests.integration.custom_fixtures import (
    ISTIO_VS,
    controller_sees_custom_kinds,
    custom_controller,
    gloo_crds,
    istio_crds,
    virtual_service,
)
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import canary_rollout, gateway_api_crds, ingress, service
from tests.integration.waiting import eventually

__all__ = [  # fixtures
    "controller_sees_custom_kinds",
    "custom_controller",
    "gateway_api_crds",
    "gloo_crds",
    "istio_crds",
]
pytestmark = pytest.mark.usefixtures("custom_controller")

DENIED = 'admission webhook "vrollout.kb.io" denied the request'


def alpha_rollout(steps: list[dict[str, Any]]) -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}},
            "strategy": {
                "canary": {
                    "steps": steps,
                    "trafficRoutings": [
                        {"service": "web", "ingress": {"name": "web"}, "gracePeriodSeconds": 1}
                    ],
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("steps", "index", "weight"),
    [
        pytest.param([{"replicas": 1, "weight": -1}, {"replicas": "100%"}], 0, -1, id="weight-minus-one"),
        pytest.param(
            [{"replicas": 1, "weight": 20}, {"replicas": "100%", "weight": 150}], 1, 150, id="150-last"
        ),
    ],
)
async def test_a_v1alpha1_rollout_the_v1beta1_rules_would_refuse_is_refused_on_create(
    kube: KubeClient, namespace: str, steps: list[dict[str, Any]], index: int, weight: int
) -> None:
    with pytest.raises(ApiError) as err:
        await kube.create(r.ROLLOUT_V1ALPHA1, alpha_rollout(steps), namespace)

    assert err.value.code == 422, err.value
    assert DENIED in err.value.message
    assert (
        f"Spec.Strategy.Canary.Steps[{index}].Weight: Invalid value: {weight}: weight must be from 1 to 100: "
        f'this Rollout is stored as v1beta1, where the weight is traffic "{weight}%"'
    ) in err.value.message


async def test_removing_steps_of_a_v1alpha1_rollout_during_a_release_is_refused(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await rel.given_deployment(replicas=3)
    steps = [
        {"replicas": 1, "weight": 20, "pause": {}},
        {"replicas": 2, "weight": 50, "pause": {}},
        {"replicas": 3},
    ]
    await rel.given_rollout(alpha_rollout(steps))
    await rel.when_image(V2)
    await rel.then_paused_at(1)

    stored = await kube.get(r.ROLLOUT_V1ALPHA1, "demo", namespace)
    stored["spec"]["strategy"]["canary"]["steps"] = stored["spec"]["strategy"]["canary"]["steps"][:1]
    with pytest.raises(ApiError) as err:
        await kube.replace(r.ROLLOUT_V1ALPHA1, stored)

    assert err.value.code == 422, err.value
    assert "Spec.Strategy.Canary: Forbidden: Amount of Rollout steps are immutable" in err.value.message
    # Step contents may still change, as in Kruise.
    stored = await kube.get(r.ROLLOUT_V1ALPHA1, "demo", namespace)
    stored["spec"]["strategy"]["canary"]["steps"][1]["weight"] = 60
    await kube.replace(r.ROLLOUT_V1ALPHA1, stored)
    assert await rel.pod_images() == {V1: 3, V2: 1}


def _canary_routes(vs: Obj) -> list[Obj]:
    return [
        rule
        for rule in vs["spec"]["http"]
        if rule.get("route", [{}])[0]["destination"]["host"] == "web-canary"
    ]


async def test_istio_and_nginx_with_a_query_match_are_admitted_and_each_routes_what_it_can(
    kube: KubeClient, namespace: str
) -> None:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await kube.create(ISTIO_VS, virtual_service(namespace))
    await rel.given_deployment(replicas=3)
    query = [{"queryParams": [{"name": "env", "value": "gray"}]}]
    steps = [{"replicas": 1, "matches": query, "pause": {}}, {"replicas": "100%"}]
    routing = {
        "customNetworkRefs": [
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "name": "web-vs"}
        ],
        "ingress": {"name": "web"},
        "gracePeriodSeconds": 1,
    }
    await rel.given_rollout(canary_rollout(routing, steps))  # refused by the webhook before the fix

    await rel.when_image(V2)
    await rel.then_paused_at(1)
    vs = await eventually(
        lambda: kube.get(ISTIO_VS, "web-vs", namespace),
        lambda o: bool(_canary_routes(o)),
        what="a canary route in the VirtualService",
    )
    assert [rule["match"] for rule in _canary_routes(vs)] == [[{"queryParams": {"env": {"exact": "gray"}}}]]
    canary_ingress = await kube.get(r.INGRESS, "web-canary", namespace)
    nginx = {
        key: value
        for key, value in canary_ingress["metadata"]["annotations"].items()
        if key.startswith("nginx.ingress.kubernetes.io/")
    }
    assert nginx == {"nginx.ingress.kubernetes.io/canary": "true"}, (
        "nginx cannot match a query: it sends nothing"
    )
    assert await rel.pod_images() == {V1: 3, V2: 1}
