"""admission.py: AdmissionReview/ConversionReview parsing and response shapes, v1 and v1beta1."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from graylane.webhook import admission as adm

ADMISSION_VERSIONS = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
CONVERSION_VERSIONS = ["apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1"]


def rollout(name: str = "demo", uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns1"}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout", "metadata": meta, "spec": {}}


def admission_review(version: str = "admission.k8s.io/v1", **request: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "rollouts.kruise.io", "version": "v1beta1", "kind": "Rollout"},
        "resource": {"group": "rollouts.kruise.io", "version": "v1beta1", "resource": "rollouts"},
        "namespace": "ns1",
        "name": "demo",
        "operation": "CREATE",
        "object": rollout(),
        "oldObject": None,
        "dryRun": False,
    }
    body.update(request)
    return {"apiVersion": version, "kind": "AdmissionReview", "request": body}


def parsed(**request: Any) -> adm.AdmissionRequest:
    return adm.parse_admission_review(admission_review(**request))


# -- parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ADMISSION_VERSIONS)
def test_parse_admission_review_reads_the_request(version: str) -> None:
    req = adm.parse_admission_review(
        admission_review(version, operation="UPDATE", oldObject=rollout(uid="u1"))
    )

    assert req.review_version == version
    assert req.uid == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert (req.group, req.version, req.kind) == ("rollouts.kruise.io", "v1beta1", "Rollout")
    assert req.resource == "rollouts"
    assert (req.operation, req.namespace, req.name, req.sub_resource) == ("UPDATE", "ns1", "demo", "")
    assert req.object is not None
    assert req.object["metadata"]["name"] == "demo"
    assert req.old_object == rollout(uid="u1")
    assert req.dry_run is False


def test_parse_reads_subresource_and_dry_run() -> None:
    req = parsed(subResource="status", dryRun=True)

    assert req.sub_resource == "status"
    assert req.dry_run is True


def test_delete_has_no_object() -> None:
    req = parsed(operation="DELETE", object=None, oldObject=rollout())

    assert req.object is None
    assert req.old_object is not None


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([], "expected a AdmissionReview object"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "Status"}, "expected kind AdmissionReview"),
        ({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {}}, "unsupported"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request is missing"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}, "uid"),
        (admission_review(object=["x"]), "request.object must be an object"),
        (admission_review(oldObject="x"), "request.oldObject must be an object"),
    ],
)
def test_parse_rejects_what_is_not_an_admission_review(body: Any, complaint: str) -> None:
    with pytest.raises(adm.ReviewError, match=complaint):
        adm.parse_admission_review(body)


def test_blank_uid_is_filled_from_the_old_object() -> None:
    body = admission_review(operation="UPDATE", object=rollout(), oldObject=rollout(uid="old-uid"))
    before = copy.deepcopy(body)

    req = adm.parse_admission_review(body)

    assert req.object is not None
    assert req.object["metadata"]["uid"] == "old-uid"
    assert body == before  # the caller's body is left alone


def test_a_present_uid_is_kept() -> None:
    req = parsed(operation="UPDATE", object=rollout(uid="new"), oldObject=rollout(uid="old"))

    assert req.object is not None
    assert req.object["metadata"]["uid"] == "new"


def test_a_blank_uid_without_old_object_stays_blank() -> None:
    req = parsed()

    assert req.object is not None
    assert "uid" not in req.object["metadata"]


# -- responses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ADMISSION_VERSIONS)
def test_allowed_echoes_version_and_uid(version: str) -> None:
    req = adm.parse_admission_review(admission_review(version))

    review = adm.allowed(req)

    assert review == {
        "apiVersion": version,
        "kind": "AdmissionReview",
        "response": {"uid": req.uid, "allowed": True},
    }


def test_allowed_with_a_message_carries_it() -> None:
    review = adm.allowed(parsed(), "fine")

    assert review["response"]["status"] == {"code": 200, "message": "fine"}


@pytest.mark.parametrize("version", ADMISSION_VERSIONS)
def test_denied_is_a_422_invalid_with_the_message(version: str) -> None:
    req = adm.parse_admission_review(admission_review(version))

    review = adm.denied(req, "Spec.Strategy.Canary.Steps: Invalid value: ...: cannot be empty")

    assert review["apiVersion"] == version
    assert review["response"] == {
        "uid": req.uid,
        "allowed": False,
        "status": {
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "Spec.Strategy.Canary.Steps: Invalid value: ...: cannot be empty",
        },
    }


def test_errored_is_controller_runtime_errored() -> None:
    req = parsed()

    review = adm.errored(req, 400, "cannot decode")

    assert review["response"] == {
        "uid": req.uid,
        "allowed": False,
        "status": {"status": "Failure", "code": 400, "message": "cannot decode"},
    }


@pytest.mark.parametrize("version", ADMISSION_VERSIONS)
def test_patched_carries_a_base64_json_patch(version: str) -> None:
    req = adm.parse_admission_review(admission_review(version))
    ops = [{"op": "replace", "path": "/spec/paused", "value": True}]

    response = adm.patched(req, ops)["response"]

    assert response["allowed"] is True
    assert response["uid"] == req.uid
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops


def test_patched_without_operations_is_a_plain_allow() -> None:
    req = parsed()

    assert adm.patched(req, []) == adm.allowed(req)


# -- json_patch --------------------------------------------------------------------------------------


def apply(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A minimal RFC 6902 applier for add/remove/replace, enough to check json_patch round trips."""
    doc = copy.deepcopy(doc)
    for op in ops:
        if op["path"] == "":
            doc = copy.deepcopy(op["value"])
            continue
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for part in parents:
            target = target[part]
        if op["op"] == "remove":
            del target[last]
        else:
            target[last] = copy.deepcopy(op["value"])
    return doc


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
        ({"a": 1}, {}, [{"op": "remove", "path": "/a"}]),
        ({}, {"b": {"c": 1}}, [{"op": "add", "path": "/b", "value": {"c": 1}}]),
        (
            {"s": {"paused": False}},
            {"s": {"paused": True}},
            [{"op": "replace", "path": "/s/paused", "value": True}],
        ),
        ({"l": [1, 2]}, {"l": [1, 3]}, [{"op": "replace", "path": "/l", "value": [1, 3]}]),
        ({"x": 1}, {"x": True}, [{"op": "replace", "path": "/x", "value": True}]),
        ({"x": 1}, {"x": 1.0}, [{"op": "replace", "path": "/x", "value": 1.0}]),
        (
            {"metadata": {"annotations": {}}},
            {"metadata": {"annotations": {"rollouts.kruise.io/in-progressing": "{}"}}},
            [
                {
                    "op": "add",
                    "path": "/metadata/annotations/rollouts.kruise.io~1in-progressing",
                    "value": "{}",
                }
            ],
        ),
        ({"a~b": 1}, {"a~b": 2}, [{"op": "replace", "path": "/a~0b", "value": 2}]),
        ([1], [2], [{"op": "replace", "path": "", "value": [2]}]),
    ],
)
def test_json_patch(before: Any, after: Any, expected: list[dict[str, Any]]) -> None:
    ops = adm.json_patch(before, after)

    assert ops == expected
    assert apply(before, ops) == after


def test_json_patch_round_trips_a_deployment_edit() -> None:
    before: dict[str, Any] = {
        "metadata": {"name": "d", "labels": {"app": "x"}, "annotations": {"a": "1"}},
        "spec": {
            "paused": False,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        },
    }
    after = copy.deepcopy(before)
    after["spec"]["paused"] = True
    after["spec"]["strategy"] = {"type": "Recreate"}
    after["metadata"]["labels"]["rollouts.kruise.io/stable-revision"] = "abc"
    del after["metadata"]["annotations"]["a"]

    assert apply(before, adm.json_patch(before, after)) == after


# -- ConversionReview --------------------------------------------------------------------------------


def conversion_review(version: str = "apiextensions.k8s.io/v1", **request: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uid": "c-1",
        "desiredAPIVersion": "rollouts.kruise.io/v1alpha1",
        "objects": [rollout("a"), rollout("b")],
    }
    body.update(request)
    return {"apiVersion": version, "kind": "ConversionReview", "request": body}


@pytest.mark.parametrize("version", CONVERSION_VERSIONS)
def test_parse_conversion_review(version: str) -> None:
    req = adm.parse_conversion_review(conversion_review(version))

    assert req.review_version == version
    assert req.uid == "c-1"
    assert req.desired_api_version == "rollouts.kruise.io/v1alpha1"
    assert [o["metadata"]["name"] for o in req.objects] == ["a", "b"]


@pytest.mark.parametrize("version", CONVERSION_VERSIONS)
def test_converted_is_success_in_the_review_version(version: str) -> None:
    req = adm.parse_conversion_review(conversion_review(version))

    review = adm.converted(req, [rollout("x")])

    assert review == {
        "apiVersion": version,
        "kind": "ConversionReview",
        "response": {"uid": "c-1", "convertedObjects": [rollout("x")], "result": {"status": "Success"}},
    }


def test_conversion_failed_carries_the_message() -> None:
    req = adm.parse_conversion_review(conversion_review())

    response = adm.conversion_failed(req, "bad traffic")["response"]

    assert response == {
        "uid": "c-1",
        "convertedObjects": [],
        "result": {"status": "Failure", "message": "bad traffic"},
    }


def test_no_objects_is_an_empty_conversion() -> None:
    assert adm.parse_conversion_review(conversion_review(objects=None)).objects == ()


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("text", "expected a ConversionReview object"),
        (admission_review(), "expected kind ConversionReview"),
        (conversion_review("apiextensions.k8s.io/v2"), "unsupported ConversionReview apiVersion"),
        (conversion_review(desiredAPIVersion=""), "desiredAPIVersion is missing"),
        (conversion_review(objects={"a": 1}), "objects must be a list"),
        (conversion_review(objects=[1]), "objects must be a list"),
        (conversion_review(uid=None), "uid"),
    ],
)
def test_parse_rejects_what_is_not_a_conversion_review(body: Any, complaint: str) -> None:
    with pytest.raises(adm.ReviewError, match=complaint):
        adm.parse_conversion_review(body)
