"""The Gateway API types the Kruise CRDs embed (header/query/path matches, header modifier filter).

What this module does: models just the fields, defaults, enums and validation the Kruise CRDs copy from
gateway-api (v1alpha2 for v1alpha1 Rollouts, v1beta1 for v1beta1 Rollouts; both have the same shape).
Field order follows the Go structs, because ``go_dump`` and the rollout hash depend on it.

What it must not do: model HTTPRoute itself (that is a foreign CRD, owned by the traffic providers).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from graylane.api.common import CRD_DEFAULT, GoTag, KubeModel, ListMapKey
from graylane.api.enums import HeaderMatchType, PathMatchType, QueryParamMatchType

__all__ = [
    "HTTPHeader",
    "HTTPHeaderFilter",
    "HTTPHeaderMatch",
    "HTTPPathMatch",
    "HTTPQueryParamMatch",
    "HeaderName",
]

MAX_HEADERS: Final = 16
# RFC 7230 token characters (\x60 is the backtick).
_HEADER_NAME_PATTERN: Final = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"

HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=_HEADER_NAME_PATTERN)]


class HTTPHeaderMatch(KubeModel):
    """Match on one request header; several in one match are ANDed."""

    type: Annotated[HeaderMatchType | None, GoTag.POINTER, CRD_DEFAULT] = HeaderMatchType.EXACT
    name: HeaderName
    value: Annotated[str, Field(min_length=1, max_length=4096)]


class HTTPQueryParamMatch(KubeModel):
    """Match on one query parameter; several in one match are ANDed."""

    type: Annotated[QueryParamMatchType | None, GoTag.POINTER, CRD_DEFAULT] = QueryParamMatchType.EXACT
    name: HeaderName
    value: Annotated[str, Field(min_length=1, max_length=1024)]


class HTTPPathMatch(KubeModel):
    """Match on the request path."""

    type: Annotated[PathMatchType | None, GoTag.POINTER, CRD_DEFAULT] = PathMatchType.PATH_PREFIX
    value: Annotated[str | None, GoTag.POINTER, CRD_DEFAULT, Field(max_length=1024)] = "/"


class HTTPHeader(KubeModel):
    """A header name and value to set or add."""

    name: HeaderName
    value: Annotated[str, Field(min_length=1, max_length=4096)]


class HTTPHeaderFilter(KubeModel):
    """``requestHeaderModifier``: headers to set, add or remove before routing to the canary."""

    set: Annotated[list[HTTPHeader], ListMapKey("name")] = Field(default_factory=list, max_length=MAX_HEADERS)
    add: Annotated[list[HTTPHeader], ListMapKey("name")] = Field(default_factory=list, max_length=MAX_HEADERS)
    remove: list[str] = Field(default_factory=list, max_length=MAX_HEADERS)
