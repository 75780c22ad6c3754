"""The Rollout's side of an end-to-end TrafficRouting (reference §2.3, §2.8, §3.6).

A Rollout that names a TrafficRouting (v1beta1 `trafficRoutingRef`, or the v1alpha1 annotation
`rollouts.kruise.io/trafficrouting`) does not route traffic itself: it tells the TrafficRouting it is
releasing by putting the finalizer `progressing.rollouts.kruise.io/<rollout>` on it while Initializing,
and takes it off when finalising. The TrafficRouting controller routes while any such finalizer is there.

Kruise reads only the annotation (the field works only through v1alpha1 conversion, a QUIRK); graylane
honours the field first and the annotation as a fallback. Unlike Kruise, the Rollout also waits while the
TrafficRouting has not been verified (phase Initial, e.g. its Ingress is missing), so no gray pod is
started that the gateway cannot reach; the reason is written to status.message with a Warning Event.
Pure: no I/O.
"""

from __future__ import annotations

from graylane.api import keys
from graylane.api.enums import TrafficRoutingPhase
from graylane.api.rollout_v1beta1 import Rollout
from graylane.planner.actions import RecordEvent, SetTrafficRoutingFinalizers
from graylane.planner.context import Pass
from graylane.planner.observed import LinkedTrafficRouting

__all__ = ["link_ready", "linked_name", "unlink"]

RECHECK_SECONDS = 3.0
NOT_READY_REASON = "TrafficRoutingNotReady"
_READY_PHASES = frozenset({TrafficRoutingPhase.HEALTHY, TrafficRoutingPhase.PROGRESSING})
_RESTORING_PHASES = frozenset({TrafficRoutingPhase.FINALIZING, TrafficRoutingPhase.TERMINATING})


def linked_name(rollout: Rollout) -> str:
    """The TrafficRouting the Rollout names: the v1beta1 field, else the annotation; "" for none."""
    active = rollout.spec.strategy.active()
    field = active.traffic_routing_ref if active is not None else ""
    annotations = rollout.metadata.get("annotations") or {}
    return field or str(annotations.get(keys.TRAFFIC_ROUTING_ANNOTATION) or "")


def link_ready(p: Pass) -> bool:
    """Initializing: True once our progressing finalizer is on the TrafficRouting (or none is named)."""
    name = linked_name(p.rollout)
    if not name:
        return True
    link = p.observed.traffic_routing
    if link is None or link.name != name or not link.found:
        return _waiting(p, f"TrafficRouting {name} not found", warn=True)
    finalizer = keys.progressing_rollout_finalizer(str(p.rollout.metadata.get("name", "")))
    if finalizer in link.finalizers:
        return True
    if link.deleting or link.phase in _RESTORING_PHASES:
        # Another release's routes are being undone; joining now would have them removed under us.
        phase = TrafficRoutingPhase.TERMINATING if link.deleting else link.phase
        return _waiting(p, f"TrafficRouting {name} is {phase}, waiting for it to finish", warn=False)
    if link.phase not in _READY_PHASES:
        return _waiting(p, _not_ready(link), warn=bool(link.phase))
    p.act(SetTrafficRoutingFinalizers(name, (*link.finalizers, finalizer), link.resource_version))
    p.wait(RECHECK_SECONDS)
    return False


def unlink(p: Pass) -> bool:
    """Finalising: take our progressing finalizer off the TrafficRouting (before any other task).

    True when it had to (then finalisation is not done in this pass: it must see the finalizer gone)."""
    link = p.observed.traffic_routing
    if link is None or not link.found:
        return False
    finalizer = keys.progressing_rollout_finalizer(str(p.rollout.metadata.get("name", "")))
    if finalizer not in link.finalizers:
        return False
    kept = tuple(f for f in link.finalizers if f != finalizer)
    p.act(SetTrafficRoutingFinalizers(link.name, kept, link.resource_version))
    return True


def _not_ready(link: LinkedTrafficRouting) -> str:
    if not link.phase:
        return f"TrafficRouting {link.name} has not been initialized yet"
    return f"TrafficRouting {link.name} is {link.phase}: {link.message}"


def _waiting(p: Pass, reason: str, *, warn: bool) -> bool:
    """Say why in status.message; a Warning Event only when the reason is new (retries are quiet)."""
    message = f"traffic routing is not ready: {reason}"
    if warn and p.status.message != message:
        p.act(RecordEvent("Warning", NOT_READY_REASON, message))
    p.status.message = message
    p.wait(RECHECK_SECONDS)
    return False
