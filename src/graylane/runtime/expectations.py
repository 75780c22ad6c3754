"""Expectations: what a key's own writes must look like in the informer caches before it decides again.

client-go's idea (ControllerExpectations), kept with resourceVersions instead of counts. Every write the
runtime makes for a key registers what the cache must show afterwards:
- VERSION: the object at the resourceVersion the write returned (creates, patches, status writes);
- PRESENT: some version of the object (a create that found the name already taken);
- ABSENT: the object gone (a delete that removed it, or found it gone);
- CHANGED: a version other than the one a refused (409) guard named, i.e. the newer object exists.
The key's next decision waits until all of them hold, so it never plans from a cache older than its own
writes: no second canary Deployment from a cache that has not shown the first, no "finalised" from an
object that has not shown the hand-back yet, no Rollout step re-decided from its previous status.

An expectation is met by the informer's event for that object carrying the version (or its deletion,
which is newer still), by a LIST that started after it was registered (a LIST without resourceVersion is
a consistent read, so it includes every write completed before it began), or at once when the cache
already shows it (a patch that changed nothing keeps the version) or showed it while the write was in
flight: the watch may deliver our version, and a newer one after it (the controller-manager's status
update of a Deployment just created), before the write's own response is read, so the writer opens a
`Flight` on the object before it sends and the versions seen meanwhile count (`expect(..., seen=)`);
without it that expectation waited for an event already gone, a 30 s stall and a re-list (issue 14).
Waits are bounded: once `timeout` passes, `check` names the informers to re-list and the wait starts
again, so a lost watch event costs a re-list, never a decision made blind. resourceVersions are compared
for equality only, as the API asks.

What it must not do: call the API server, or know what any resource means.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Collection, Hashable, Iterable

from graylane.kube.client import Obj
from graylane.kube.informer import EventType, Informer, object_key
from graylane.kube.workqueue import Clock

__all__ = ["DEFAULT_TIMEOUT", "Expectations", "Flight", "Verdict", "Want"]

DEFAULT_TIMEOUT = 30.0
Owner = Hashable


class Want(enum.Enum):
    VERSION = "version"
    PRESENT = "present"
    ABSENT = "absent"
    CHANGED = "changed"


@dataclasses.dataclass(eq=False, slots=True)
class _Expectation:
    owner: Owner
    informer: Informer
    key: str
    want: Want
    version: str
    lists_seen: int  # informer.lists_started when registered: a later list meets it
    deadline: float


@dataclasses.dataclass(eq=False)
class Flight:
    """The versions of one object the informers delivered while a write to it was in flight."""

    entries: tuple[tuple[int, str], ...]  # (informer, key) it is recorded under
    seen: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether the owner must wait, until when, and which informers to re-list after a timeout."""

    waiting: bool = False
    retry_in: float = 0.0
    relist: tuple[Informer, ...] = ()


def _version(obj: Obj | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _met(want: Want, version: str, cached: Obj | None) -> bool:
    """Whether the cache (or an event's new object; None: gone) shows what is wanted."""
    found = _version(cached)
    if want is Want.VERSION:
        return found == version
    if want is Want.PRESENT:
        return found is not None
    if want is Want.ABSENT:
        return found is None
    return found != version


class Expectations:
    """Pending expectations by owner and by cached object; `on_met(owner)` fires when an owner's last
    one is met by an event or a list (the manager enqueues the owner's key then)."""

    def __init__(
        self, clock: Clock, on_met: Callable[[Owner], None], timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._clock = clock
        self._on_met = on_met
        self.timeout = timeout
        self._by_owner: dict[Owner, list[_Expectation]] = {}
        self._by_object: dict[tuple[int, str], list[_Expectation]] = {}
        self._tracked: set[int] = set()
        self._relisted: dict[int, float] = {}  # informer -> when a re-list was last asked of it
        self._flights: dict[tuple[int, str], list[Flight]] = {}  # writes in flight, by object

    def __len__(self) -> int:
        return sum(len(found) for found in self._by_owner.values())

    def track(self, informer: Informer) -> None:
        """Meet expectations from this informer's events and lists (once per informer)."""
        if id(informer) in self._tracked:
            return
        self._tracked.add(id(informer))

        def on_event(kind: EventType, old: Obj | None, new: Obj | None) -> None:
            key = object_key(new if new is not None else old or {})
            version = _version(new)
            for flight in self._flights.get((id(informer), key or ""), ()):
                if version:
                    flight.seen.add(version)
            for found in list(self._by_object.get((id(informer), key or ""), ())):
                if _met(found.want, found.version, None if kind is EventType.DELETED else new):
                    self._resolve(found)

        def on_relist(number: int) -> None:
            for found in [e for entries in self._by_object.values() for e in entries]:
                if found.informer is informer and number > found.lists_seen:
                    self._resolve(found)

        informer.on_event(on_event)
        informer.on_relist(on_relist)

    def depart(self, informers: Iterable[Informer], key: str) -> Flight:
        """Record the versions of `key` the informers deliver from now until `land(flight)`: the
        writer opens one before it sends a write to that object."""
        flight = Flight(tuple((id(informer), key) for informer in informers))
        for entry in flight.entries:
            self._flights.setdefault(entry, []).append(flight)
        return flight

    def land(self, flight: Flight) -> None:
        for entry in flight.entries:
            flights = self._flights.get(entry, [])
            if flight in flights:
                flights.remove(flight)
            if not flights:
                self._flights.pop(entry, None)

    def expect(
        self,
        owner: Owner,
        informer: Informer,
        key: str,
        want: Want,
        version: str = "",
        seen: Collection[str] = (),
    ) -> None:
        """Register what `owner`'s next decision needs to see in `informer` for the object `key`;
        `seen`: versions of it the informer delivered while the write was in flight."""
        namespace, _, name = key.rpartition("/")
        if want is Want.VERSION and version in seen:
            return  # the cache went through our version already (and is newer now)
        if _met(want, version, informer.get(namespace or None, name)):
            return
        found = _Expectation(
            owner,
            informer,
            key,
            want,
            version,
            informer.lists_started,
            self._clock.monotonic() + self.timeout,
        )
        self._by_owner.setdefault(owner, []).append(found)
        self._by_object.setdefault((id(informer), key), []).append(found)

    def check(self, owner: Owner) -> Verdict:
        """Not waiting, waiting until a deadline, or past it (then re-list the named informers and
        `renew`)."""
        pending = self._by_owner.get(owner)
        if not pending:
            return Verdict()
        now = self._clock.monotonic()
        late = {id(e.informer): e.informer for e in pending if e.deadline <= now}
        if late:
            return Verdict(waiting=True, retry_in=self.timeout, relist=self._relists(late, now))
        return Verdict(waiting=True, retry_in=min(e.deadline for e in pending) - now)

    def _relists(self, late: dict[int, Informer], now: float) -> tuple[Informer, ...]:
        """At most one re-list per informer per `timeout`, however many owners time out on it: under
        load a lagging watch must not turn into a storm of LISTs of thousands of objects."""
        due = tuple(
            i for key, i in late.items() if now - self._relisted.get(key, -self.timeout) >= self.timeout
        )
        for informer in due:
            self._relisted[id(informer)] = now
        return due

    def renew(self, owner: Owner) -> None:
        """Start the wait again after asking for re-lists: a list that starts from now on meets it."""
        deadline = self._clock.monotonic() + self.timeout
        for found in self._by_owner.get(owner, ()):
            found.deadline = deadline
            found.lists_seen = found.informer.lists_started

    def forget(self, owner: Owner) -> None:
        """Drop the owner's expectations (its object is gone: nothing will decide on them)."""
        for found in self._by_owner.pop(owner, ()):
            self._unindex(found)

    def _resolve(self, found: _Expectation) -> None:
        self._unindex(found)
        pending = self._by_owner.get(found.owner)
        if pending is None:
            return
        if found in pending:
            pending.remove(found)
        if not pending:
            del self._by_owner[found.owner]
            self._on_met(found.owner)

    def _unindex(self, found: _Expectation) -> None:
        index = (id(found.informer), found.key)
        entries = self._by_object.get(index)
        if entries is None:
            return
        if found in entries:
            entries.remove(found)
        if not entries:
            del self._by_object[index]
