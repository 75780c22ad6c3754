"""Turns Rollout informer events into operator signals: user-action Events and the duration histograms.

Runs beside the controllers, never inside a reconcile or a planner: it is an informer event handler on
the shared Rollout informer (`attach`), acting only while this process leads (every replica receives the
events; one must speak). For each (old, new) pair it

- detects user actions (telemetry/user_actions.py) and writes a Normal Event `Rollout<Verb>` on the
  Rollout. The shared cache drops managedFields, so "who" comes from one GET of the Rollout (or of the
  workload, for an undo) right after the event, used only when that object is still the version the event
  carried, or for spec fields the controller never writes, while the value is unchanged (otherwise the
  field's owner may already be the controller, and who is left unsaid);
- times steps and releases with a monotonic clock: a step from when its index first appears to when the
  index moves on or the release completes; a release from Healthy -> Progressing to Progressing -> Healthy
  (result succeeded or cancelled, from the Succeeded condition). Starts seen before this process led are
  unknown, and such an end is not observed rather than guessed.

Tasks it starts are kept and awaited by `close()`. It must not decide anything about a release.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import EventType, Informer
from graylane.telemetry.metrics import RolloutMetrics, strategy_of
from graylane.telemetry.user_actions import UserAction, Verb, detect, owner_of

__all__ = ["RolloutObserver"]

Obj = dict[str, Any]
log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Timing:
    step: int = 0  # the step of the last event seen
    step_started: float | None = None  # monotonic; None when its start was not seen
    release_started: float | None = None


def _sub(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status") or {}
    return status.get("canaryStatus") or status.get("blueGreenStatus") or {}


def _step(obj: Mapping[str, Any] | None) -> int:
    """The step a release is in, 0 when none is (not Progressing, or its steps are all done)."""
    if obj is None or _phase(obj) != "Progressing" or _sub(obj).get("currentStepState") == "Completed":
        return 0
    return int(_sub(obj).get("currentStepIndex") or 0)


def _phase(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def _succeeded(obj: Mapping[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return not any(c.get("type") == "Succeeded" and c.get("status") == "False" for c in conditions)


class RolloutObserver:
    def __init__(
        self,
        client: KubeClient,
        recorder: EventRecorder,
        metrics: RolloutMetrics,
        is_leader: Callable[[], bool],
        *,
        controller_manager: str = "graylane",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._recorder, self._metrics = client, recorder, metrics
        self._is_leader, self._manager, self._clock = is_leader, controller_manager, clock
        self._timings: dict[str, _Timing] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, rollouts: Informer) -> None:
        rollouts.on_event(self.on_event)

    def on_event(self, kind: EventType, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if kind is EventType.DELETED or new is None:
            self._timings.pop(uid, None)
            return
        if not self._is_leader():
            self._timings.clear()  # a standby's view would be incomplete once it leads
            return
        self._time(uid, old, new)
        for action in detect(old, new, self._manager):
            self._spawn(self._report(new, action))

    # -- durations -----------------------------------------------------------------------------

    def _time(self, uid: str, old: Obj | None, new: Obj) -> None:
        now, timing = self._clock(), self._timings.get(uid) or _Timing()
        namespace, strategy = str(new["metadata"].get("namespace") or ""), strategy_of(new)
        was, step = _step(old), _step(new)
        if timing.step_started is not None and step != timing.step:
            self._metrics.step_duration.labels(namespace, strategy).observe(now - timing.step_started)
            timing.step_started = None
        if step and step != was and old is not None:  # a step starts in this very event
            timing.step_started = now
        timing.step = step
        before, after = _phase(old), _phase(new)
        if before == "Healthy" and after == "Progressing":
            timing.release_started = now
        if before == "Progressing" and after == "Healthy" and timing.release_started is not None:
            result = "succeeded" if _succeeded(new) else "cancelled"
            self._metrics.release_duration.labels(namespace, strategy, result).observe(
                now - timing.release_started
            )
            timing.release_started = None
        # Kept only while something is being timed: 10,000 Rollouts at rest held one each (1.2 MB).
        if timing.step_started is None and timing.release_started is None:
            self._timings.pop(uid, None)
        else:
            self._timings[uid] = timing

    # -- user actions --------------------------------------------------------------------------

    async def _report(self, new: Obj, action: UserAction) -> None:
        namespace = str((new.get("metadata") or {}).get("namespace") or "")
        who = action.who or await self._who(new, action)
        if who == self._manager and action.verb is not Verb.UNDONE:
            return  # the controller's own move after all (e.g. a timed pause ending)
        said = dataclasses.replace(action, who=who)
        self._metrics.user_actions.labels(namespace, action.verb.value).inc()
        await self._recorder.event(new, EventKind.NORMAL, said.reason, said.message)

    async def _who(self, new: Obj, action: UserAction) -> str:
        """The owner of the changed field, from a fresh read still at the event's version; else ""."""
        meta = new.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        try:
            if action.verb is Verb.UNDONE:
                ref = (new.get("spec") or {}).get("workloadRef") or {}
                workload = await self._client.get_or_none(r.DEPLOYMENT, str(ref.get("name") or ""), namespace)
                return owner_of(workload, ("spec", "template")) if workload else ""
            fresh = await self._client.get_or_none(r.ROLLOUT, name, namespace)
        except Exception as err:  # the Event is still worth writing without its author
            log.debug("reading %s/%s for its field managers failed: %s", namespace, name, err)
            return ""
        if fresh is None or not _same_change(fresh, new, action):
            return ""
        return detect_owner(fresh, action)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _same_change(fresh: Obj, new: Obj, action: UserAction) -> bool:
    """Whether the fresh copy still shows the change as its author left it. The controller rewrites the
    step state right after an approval (and a jump), so those need the very same version; it never writes
    spec.strategy.paused or the abort annotation, so for those an unchanged value is enough."""
    if action.verb in (Verb.APPROVED, Verb.PROMOTED):
        return bool(
            fresh["metadata"].get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion")
        )
    if action.verb in (Verb.PAUSED, Verb.RESUMED):
        paused = (
            ((fresh.get("spec") or {}).get("strategy") or {}).get("paused"),
            ((new.get("spec") or {}).get("strategy") or {}).get("paused"),
        )
        return paused[0] == paused[1]
    return True


def detect_owner(fresh: Obj, action: UserAction) -> str:
    """`action`'s author in a fresh copy of the Rollout (the managedFields the cache dropped)."""
    status = fresh.get("status") or {}
    key = "canaryStatus" if "canaryStatus" in status else "blueGreenStatus"
    paths = {
        Verb.APPROVED: (("status", key, "currentStepState"), "status"),
        Verb.PROMOTED: (("status", key, "nextStepIndex"), "status"),
        Verb.PAUSED: (("spec", "strategy", "paused"), ""),
        Verb.RESUMED: (("spec", "strategy", "paused"), ""),
        Verb.ABORTED: (("metadata", "annotations", "graylane.io/aborted-release"), ""),
    }
    path, subresource = paths.get(action.verb, ((), ""))
    return owner_of(fresh, path, subresource) if path else ""
