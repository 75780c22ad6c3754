"""A Rollout whose workload graylane cannot release: say so in its status and in a Warning Event.

The validating webhook refuses such a Rollout (webhook/validation_common.py), but one can still be
admitted: created while the webhook was not installed, or with Kruise's `--filter-workload-type=false`.
Its workload would then roll every pod at once, ungated, while the Rollout read "Workload Not Found";
instead its status.message names the kind and what graylane supports, and a Warning Event says the same
once (when the message first appears).

Pure: no I/O.
"""

from __future__ import annotations

from graylane.api.rollout_v1beta1 import Rollout
from graylane.api.workloads import SUPPORTED, lookup
from graylane.planner.actions import RecordEvent

__all__ = ["UNSUPPORTED_REASON", "unsupported_event", "unsupported_message"]

UNSUPPORTED_REASON = "UnsupportedWorkload"


def unsupported_message(rollout: Rollout) -> str | None:
    """The message for a workloadRef graylane cannot release; None when it can."""
    ref = rollout.spec.workload_ref
    if lookup(ref.api_version, ref.kind) is not None and (
        ref.kind != "Deployment" or ref.api_version == "apps/v1"
    ):
        return None
    return (
        f"WorkloadRef kind is not supported: {ref.kind} ({ref.api_version or 'no apiVersion'}) cannot be "
        f"released by graylane, so its updates are not held; supported: {SUPPORTED}"
    )


def unsupported_event(rollout: Rollout, message: str) -> tuple[RecordEvent, ...]:
    """One Warning Event, in the pass that first writes the message."""
    if rollout.status.message == message:
        return ()
    return (RecordEvent("Warning", UNSUPPORTED_REASON, message),)
