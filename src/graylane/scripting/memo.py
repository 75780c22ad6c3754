"""What the script runner remembers: results of pure runs, and which scripts are backed off.

Scripts are pure functions of their input, so a finished run — a result, or a failure the script itself
caused (an error, a result that cannot be written) — is remembered under a key made from the script's
text and its input, in a cache bounded in entries and bytes (least recently used first out). A run that
ran out of time or memory, or whose process died, says more about the machine than about the input:
it is not remembered, but the script is backed off — for `base` seconds after the first such failure,
doubling up to `cap` — and every call in that window fails at once with the same message, so a runaway
script never runs in a hot loop. A success ends the back-off.

Thread-safe (one lock); time comes from the injected clock. Must not: run scripts, or do I/O.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from collections.abc import Callable

from graylane.scripting.outcome import Outcome

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_CACHE",
    "BackoffPolicy",
    "CacheLimits",
    "ScriptMemo",
    "input_key",
    "script_key",
]

Clock = Callable[[], float]


def script_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def input_key(script: str, input_json: str) -> str:
    """A fixed-size key: inputs can be whole objects, and the cache's memory is what is bounded."""
    return hashlib.sha256(f"{script}\0{input_json}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class CacheLimits:
    entries: int = 4096
    bytes: int = 32 * 2**20


@dataclasses.dataclass(frozen=True)
class BackoffPolicy:
    base: float = 5.0
    cap: float = 300.0
    scripts: int = 1024  # how many backed-off scripts are tracked (the oldest is forgotten)


DEFAULT_CACHE = CacheLimits()
DEFAULT_BACKOFF = BackoffPolicy()


@dataclasses.dataclass
class _Backoff:
    failures: int
    until: float
    message: str


class ScriptMemo:
    def __init__(
        self,
        clock: Clock,
        cache: CacheLimits = DEFAULT_CACHE,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
    ) -> None:
        self._clock = clock
        self._cache_limits = cache
        self._policy = backoff
        self._lock = threading.Lock()
        self._results: collections.OrderedDict[str, Outcome] = collections.OrderedDict()
        self._bytes = 0
        self._backoffs: collections.OrderedDict[str, _Backoff] = collections.OrderedDict()

    def cached(self, key: str) -> Outcome | None:
        with self._lock:
            outcome = self._results.get(key)
            if outcome is not None:
                self._results.move_to_end(key)
            return outcome

    def remember(self, key: str, outcome: Outcome) -> None:
        size = _size(key, outcome)
        if size > self._cache_limits.bytes:
            return
        with self._lock:
            old = self._results.pop(key, None)
            if old is not None:
                self._bytes -= _size(key, old)
            self._results[key] = outcome
            self._bytes += size
            while len(self._results) > self._cache_limits.entries or self._bytes > self._cache_limits.bytes:
                dropped, outcome = self._results.popitem(last=False)
                self._bytes -= _size(dropped, outcome)

    def backed_off(self, script: str) -> str | None:
        """The message to fail with while `script` is backed off, else None."""
        with self._lock:
            state = self._backoffs.get(script)
            if state is None or self._clock() >= state.until:
                return None
            return state.message

    def failed(self, script: str, message: str) -> float:
        """Back `script` off after a run that ran out of time or memory; returns the seconds."""
        with self._lock:
            state = self._backoffs.pop(script, None)
            failures = 1 if state is None else state.failures + 1
            seconds = min(self._policy.cap, self._policy.base * 2.0 ** (failures - 1))
            self._backoffs[script] = _Backoff(failures, self._clock() + seconds, message)
            while len(self._backoffs) > self._policy.scripts:
                self._backoffs.popitem(last=False)
            return seconds

    def succeeded(self, script: str) -> None:
        with self._lock:
            self._backoffs.pop(script, None)

    def sizes(self) -> tuple[int, int]:
        """(entries, bytes) of the result cache, for tests and metrics."""
        with self._lock:
            return len(self._results), self._bytes


def _size(key: str, outcome: Outcome) -> int:
    return len(key) + len(outcome.text) + 64  # the constant: the entry's own objects, roughly
