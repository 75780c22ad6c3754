"""Traffic kinds whose CRD appears after start-up (issue 15, item 5): the pure CRD reading, and the
Rollout and TrafficRouting controllers starting informers for them on the fake API, without a restart."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.runtime.fakeapi import FakeApi
from tests.unit.runtime.harness import harness
from tests.unit.runtime.scenario import rollout

from graylane.kube import resources as r
from graylane.kube.client import Obj
from graylane.kube.resources import Resource
from graylane.observe.kinds import crd_resource, established, slim_crd, version_priority
from graylane.planner.changes import CustomKind, ObjectKind

WIDGET = CustomKind("example.graylane.io", "Widget")


def crd(group: str, kind: str, plural: str, versions: list[str], *, ready: bool = True) -> Obj:
    return {
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": {"huge": "x" * 100}},
                }
                for i, v in enumerate(versions)
            ],
        },
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True"},
                {"type": "Established", "status": "True" if ready else "False"},
            ]
        },
    }


def test_the_crd_informer_keeps_no_schema() -> None:
    slim = slim_crd(crd("example.graylane.io", "Widget", "widgets", ["v1"]))
    assert "schema" not in str(slim)
    assert slim["spec"]["versions"] == [{"name": "v1", "served": True}]
    assert established(slim)
    assert not established(slim_crd(crd("example.graylane.io", "Widget", "widgets", ["v1"], ready=False)))


@pytest.mark.parametrize(
    ("versions", "want"),
    [
        (["v1alpha1", "v1beta1"], "v1beta1"),
        (["v1beta2", "v1", "v2alpha1"], "v1"),
        (["v2", "v10", "v1"], "v10"),
        (["foo", "v1alpha1"], "v1alpha1"),
    ],
)
def test_a_custom_kind_is_used_in_its_highest_served_version(versions: list[str], want: str) -> None:
    found = crd_resource(crd("example.graylane.io", "Widget", "widgets", versions))
    assert found == (WIDGET, Resource("example.graylane.io", want, "widgets", "Widget", True))
    assert max(versions, key=version_priority) == want


def test_httproutes_are_read_in_v1_else_v1beta1() -> None:
    found = crd_resource(crd("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1beta1", "v1"]))
    assert found == (
        ObjectKind.HTTP_ROUTE,
        Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    )
    assert crd_resource(crd("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1alpha2"])) is None


def _rollout_through(refs: dict[str, Any]) -> Obj:
    obj = rollout("Partition")
    obj["spec"]["strategy"]["canary"]["trafficRoutings"] = [{"service": "web", **refs}]
    return obj


async def test_a_crd_established_after_start_up_is_watched_and_its_rollouts_planned_again() -> None:
    api = FakeApi()
    api.put(r.ROLLOUT, _rollout_through({"gateway": {"httpRouteName": "web"}}))
    async with harness(api) as h:
        traffic = h.loops["rollout"].reconciler._traffic  # type: ignore[attr-defined]
        assert ObjectKind.HTTP_ROUTE not in traffic.watched
        queue = h.manager.queue("rollout")
        while len(queue):
            queue.done(await queue.get())

        api.put(r.CRD, crd("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1"], ready=False))
        await h.settle()
        assert ObjectKind.HTTP_ROUTE not in traffic.watched  # not established yet
        ready = crd("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1"])
        stored = api.stored(r.CRD, "httproutes.gateway.networking.k8s.io", None)
        assert stored is not None
        await api.replace(r.CRD, {**stored, "status": ready["status"]}, subresource="status")
        await h.settle()

        assert ObjectKind.HTTP_ROUTE in traffic.watched
        assert traffic.resources()[ObjectKind.HTTP_ROUTE].plural == "httproutes"
        assert any(i.resource.plural == "httproutes" for i in h.manager._informers.values())
        assert len(queue) == 1  # the Rollout routing through Gateway API looks again
        api.put(r.HTTPROUTE, {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"rules": []}})
        await h.settle()
        assert traffic._get(ObjectKind.HTTP_ROUTE, "ns", "web") is not None  # the new informer runs


async def test_a_custom_kind_is_watched_once_both_its_crd_and_a_script_exist() -> None:
    api = FakeApi()
    api.put(
        r.ROLLOUT,
        _rollout_through(
            {"customNetworkRefs": [{"apiVersion": "example.graylane.io/v1", "kind": "Widget", "name": "w"}]}
        ),
    )
    api.put(r.CRD, crd("example.graylane.io", "Widget", "widgets", ["v1"]))
    async with harness(api) as h:
        traffic = h.loops["rollout"].reconciler._traffic  # type: ignore[attr-defined]
        assert WIDGET not in traffic.watched  # no script for it: nothing could route it
        script = {"lua.traffic.routing.Widget.example.graylane.io": "return obj.data"}
        api.put(
            r.CONFIGMAP,
            {
                "metadata": {"name": "kruise-rollout-configuration", "namespace": "kruise-rollout"},
                "data": script,
            },
        )
        await h.settle()
        assert WIDGET in traffic.watched
        assert traffic.resources()[WIDGET] == Resource("example.graylane.io", "v1", "widgets", "Widget", True)


def test_a_kind_this_controller_may_not_watch_is_not_watched_when_its_crd_is_seen() -> None:
    """Served at start-up but refused by RBAC (a SelfSubjectAccessReview said so): the CRD informer's
    report of its established CRD must not start an informer that the API server only ever refuses."""
    from graylane.observe.traffic import TrafficObserver

    istio = CustomKind("networking.istio.io", "VirtualService")
    vs_crd = crd("networking.istio.io", "VirtualService", "virtualservices", ["v1"])
    for denied, expected in (([istio], []), ([], [istio])):
        observer = TrafficObserver(denied=denied)
        added: list[object] = []
        observer._added = lambda kind, _resource, seen=added: seen.append(kind)  # type: ignore[misc]
        observer._consider(vs_crd)
        assert added == expected
