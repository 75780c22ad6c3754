"""The pod-template hash printer: go-spew's %#v shapes on small templates (the real check is the
integration test against kube-controller-manager, tests/integration/test_podtemplate_hash.py)."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.api.podtemplatehash import UnsupportedTemplate, pod_template_hash, spew_pod_template, type_graph
from graylane.observe.workloads import template_revision


def _spew(template: dict[str, Any]) -> str:
    return spew_pod_template(template)


def test_struct_fields_typed_and_in_go_order() -> None:
    text = _spew({"metadata": {"name": "x"}})
    assert text.startswith(
        "(v1.PodTemplateSpec){ObjectMeta:(v1.ObjectMeta){Name:(string)x GenerateName:(string) "
    )
    assert " Spec:(v1.PodSpec){Volumes:([]v1.Volume)<nil> InitContainers:([]v1.Container)<nil> " in text


def test_maps_sorted_untyped_entries_and_nil_when_empty() -> None:
    text = _spew({"metadata": {"labels": {"b": "2", "a": "1", "é": "3"}, "annotations": {}}})
    assert "Labels:(map[string]string)map[a:1 b:2 é:3] Annotations:(map[string]string)<nil>" in text
    assert _spew({"metadata": {"annotations": {}}}) == _spew({"metadata": {}})


def test_pointers_nil_empty_and_set() -> None:
    nil = _spew({"spec": {}})
    empty = _spew({"spec": {"securityContext": {}}})
    assert "SecurityContext:(*v1.PodSecurityContext)<nil>" in nil
    assert "SecurityContext:(*v1.PodSecurityContext){SELinuxOptions:(*v1.SELinuxOptions)<nil> " in empty
    assert "HostUsers:(*bool)false" in _spew({"spec": {"hostUsers": False}})


def test_slice_elements_and_int_or_string() -> None:
    port = {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}
    text = _spew({"spec": port})
    assert "Containers:([]v1.Container)[{Name:(string)a Image:(string) " in text
    assert "Ports:([]v1.ContainerPort)[{Name:(string) HostPort:(int32)0 ContainerPort:(int32)80 " in text
    probe = {"containers": [{"name": "a", "readinessProbe": {"tcpSocket": {"port": "http"}}}]}
    assert "Port:(intstr.IntOrString){Type:(intstr.Type)1 IntVal:(int32)0 StrVal:(string)http}" in _spew(
        {"spec": probe}
    )


def test_quantities_print_their_parsed_fields() -> None:
    res = {"containers": [{"name": "a", "resources": {"limits": {"cpu": "100m"}}}]}
    assert (
        "Limits:(v1.ResourceList)map[cpu:{i:(resource.int64Amount){value:(int64)100 "
        "scale:(resource.Scale)-3} "
        "d:(resource.infDecAmount){Dec:(*inf.Dec)<nil>} s:(string)100m Format:(resource.Format)DecimalSI}]"
    ) in _spew({"spec": res})


def test_hash_is_safe_encoded_fnv_and_salted_by_collision_count() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "a", "image": "b"}]}}
    plain = pod_template_hash(template)
    assert plain
    assert set(plain) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert pod_template_hash(template, collision_count=1) != plain
    assert pod_template_hash({**template, "metadata": {"labels": {"app": "y"}}}) != plain


@pytest.mark.parametrize(
    "template",
    [
        {"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "100Ti"}}}]}},
        {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}},
        {"spec": {"containers": [{"name": 5}]}},
    ],
)
def test_unreproduced_values_are_refused_and_revision_falls_back(template: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedTemplate):
        pod_template_hash(template)
    assert template_revision(template) == template_revision(template)


def test_revision_of_a_replicaset_template_is_its_label() -> None:
    template = {"metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}}}
    assert template_revision(template) == "abc"


def test_graph_provenance_names_the_module_versions() -> None:
    graph = type_graph()
    assert graph.root == "v1.PodTemplateSpec"
    assert graph.provenance["k8s.io/api"].startswith("v0.")
    assert graph.zero_typed["*bool"] == "(*bool)<nil>"
