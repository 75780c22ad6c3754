"""Parse AdmissionReview and ConversionReview bodies and build the responses the API server expects.

Both review versions are accepted and answered in the version they came in (admission.k8s.io v1/v1beta1,
apiextensions.k8s.io v1/v1beta1), because the webhook configurations list both in admissionReviewVersions
/ conversionReviewVersions, as Kruise Rollout's do. Response shapes follow controller-runtime, which Kruise
uses: `errored()` is its `admission.Errored` (allowed=false, status {code, message}); `denied()` is the
validation failure Kruise builds with `Errored(422, errList.ToAggregate())`, plus reason "Invalid" so that
kubectl prints "(Invalid)" (see `denied`); `patched()` carries a base64 JSON Patch.

Pure functions on plain dicts: this module must not do I/O, log, or know about Rollouts.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ADMISSION_REVIEW_VERSIONS",
    "CONVERSION_REVIEW_VERSIONS",
    "AdmissionRequest",
    "ConversionRequest",
    "ReviewError",
    "allowed",
    "conversion_failed",
    "converted",
    "denied",
    "errored",
    "json_patch",
    "parse_admission_review",
    "parse_conversion_review",
    "patched",
]

Obj = dict[str, Any]

ADMISSION_REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
CONVERSION_REVIEW_VERSIONS = ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
UNPROCESSABLE = 422


class ReviewError(ValueError):
    """The body is not a review we can answer (wrong kind or version, missing request or uid)."""


# -- AdmissionReview ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AdmissionRequest:
    """The parts of `AdmissionReview.request` the handlers use; objects are plain JSON dicts."""

    review_version: str
    uid: str
    operation: str
    group: str
    version: str
    kind: str
    resource: str
    sub_resource: str
    namespace: str
    name: str
    object: Obj | None
    old_object: Obj | None
    dry_run: bool = False


def parse_admission_review(body: object) -> AdmissionRequest:
    """Validate the envelope and extract the request; raises ReviewError when it is not one."""
    review_version, request = _envelope(body, "AdmissionReview", ADMISSION_REVIEW_VERSIONS)
    kind = _mapping(request.get("kind"))
    resource = _mapping(request.get("resource"))
    old = _object_or_none(request.get("oldObject"), "oldObject")
    return AdmissionRequest(
        review_version=review_version,
        uid=_uid(request),
        operation=str(request.get("operation") or ""),
        group=str(kind.get("group") or ""),
        version=str(kind.get("version") or ""),
        kind=str(kind.get("kind") or ""),
        resource=str(resource.get("resource") or ""),
        sub_resource=str(request.get("subResource") or ""),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        object=_with_uid_from(_object_or_none(request.get("object"), "object"), old),
        old_object=old,
        dry_run=bool(request.get("dryRun")),
    )


def allowed(request: AdmissionRequest, message: str = "") -> Obj:
    """Admit unchanged."""
    response: Obj = {"uid": request.uid, "allowed": True}
    if message:
        response["status"] = {"code": 200, "message": message}
    return _admission_review(request, response)


def errored(request: AdmissionRequest, code: int, message: str) -> Obj:
    """Reject with `status.code` = code, as controller-runtime's `admission.Errored(code, err)` does."""
    status = {"status": "Failure", "code": code, "message": message}
    return _admission_review(request, {"uid": request.uid, "allowed": False, "status": status})


def denied(request: AdmissionRequest, message: str) -> Obj:
    """Reject as invalid: HTTP 422 for the API client, reason Invalid, `message` as the status message.

    Kruise leaves the reason empty; clients that test for "invalid" (apimachinery's IsInvalid: reason
    Invalid, or no reason and code 422) see the same either way, and kubectl then says "(Invalid)".
    """
    review = errored(request, UNPROCESSABLE, message)
    review["response"]["status"]["reason"] = "Invalid"
    return review


def patched(request: AdmissionRequest, operations: Sequence[Mapping[str, Any]]) -> Obj:
    """Admit with a JSON Patch; with no operations this is plain `allowed()`, as in controller-runtime."""
    if not operations:
        return allowed(request)
    encoded = base64.b64encode(json.dumps(list(operations), separators=(",", ":")).encode()).decode()
    response = {"uid": request.uid, "allowed": True, "patchType": "JSONPatch", "patch": encoded}
    return _admission_review(request, response)


def json_patch(original: Any, modified: Any, path: str = "") -> list[Obj]:
    """RFC 6902 operations turning `original` into `modified`: objects diffed by key, lists replaced."""
    if isinstance(original, dict) and isinstance(modified, dict):
        return _dict_patch(original, modified, path)
    if _same(original, modified):
        return []
    return [{"op": "replace", "path": path, "value": modified}]


def _dict_patch(original: Mapping[str, Any], modified: Mapping[str, Any], path: str) -> list[Obj]:
    ops: list[Obj] = [{"op": "remove", "path": _child(path, k)} for k in original if k not in modified]
    for key, value in modified.items():
        if key not in original:
            ops.append({"op": "add", "path": _child(path, key), "value": value})
        else:
            ops.extend(json_patch(original[key], value, _child(path, key)))
    return ops


def _child(path: str, key: str) -> str:
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"


def _same(a: Any, b: Any) -> bool:
    # Compare as JSON: in Python True == 1 and 1 == 1.0, but a patch must still change true to 1.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _with_uid_from(obj: Obj | None, old: Obj | None) -> Obj | None:
    """Fill a blank metadata.uid from the old object, as Kruise does for Karmada/OCM-propagated updates."""
    if obj is None or old is None:
        return obj
    old_uid = _mapping(old.get("metadata")).get("uid")
    if _mapping(obj.get("metadata")).get("uid") or not old_uid:
        return obj
    filled = dict(obj)
    filled["metadata"] = {**_mapping(obj.get("metadata")), "uid": old_uid}
    return filled


def _admission_review(request: AdmissionRequest, response: Obj) -> Obj:
    return {"apiVersion": request.review_version, "kind": "AdmissionReview", "response": response}


# -- ConversionReview ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConversionRequest:
    """`ConversionReview.request`: convert every object to `desired_api_version`."""

    review_version: str
    uid: str
    desired_api_version: str
    objects: tuple[Obj, ...]


def parse_conversion_review(body: object) -> ConversionRequest:
    """Validate the envelope and extract the request; raises ReviewError when it is not one.

    The objects are the body's own dicts, not copies: `/convert` is called for most Rollout writes
    (docs/decisions.md, "CRD conversion calls"), a deep copy was ~40 % of its cost, and `convert()`
    builds new objects without changing its input.
    """
    review_version, request = _envelope(body, "ConversionReview", CONVERSION_REVIEW_VERSIONS)
    desired = request.get("desiredAPIVersion")
    if not isinstance(desired, str) or not desired:
        raise ReviewError("ConversionReview.request.desiredAPIVersion is missing")
    objects = request.get("objects") or []
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise ReviewError("ConversionReview.request.objects must be a list of objects")
    return ConversionRequest(review_version, _uid(request), desired, tuple(objects))


def converted(request: ConversionRequest, objects: Sequence[Obj]) -> Obj:
    """Success: `objects` in the order they were asked for."""
    response = {"uid": request.uid, "convertedObjects": list(objects), "result": {"status": "Success"}}
    return _conversion_review(request, response)


def conversion_failed(request: ConversionRequest, message: str) -> Obj:
    """Failure: the API server fails the whole request with `message`."""
    result = {"status": "Failure", "message": message}
    return _conversion_review(request, {"uid": request.uid, "convertedObjects": [], "result": result})


def _conversion_review(request: ConversionRequest, response: Obj) -> Obj:
    return {"apiVersion": request.review_version, "kind": "ConversionReview", "response": response}


# -- shared ------------------------------------------------------------------------------------------


def _envelope(body: object, kind: str, versions: Sequence[str]) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(body, dict):
        raise ReviewError(f"expected a {kind} object, got {type(body).__name__}")
    if body.get("kind") != kind:
        raise ReviewError(f"expected kind {kind}, got {body.get('kind')!r}")
    version = body.get("apiVersion")
    if version not in versions:
        raise ReviewError(f"unsupported {kind} apiVersion {version!r} (want one of {', '.join(versions)})")
    request = body.get("request")
    if not isinstance(request, dict):
        raise ReviewError(f"{kind}.request is missing")
    return str(version), request


def _uid(request: Mapping[str, Any]) -> str:
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing; the response must echo it")
    return uid


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _object_or_none(value: object, name: str) -> Obj | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"request.{name} must be an object")
    return value
