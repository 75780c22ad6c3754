"""Decoding the API server's JSON into objects that share their repeated strings.

json.loads makes a new string for every key of every object (it shares keys only within one document:
one LIST page, one watch event), so 10,000 cached Deployments held 10,000 copies of "metadata",
"terminationMessagePath", "IfNotPresent"...: half of a cached Deployment's 8.8 KB (measured, issue
14). Decoded here, each key and short value (kinds, versions, policies, timestamps of the same second)
exists once. It is done while decoding, not by copying the decoded object afterwards: a copy of every
listed object, made while the page's own objects were still alive and then freed, left pymalloc's
arenas full of holes that the process never gave back (a cold sync of 1,000 apps: 86.5 MB resident
with the copy, 80-83 MB without; BENCHMARKS.md, issue 14).
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["SHORT", "loads"]

SHORT = 40  # uids (36: a ReplicaSet names its Deployment's) and common messages; longer ones rarely repeat
_intern = sys.intern


def loads(data: str | bytes) -> Any:
    """`json.loads`, with every object's keys and short string values interned."""
    return json.loads(data, object_pairs_hook=_shared)


def _shared(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {_intern(k): (_intern(v) if type(v) is str and len(v) <= SHORT else v) for k, v in pairs}
