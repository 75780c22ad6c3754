"""The aborted-release record: what `graylane abort` and an analysis rollback leave on the Rollout.

Kruise cancels a release only by setting the workload back to its stable template; that loses the
release's own template. Both graylane's `abort` verb and its automatic rollback on a failed analysis
record it first, in the annotation `graylane.io/aborted-release` on the Rollout, so `graylane retry`
can start the same release again. The value is JSON: {"release": <template>, "stable": <template>},
both without the pod-template-hash label the Deployment controller adds to a ReplicaSet's copy.

What it must not do: read or write anything; the callers send the patches.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ABORT_RECORD_ANNOTATION", "POD_TEMPLATE_HASH", "abort_record_value", "clean_template"]

ABORT_RECORD_ANNOTATION: Final = "graylane.io/aborted-release"
POD_TEMPLATE_HASH: Final = "pod-template-hash"


def clean_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """A pod template without the pod-template-hash label the Deployment controller adds."""
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return out


def abort_record_value(release: Mapping[str, Any], stable: Mapping[str, Any]) -> str:
    record = {"release": clean_template(release), "stable": clean_template(stable)}
    return json.dumps(record, sort_keys=True, separators=(",", ":"))
