"""Reading one object of a reconcile from an informer cache, as a private copy and a typed model.

The copy is what executors write back to (they record new resourceVersions on it); the cache itself is
never mutated. A malformed object is logged and skipped, never raised: one bad object must not stop a
controller's workers.
"""

from __future__ import annotations

import copy
import logging
from typing import TypeVar

from graylane.api.common import KubeModel
from graylane.kube.client import Obj
from graylane.kube.informer import Informer, split_key

__all__ = ["load_cached"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=KubeModel)


def load_cached(informer: Informer, key: str, model: type[M]) -> tuple[Obj, M] | None:
    """(raw copy, parsed model) of `key`, or None when it is gone or malformed."""
    namespace, name = split_key(key)
    cached = informer.get(namespace, name)
    if cached is None:
        return None
    raw = copy.deepcopy(cached)
    try:
        return raw, model.from_obj(raw)
    except ValueError as err:
        log.error("%s %s is malformed, skipped: %s", model.__name__, key, err)
        return None
