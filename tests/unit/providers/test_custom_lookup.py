"""Custom kinds around the provider: script lookup, Lua number conversion, observer index and key parsing,
and cutting CRDs out of a multi-document file."""

from __future__ import annotations

import pytest

from graylane.cluster.thirdparty import split_crds
from graylane.observe.traffic import ANY_CUSTOM, configured_custom_kinds, traffic_index
from graylane.planner.changes import CustomKind
from graylane.providers.traffic import lua


def test_the_shipped_custom_kinds() -> None:
    assert lua.builtin_custom_kinds() == {
        ("networking.istio.io", "VirtualService"),
        ("networking.istio.io", "DestinationRule"),
        ("gateway.solo.io", "VirtualService"),
    }


def test_custom_script_lookup_configmap_first_then_shipped() -> None:
    configured = {
        "lua.traffic.routing.VirtualService.networking.istio.io": "return obj.data",
        "lua.traffic.routing.ApisixRoute.apisix.apache.org": "return obj.data",
    }
    overridden = lua.custom_script("networking.istio.io", "VirtualService", configured)
    assert overridden.name.startswith("lua.traffic.routing.VirtualService.networking.istio.io (ConfigMap")
    shipped = lua.custom_script("networking.istio.io", "DestinationRule", configured)
    assert shipped.name == "built-in custom/networking.istio.io/DestinationRule.lua"
    user = lua.custom_script("apisix.apache.org", "ApisixRoute", configured)
    assert (
        user.name
        == "lua.traffic.routing.ApisixRoute.apisix.apache.org (ConfigMap kruise-rollout-configuration)"
    )
    assert user.source == "return obj.data"
    with pytest.raises(
        lua.LuaScriptError, match=r"set key lua.traffic.routing.TrafficRoute.kuma.io in ConfigMap"
    ):
        lua.custom_script("kuma.io", "TrafficRoute", configured)


def test_custom_kind_from_api_version() -> None:
    assert CustomKind.of("networking.istio.io/v1beta1", "VirtualService") == CustomKind(
        "networking.istio.io", "VirtualService"
    )
    assert str(CustomKind.of("gateway.solo.io/v1", "VirtualService")) == "VirtualService.gateway.solo.io"


def test_configured_kinds_are_read_from_script_keys_not_ingress_ones() -> None:
    data = {
        "lua.traffic.routing.ingress.nginx": "...",
        "lua.traffic.routing.ApisixRoute.apisix.apache.org": "...",
        "lua.traffic.routing.broken": "...",
        "other": "...",
    }
    assert configured_custom_kinds(data) == {CustomKind("apisix.apache.org", "ApisixRoute")}


def test_traffic_index_names_custom_objects_and_the_lua_catch_all() -> None:
    rollout = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "strategy": {
                "canary": {
                    "trafficRoutings": [
                        {
                            "service": "web",
                            "customNetworkRefs": [
                                {
                                    "apiVersion": "networking.istio.io/v1",
                                    "kind": "VirtualService",
                                    "name": "vs",
                                }
                            ],
                        }
                    ]
                }
            }
        },
    }
    assert traffic_index(rollout) == [
        "ns/Service/web",
        "ns/Service/web-canary",
        "ns/VirtualService.networking.istio.io/vs",
        ANY_CUSTOM,
    ]


MULTI = """# generated
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    note: x
  name: virtualservices.networking.istio.io
spec:
  group: networking.istio.io
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-a-crd
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  labels:
    app: istio
  name: destinationrules.networking.istio.io
spec:
  names:
    kind: DestinationRule
    name: inner
"""


def test_split_crds_cuts_each_crd_by_its_metadata_name() -> None:
    found = split_crds(MULTI)
    assert sorted(found) == ["destinationrules.networking.istio.io", "virtualservices.networking.istio.io"]
    assert found["virtualservices.networking.istio.io"].startswith("apiVersion: apiextensions.k8s.io/v1\n")
    assert "group: networking.istio.io" in found["virtualservices.networking.istio.io"]
    assert "not-a-crd" not in "".join(found.values())
