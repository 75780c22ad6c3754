"""Reading a cached object as a typed model, without copying it.

Cached objects are shared by every controller and handler and are never mutated; the models built
here are new objects, so a planner may work on them freely. The resourceVersion a decision was made on
is read from the cached object itself when writing (runtime/writer.py tracks newer ones). A malformed
object is logged and skipped, never raised: one bad object must not stop a controller's workers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from graylane.api.common import KubeModel

__all__ = ["parse_cached"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=KubeModel)


def parse_cached(obj: Mapping[str, Any], model: type[M]) -> M | None:
    """The typed model of a cached object, or None when it is malformed."""
    try:
        return model.from_obj(obj)
    except ValueError as err:
        meta = obj.get("metadata") or {}
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        log.error("%s %s is malformed, skipped: %s", model.__name__, where, err)
        return None
