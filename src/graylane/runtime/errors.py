"""The outcomes of a write that the reconcile loop handles itself, as exceptions.

- `Stale`: the object was not what the decision was made on (409 on a resourceVersion guard, 404 on a
  patch). Nothing is wrong; the key is planned again once the cache has moved (see expectations.py).
- `Refused`: the API server refused the write for a reason that repeating it will not change soon (an
  admission webhook's denial, invalid data, a missing permission). The loop says so in the object's
  status and a Warning Event, and the key is retried with back-off.
- `Backoff`: any failure that is expected and retried with the queue's per-key back-off, logged as one
  line instead of a traceback.

What it must not do: decide which HTTP codes mean what beyond `classify` (the one place that does).
"""

from __future__ import annotations

from graylane.kube.client import ApiError

__all__ = ["REFUSAL_PREFIX", "Backoff", "Refused", "Stale", "is_refusal"]

# How a refused write is reported in status.message; the next successful pass replaces it.
REFUSAL_PREFIX = "graylane could not "


class Stale(Exception):
    """A guarded write met a newer or missing object: plan again from fresh state."""


class Backoff(Exception):
    """An expected failure: retry the key with back-off and log it without a traceback."""


class Refused(Backoff):
    """The API server refused one of our writes (admission denial, invalid, forbidden)."""

    def __init__(self, verb: str, kind: str, name: str, err: ApiError) -> None:
        self.verb, self.kind, self.name, self.error = verb, kind, name, err
        super().__init__(self.describe())

    def describe(self) -> str:
        reason = self.error.message or self.error.reason or "refused"
        return f"{REFUSAL_PREFIX}{self.verb} {self.kind} {self.name}: {self.error.code} {reason}"


def is_refusal(err: ApiError) -> bool:
    """4xx that retrying will not fix by itself; 404, 409 (stale), 410 and 429 (throttled) are not."""
    return 400 <= err.code < 500 and err.code not in (404, 409, 410, 429) and not err.already_exists
