"""How one run of a script ended: shared by the worker (which reports it) and the pool (which decides).

Must not import lupa: the controller process reads outcomes but never loads a Lua runtime.
"""

from __future__ import annotations

import dataclasses

__all__ = ["RESOURCE_FAILURES", "Outcome", "OutcomeKind"]


class OutcomeKind:
    OK = "ok"
    ERROR = "error"  # the script failed, or returned what cannot be written: a function of its input
    TIMEOUT = "timeout"  # out of time: the CPU hook fired, or the pool's wall-clock deadline passed
    MEMORY = "memory"  # the Lua allocator or the worker process ran out of memory
    CRASH = "crash"  # the worker died or broke the protocol (set by the pool)

    ALL = (OK, ERROR, TIMEOUT, MEMORY, CRASH)


# Failures that depend on the machine (load, memory) rather than only on the input: never cached.
RESOURCE_FAILURES = frozenset({OutcomeKind.TIMEOUT, OutcomeKind.MEMORY, OutcomeKind.CRASH})


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str
    text: str  # the result as JSON text, or the error message

    @property
    def ok(self) -> bool:
        return self.kind == OutcomeKind.OK
