"""Generated CRDs: committed files are current, schemas are structural, columns and flags match Kruise."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from graylane.api import crdgen

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests" / "crds"
KRUISE_FILES = (
    "rollouts.kruise.io_batchreleases.yaml",
    "rollouts.kruise.io_rollouthistories.yaml",
    "rollouts.kruise.io_rollouts.yaml",
    "rollouts.kruise.io_trafficroutings.yaml",
)
ANALYSIS_FILES = (
    "analysis.graylane.io_analysisruns.yaml",
    "analysis.graylane.io_analysistemplates.yaml",
    "analysis.graylane.io_clusteranalysistemplates.yaml",
)
FILES = ANALYSIS_FILES + KRUISE_FILES


@functools.cache
def rendered() -> dict[str, str]:
    return crdgen.render_all()


@functools.cache
def parsed(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(rendered()[name])
    return doc


def crd(plural: str) -> dict[str, Any]:
    """Parsed CRD; shared between tests, so tests must not modify it."""
    group = "analysis.graylane.io" if plural.endswith(("analysisruns", "analysistemplates")) else None
    return parsed(f"{group or 'rollouts.kruise.io'}_{plural}.yaml")


def version(plural: str, name: str) -> dict[str, Any]:
    return next(v for v in crd(plural)["spec"]["versions"] if v["name"] == name)


def schema(plural: str, name: str, *path: str) -> dict[str, Any]:
    node: dict[str, Any] = version(plural, name)["schema"]["openAPIV3Schema"]
    for key in path:
        node = node["items"] if key == "[]" else node["properties"][key]
    return node


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_committed_crds_are_what_the_generator_writes() -> None:
    assert tuple(rendered()) == FILES
    for name, text in rendered().items():
        assert (MANIFESTS / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run `python -m graylane.api.crdgen`"
        )


def test_rendering_is_deterministic() -> None:
    assert crdgen.render_all() == rendered()


@pytest.mark.parametrize("name", FILES)
def test_schemas_are_structural(name: str) -> None:
    text = rendered()[name]
    assert "$ref" not in text
    assert "$defs" not in text
    assert "anyOf: null" not in text

    for ver in parsed(name)["spec"]["versions"]:
        for node in walk(ver["schema"]["openAPIV3Schema"]):
            if "properties" in node or "additionalProperties" in node:
                assert node["type"] == "object"
            if "items" in node:
                assert node["type"] == "array"
            if "anyOf" in node:
                assert node["x-kubernetes-int-or-string"] is True


@pytest.mark.parametrize("name", FILES)
def test_every_version_is_served_with_status_and_exactly_one_stored(name: str) -> None:
    doc = parsed(name)

    versions = doc["spec"]["versions"]
    assert all(v["served"] and v["subresources"] == {"status": {}} for v in versions)
    assert sum(v["storage"] for v in versions) == 1
    cluster_scoped = name == "analysis.graylane.io_clusteranalysistemplates.yaml"
    assert doc["spec"]["scope"] == ("Cluster" if cluster_scoped else "Namespaced")
    assert doc["spec"]["group"] == name.split("_")[0]
    assert doc["metadata"]["name"] == f"{doc['spec']['names']['plural']}.{doc['spec']['group']}"


def described(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, bool]]:
    """(path, has a description) of every property below ``node``."""
    for key, child in node.get("properties", {}).items():
        yield f"{path}.{key}", "description" in child
        yield from described(child, f"{path}.{key}")
    if "items" in node:
        yield from described(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from described(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", ANALYSIS_FILES)
def test_every_analysis_field_is_described_for_kubectl_explain(name: str) -> None:
    root = parsed(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    envelope = {".apiVersion", ".kind", ".metadata"}

    missing = [path for path, has in described(root) if not has and path not in envelope]

    assert root["description"]
    assert missing == []


@pytest.mark.parametrize("version_name", ["v1alpha1", "v1beta1"])
def test_rollout_analysis_fields_are_described_and_nothing_else_changed(version_name: str) -> None:
    canary = schema("rollouts", version_name, "spec", "strategy", "canary")
    step = canary["properties"]["steps"]["items"]["properties"]
    paths = [path for path, _ in described(version("rollouts", version_name)["schema"]["openAPIV3Schema"])]
    with_description = [
        path for path, has in described(version("rollouts", version_name)["schema"]["openAPIV3Schema"]) if has
    ]

    assert step["analysis"]["properties"]["templates"]["items"]["required"] == ["templateName"]
    assert "startingStep" in canary["properties"]["analysis"]["properties"]
    # Kruise's own fields stay as upstream generates them (no descriptions); only graylane's are explained.
    assert all(".analysis" in path for path in with_description)
    assert any(path.endswith(".analysis.args[].valueFrom.podTemplateHashValue") for path in paths)


@pytest.mark.parametrize(
    ("plural", "stored", "converted"),
    [
        ("rollouts", "v1beta1", True),
        ("batchreleases", "v1beta1", True),
        ("trafficroutings", "v1alpha1", False),
        ("rollouthistories", "v1alpha1", False),
        ("analysisruns", "v1alpha1", False),
        ("analysistemplates", "v1alpha1", False),
        ("clusteranalysistemplates", "v1alpha1", False),
    ],
)
def test_storage_version_and_conversion(plural: str, stored: str, converted: bool) -> None:
    doc = crd(plural)

    assert [v["name"] for v in doc["spec"]["versions"] if v["storage"]] == [stored]
    if converted:
        assert doc["spec"]["conversion"] == {
            "strategy": "Webhook",
            "webhook": {
                "clientConfig": {"url": crdgen.CONVERSION_URL_PLACEHOLDER},
                "conversionReviewVersions": ["v1", "v1beta1"],
            },
        }
    else:
        assert "conversion" not in doc["spec"]


def columns(plural: str, name: str) -> list[tuple[str, str, str]]:
    return [
        (c["name"], c["type"], c["jsonPath"])
        for c in version(plural, name).get("additionalPrinterColumns", [])
    ]


def test_rollout_printer_columns() -> None:
    age = ("AGE", "date", ".metadata.creationTimestamp")
    assert columns("rollouts", "v1alpha1") == [
        ("STATUS", "string", ".status.phase"),
        ("CANARY_STEP", "integer", ".status.canaryStatus.currentStepIndex"),
        ("CANARY_STATE", "string", ".status.canaryStatus.currentStepState"),
        ("MESSAGE", "string", ".status.message"),
        age,
    ]
    assert columns("rollouts", "v1beta1") == [
        ("STATUS", "string", ".status.phase"),
        ("CANARY_STEP", "integer", ".status.currentStepIndex"),
        ("CANARY_STATE", "string", ".status.currentStepState"),
        ("MESSAGE", "string", ".status.message"),
        age,
    ]
    descriptions = [c.get("description") for c in version("rollouts", "v1beta1")["additionalPrinterColumns"]]
    assert descriptions[0] == "The rollout status phase"


def test_other_printer_columns() -> None:
    age = ("AGE", "date", ".metadata.creationTimestamp")
    batch = [
        ("KIND", "string", ".spec.targetReference.workloadRef.kind"),
        ("PHASE", "string", ".status.phase"),
        ("BATCH", "integer", ".status.canaryStatus.currentBatch"),
        ("BATCH-STATE", "string", ".status.canaryStatus.batchState"),
        age,
    ]
    assert columns("batchreleases", "v1alpha1") == batch
    assert columns("batchreleases", "v1beta1") == batch
    assert columns("trafficroutings", "v1alpha1") == [
        ("STATUS", "string", ".status.phase"),
        ("MESSAGE", "string", ".status.message"),
        age,
    ]
    assert columns("rollouthistories", "v1alpha1") == []
    assert columns("analysisruns", "v1alpha1") == [
        ("STATUS", "string", ".status.phase"),
        ("MESSAGE", "string", ".status.message"),
        age,
    ]


def test_defaults_enums_and_limits_follow_upstream() -> None:
    canary = schema("rollouts", "v1beta1", "spec", "strategy", "canary")
    step = canary["properties"]["steps"]["items"]
    match = step["properties"]["matches"]["items"]["properties"]

    assert schema("rollouts", "v1beta1", "spec", "disabled") == {"type": "boolean", "default": False}
    assert canary["properties"]["steps"]["maxItems"] == 50
    assert step["properties"]["matches"]["maxItems"] == 16
    assert (
        canary["properties"]["trafficRoutings"]["items"]["properties"]["gracePeriodSeconds"]["default"] == 3
    )
    assert match["headers"]["maxItems"] == 16
    assert match["headers"]["x-kubernetes-list-type"] == "map"
    assert match["headers"]["items"]["properties"]["type"]["enum"] == ["Exact", "RegularExpression"]
    assert match["headers"]["items"]["properties"]["type"]["default"] == "Exact"
    assert match["path"]["properties"]["type"]["default"] == "PathPrefix"
    assert match["path"]["properties"]["value"]["default"] == "/"
    assert step["properties"]["replicas"] == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    assert (
        "default"
        not in canary["properties"]["trafficRoutings"]["items"]["properties"]["ingress"]["properties"][
            "classType"
        ]
    )


def test_required_fields_follow_upstream() -> None:
    status = schema("rollouts", "v1beta1", "status")

    assert schema("rollouts", "v1beta1", "spec")["required"] == ["strategy", "workloadRef"]
    assert schema("rollouts", "v1alpha1", "spec")["required"] == ["objectRef", "strategy"]
    assert status["required"] == ["currentStepIndex", "currentStepState"]
    # Upstream also requires finalisingStep and nextStepIndex; graylane does not, so KubeVela's
    # `vela workflow resume` (a status PUT without them) is accepted (docs/decisions.md).
    assert status["properties"]["canaryStatus"]["required"] == [
        "canaryReadyReplicas",
        "canaryReplicas",
        "canaryRevision",
        "currentStepState",
        "podTemplateHash",
    ]
    alpha = schema("rollouts", "v1alpha1", "status", "canaryStatus")
    assert "nextStepIndex" not in alpha["required"]
    assert "finalisingStep" not in alpha["required"]
    assert status["properties"]["conditions"]["items"]["required"] == ["message", "reason", "status", "type"]
    assert schema("batchreleases", "v1beta1", "spec", "releasePlan")["required"] == [
        "enableExtraWorkloadForCanary"
    ]
    assert schema("batchreleases", "v1beta1", "spec")["required"] == ["releasePlan"]
    assert schema("batchreleases", "v1alpha1", "spec")["required"] == ["releasePlan", "targetReference"]
    assert schema("rollouthistories", "v1alpha1", "spec", "rollout")["required"] == ["name", "rolloutID"]
    assert "required" not in version("rollouts", "v1beta1")["schema"]["openAPIV3Schema"]


def test_raw_data_and_metadata() -> None:
    assert schema("rollouthistories", "v1alpha1", "spec", "rollout", "data") == {
        "x-kubernetes-preserve-unknown-fields": True
    }
    assert schema("rollouts", "v1beta1", "metadata") == {"type": "object"}
    assert schema("rollouts", "v1beta1", "status", "observedGeneration") == {
        "type": "integer",
        "format": "int64",
    }
    assert schema("rollouts", "v1beta1", "status", "canaryStatus", "lastUpdateTime") == {
        "type": "string",
        "format": "date-time",
    }


def test_with_conversion_client_replaces_the_placeholder() -> None:
    client = {"service": {"name": "svc", "namespace": "ns", "path": "/convert"}, "caBundle": "Q0E="}

    out = crdgen.with_conversion_client(crd("rollouts"), client)

    assert out["spec"]["conversion"]["webhook"]["clientConfig"] == client
    assert crdgen.with_conversion_client(crd("trafficroutings"), client) == crd("trafficroutings")


def test_main_writes_and_checks(tmp_path: Path) -> None:
    assert crdgen.main(["--check", str(tmp_path)]) == 1

    assert crdgen.main([str(tmp_path)]) == 0

    assert sorted(p.name for p in tmp_path.iterdir()) == list(FILES)
    assert crdgen.main(["--check", str(tmp_path)]) == 0
