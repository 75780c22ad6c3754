"""The one reconcile loop every controller runs: cache → observe → pure plan → status → actions.

A controller is a `Reconciler`: it registers its watches, builds a frozen snapshot of what it needs from
the informer caches (`observe`), turns it into a `Decision` with its pure planner (`plan`, run in a worker
thread so that a slow pure computation, e.g. a user's script waited on synchronously, never blocks the
event loop, the probes or the webhooks), and carries out one action at a time through its small
action → write table (`act`). A reconciler may say that a snapshot's plan cannot block, with an optional
`offload(observed) -> bool` answering False: that plan runs on the event loop instead, which spares the
hand-over to a thread and back (and the wait for the GIL), the larger part of a plain plan's cost
(BENCHMARKS.md, issue 14). Without the method every plan is offloaded. `ReconcileLoop` does the rest,
the same way for every controller:

1. waits while the key's own earlier writes are not yet in the caches (expectations.py); after the
   bounded wait it has the informers concerned re-list rather than decide from a cache it knows is old;
2. reads the object from the cache as it is (cached objects are shared and read-only: no copy is made);
3. writes the new status first, guarded by the resourceVersion the decision was made from, then the
   actions. Committing the decision before its effects means an action is never carried out for a
   decision that was not stored: a conflict stops the pass before any effect, and a pass that failed
   half-way is re-planned from the stored decision, whose actions are idempotent;
4. handles a stale write (409/404, `Stale`) by planning again once the cache has moved, after a short
   requeue, and a refused one (`Refused`) by saying why in the object's status.message (when it has one)
   and a Warning Event at most once per `REFUSAL_EVENT_INTERVAL` for the same message, then holding the
   key back (1 s, doubling to 5 min) however many watch events ask for it meanwhile: a write that is
   refused every time must not turn into a loop of retries. The first pass that goes through again
   clears the message.

What it must not do: know what any resource means, or decide anything a planner decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from graylane.kube.client import ApiError, Obj
from graylane.kube.events import EventKind
from graylane.kube.informer import Informer, split_key
from graylane.kube.resources import Resource
from graylane.runtime.errors import REFUSAL_PREFIX, Refused, Stale
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer

__all__ = ["CONFLICT_REQUEUE", "REFUSED_REASON", "Decision", "ReconcileLoop", "Reconciler"]

log = logging.getLogger(__name__)
CONFLICT_REQUEUE = 0.1  # after a stale write; the expectation it registered holds the next pass back
REFUSED_REASON = "WriteRefused"
REFUSAL_EVENT_INTERVAL = 600.0
REFUSAL_BACKOFF = 1.0
REFUSAL_BACKOFF_CAP = 300.0
_REFUSAL_MEMORY = 4096

A = TypeVar("A")
Obs = TypeVar("Obs")
A_co = TypeVar("A_co", covariant=True)


@dataclasses.dataclass(frozen=True)
class Decision(Generic[A_co]):
    """What one plan asks for: the status to store (None: keep), the actions, when to look again."""

    status: Obj | None = None
    actions: tuple[A_co, ...] = ()
    requeue_after: float | None = None


class Reconciler(Protocol[Obs, A]):
    """One controller's parts; see the module docstring for how the loop runs them."""

    @property
    def name(self) -> str: ...

    @property
    def workers(self) -> int: ...

    @property
    def primary(self) -> Resource: ...

    @property
    def status_message(self) -> bool: ...  # whether its objects have status.message to report in

    def setup(self, manager: Manager) -> Informer: ...  # register watches; the primary's informer

    async def observe(self, obj: Obj) -> Obs | None: ...  # None: nothing to decide about

    def plan(self, observed: Obs) -> Decision[A]: ...  # pure: no I/Obs, no clock

    async def act(self, action: A, observed: Obs, writer: Writer) -> None: ...


class ReconcileLoop(Generic[Obs, A]):
    """Runs a `Reconciler` as one of the Manager's controllers."""

    def __init__(self, reconciler: Reconciler[Obs, A]) -> None:
        self.reconciler = reconciler
        self._manager: Manager | None = None
        self._primary: Informer | None = None
        self._refusals: OrderedDict[tuple[str, str], float] = OrderedDict()  # last Event per message
        self._held_back: dict[str, tuple[int, float]] = {}  # key -> (refusals in a row, not before)

    @property
    def name(self) -> str:
        return self.reconciler.name

    @property
    def workers(self) -> int:
        return self.reconciler.workers

    def setup(self, manager: Manager) -> None:
        self._manager = manager
        self._primary = self.reconciler.setup(manager)

    async def reconcile(self, key: str) -> float | None:
        assert self._manager is not None
        assert self._primary is not None
        owner = (self.name, key)
        wait = self._held(key) or self._wait(owner)
        if wait is not None:
            return wait
        namespace, name = split_key(key)
        obj = self._primary.get(namespace, name)
        if obj is None:
            self._manager.expectations.forget(owner)
            self._held_back.pop(key, None)
            return None
        observed = await self.reconciler.observe(obj)
        if observed is None:
            return None
        decision = await self._plan(observed)
        writer = self._manager.writer(owner)
        try:
            await self._carry_out(obj, observed, decision, writer)
        except Stale as err:
            log.debug(
                "stale write, planning again", extra={"controller": self.name, "key": key, "why": str(err)}
            )
            return CONFLICT_REQUEUE
        except Refused as err:
            self._hold_back(key)
            await self._report(obj, err, writer)
            raise
        if self._held_back.pop(key, None) is not None or _reported(obj):
            await self._clear_report(obj, decision, writer)
        return decision.requeue_after

    async def _plan(self, observed: Obs) -> Decision[A]:
        offload = getattr(self.reconciler, "offload", None)
        if callable(offload) and not offload(observed):
            return self.reconciler.plan(observed)
        assert self._manager is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._manager.plan_pool, self.reconciler.plan, observed)

    def _held(self, key: str) -> float | None:
        """Seconds the key is still held back after a refused write; None: not held."""
        assert self._manager is not None
        held = self._held_back.get(key)
        if held is None:
            return None
        remaining = held[1] - self._manager.clock.monotonic()
        return remaining if remaining > 0 else None

    def _hold_back(self, key: str) -> None:
        assert self._manager is not None
        failures = self._held_back.get(key, (0, 0.0))[0]
        delay = min(REFUSAL_BACKOFF * 2 ** min(failures, 20), REFUSAL_BACKOFF_CAP)
        self._held_back[key] = (failures + 1, self._manager.clock.monotonic() + delay)

    def _wait(self, owner: tuple[str, str]) -> float | None:
        """Seconds to wait while the key's own writes are not in the caches yet; None: go ahead."""
        assert self._manager is not None
        verdict = self._manager.expectations.check(owner)
        if not verdict.waiting:
            return None
        if verdict.relist:
            log.warning(
                "own writes not seen in the cache in time, re-listing",
                extra={
                    "controller": self.name,
                    "key": owner[1],
                    "informers": [repr(i) for i in verdict.relist],
                },
            )
            for informer in verdict.relist:
                informer.request_relist()
            self._manager.expectations.renew(owner)
        return max(verdict.retry_in, CONFLICT_REQUEUE)

    async def _carry_out(self, obj: Obj, observed: Obs, decision: Decision[A], writer: Writer) -> None:
        if decision.status is not None:
            await writer.write_status(self.reconciler.primary, obj["metadata"], decision.status)
        for action in decision.actions:
            await self.reconciler.act(action, observed, writer)

    async def _report(self, obj: Obj, err: Refused, writer: Writer) -> None:
        """status.message says why (once per message), and a Warning Event at most every 10 minutes."""
        assert self._manager is not None
        message = err.describe()
        meta = obj.get("metadata") or {}
        log.warning(
            "write refused", extra={"controller": self.name, "object": meta.get("name"), "why": message}
        )
        current = str((obj.get("status") or {}).get("message") or "")
        if self.reconciler.status_message and current != message:
            await self._status_message(obj, message, writer)
        if self._event_due(meta, message):
            await self._manager.recorder.event(obj, EventKind.WARNING, REFUSED_REASON, message)

    async def _status_message(self, obj: Obj, message: str, writer: Writer) -> None:
        meta = obj["metadata"]
        body = {"status": {"message": message}}
        try:
            await writer.patch(
                self.reconciler.primary,
                str(meta["name"]),
                body,
                meta.get("namespace"),
                guard=str(meta.get("resourceVersion") or ""),
                subresource="status",
            )
        except (Stale, Refused, ApiError) as failed:  # the Event still says it; the next pass retries
            log.warning("could not report a refused write in status", extra={"error": str(failed)})

    async def _clear_report(self, obj: Obj, decision: Decision[A], writer: Writer) -> None:
        """Writes go through again: drop the refusal from status.message unless the plan set a new one."""
        if not self.reconciler.status_message or not _reported(obj):
            return
        stored = (obj.get("status") or {}).get("message")
        if decision.status is not None and decision.status.get("message") != stored:
            return
        await self._status_message(obj, "", writer)

    def _event_due(self, meta: dict[str, Any], message: str) -> bool:
        assert self._manager is not None
        now = self._manager.clock.monotonic()
        key = (f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid')}", message)
        last = self._refusals.get(key)
        if last is not None and now - last < REFUSAL_EVENT_INTERVAL:
            return False
        self._refusals[key] = now
        self._refusals.move_to_end(key)
        while len(self._refusals) > _REFUSAL_MEMORY:
            self._refusals.popitem(last=False)
        return True


def _reported(obj: Obj) -> bool:
    """Whether the object's status.message is a report of a refused write of ours."""
    return str((obj.get("status") or {}).get("message") or "").startswith(REFUSAL_PREFIX)
