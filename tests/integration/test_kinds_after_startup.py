"""Issue 15, item 5: a kind whose CRD is installed after the controller started works without a restart.

The CRD is this test's own (a unique group per run, so no other test or earlier run has installed it),
its Lua script is added to the ConfigMap after start-up as well, and a Rollout with customNetworkRefs to
one of its objects is released against the running session controller: the script's routing shows on
the object at step 1 and the original comes back at the end. Before the runtime's CRD watch the Rollout
said "restart the controller" and routed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.webhook.install import wait_established
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V2, Release
from tests.integration.traffic_fixtures import canary_rollout, service, set_lua_script
from tests.integration.waiting import eventually

pytestmark = pytest.mark.usefixtures("graylane_controller")

SCRIPT = """
local data = obj.data
data.spec.canaryWeight = obj.canaryWeight
data.spec.stableWeight = obj.stableWeight
return data
"""


def widget_crd(group: str) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


async def test_a_custom_kind_installed_after_start_up_is_routed_without_a_restart(
    kube: KubeClient, namespace: str, graylane_controller: ControllerProcess
) -> None:
    group = f"w{uuid.uuid4().hex[:8]}.example.graylane.io"
    key = f"lua.traffic.routing.Widget.{group}"
    widgets = r.Resource(group, "v1", "widgets", "Widget")
    crd = widget_crd(group)
    pid = graylane_controller.proc.pid if graylane_controller.proc else None
    await kube.create(r.CRD, crd)
    try:
        async with asyncio.timeout(60):
            await wait_established(kube, [crd["metadata"]["name"]])
        await set_lua_script(kube, key, SCRIPT)
        widget = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"hosts": ["web"]},
        }
        await kube.create(widgets, widget, namespace)
        await kube.create(r.SERVICE, service(namespace))
        routing: dict[str, Any] = {
            "customNetworkRefs": [{"apiVersion": f"{group}/v1", "kind": "Widget", "name": "w"}],
            "gracePeriodSeconds": 1,
        }
        steps: list[dict[str, Any]] = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%"}]
        rel = Release(kube, namespace)
        await rel.given_deployment(replicas=3)
        await rel.given_rollout(canary_rollout(routing, steps))

        await rel.when_image(V2)
        await rel.then_paused_at(1)
        await eventually(
            lambda: kube.get(widgets, "w", namespace),
            lambda w: (w["spec"].get("canaryWeight"), w["spec"].get("stableWeight")) == (20, 80),
            what="the script's weights on the Widget",
        )
        await rel.when_approved()
        await rel.then_completed()
        await eventually(
            lambda: kube.get(widgets, "w", namespace),
            lambda w: w["spec"] == {"hosts": ["web"]},
            what="the original Widget back",
        )
        assert graylane_controller.proc is not None
        assert graylane_controller.proc.pid == pid  # the same process all along: no restart
    finally:
        await set_lua_script(kube, key, None)
        with contextlib.suppress(ApiError):
            await kube.delete(r.CRD, crd["metadata"]["name"])
