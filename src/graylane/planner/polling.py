"""How long a controller waits before looking again when no event is expected to wake it.

Readiness waits (pods becoming ready, a controller observing a new generation, a BatchRelease moving
on) are woken by watch events: every object such a wait depends on is watched and mapped to the key
that waits. What is left here is the *safety poll*: a long, jittered re-check for the few inputs that
are not watched (pods are listed, not cached) and as a bound on how long a lost wake-up can stall a
release. The jitter is derived from the object's uid, so the planner stays a pure function and a
thousand objects that started together do not all wake in the same second.

What it must not do: read a clock or a random source.
"""

from __future__ import annotations

import hashlib

__all__ = ["SAFETY_POLL_JITTER", "SAFETY_POLL_SECONDS", "safety_poll"]

SAFETY_POLL_SECONDS = 30.0
SAFETY_POLL_JITTER = 0.2  # ± 20 %


def safety_poll(uid: str) -> float:
    """30 s ± 20 %, the same for one object every time, spread evenly across objects."""
    digest = hashlib.sha256(uid.encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF  # in [0, 1]
    return SAFETY_POLL_SECONDS * (1.0 + SAFETY_POLL_JITTER * (2.0 * fraction - 1.0))
