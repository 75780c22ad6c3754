"""Kruise-compatible hashes: the Rollout's ``rollouts.kruise.io/hash`` and the BatchRelease plan hash.

What this module does: reproduces, byte for byte, the JSON Go's ``encoding/json`` writes for the hashed
structs and hashes it the way Kruise does, so a graylane controller taking over from Kruise (or running
next to a Kruise-written status) computes the same values.

The ``rollouts.kruise.io/hash`` recipe (Kruise ``calculateRolloutHash``):
1. Take the active sub-strategy only: ``spec.strategy.blueGreen`` if set, else ``spec.strategy.canary``
   (``paused`` and everything outside the strategy are not hashed).
2. Blank it: ``failureThreshold`` unset, and every step's ``pause`` replaced by an empty pause (``{}``),
   so changing pauses or the failure threshold does not count as a plan change.
3. Serialise it as Go's ``json.Marshal`` does: compact, struct fields in Go declaration order, fields
   dropped per their ``omitempty`` tag, map keys sorted, unknown fields dropped, ``<``, ``>``, ``&``,
   U+2028 and U+2029 escaped as ``\\u003c`` etc. (``go_json``).
4. Lower-case hex of SHA-256 of those bytes (64 chars).
5. Map every hex character ``c`` to ``ALPHANUMS[ord(c) % 27]`` with
   ``ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"`` (k8s ``rand.SafeEncodeString``; vowels are left out so no
   words form). The result uses 15 distinct characters (``0`` and ``f`` both become ``4``).

The BatchRelease ``status.observedReleasePlanHash`` (Kruise ``HashReleasePlanBatches``) is step 3 + 4
applied to the whole ``spec.releasePlan``, without the alphabet mapping.

Known limit: Go before 1.22 wrote ``\\b``/``\\f`` as ``\\u0008``/``\\u000c``; such control characters
never occur in real strategies, so they are not special-cased.

What it must not do: read or write the annotation, or decide what a hash change means.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from graylane.api.batchrelease import ReleasePlan
from graylane.api.common import go_dump
from graylane.api.rollout_v1beta1 import Rollout, RolloutPause, RolloutStrategy

__all__ = [
    "ALPHANUMS",
    "go_json",
    "release_plan_hash",
    "rollout_hash",
    "rollout_hash_from_obj",
    "safe_encode",
]

ALPHANUMS: Final = "bcdfghjklmnpqrstvwxz2456789"
_GO_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_json(value: Any) -> str:
    """Compact JSON of an already Go-shaped value (see ``go_dump``), with Go's HTML-safe escaping."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # These characters can only occur inside JSON strings, so a plain replace is safe.
    for char, escape in _GO_ESCAPES:
        text = text.replace(char, escape)
    return text


def safe_encode(text: str) -> str:
    """k8s ``rand.SafeEncodeString``: each character mapped through ``ALPHANUMS``."""
    return "".join(ALPHANUMS[ord(char) % len(ALPHANUMS)] for char in text)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rollout_hash(strategy: RolloutStrategy) -> str:
    """Value of the ``rollouts.kruise.io/hash`` annotation for ``strategy``.

    Raises ``ValueError`` when the strategy has neither canary nor blue-green (Kruise errors too).
    """
    active = strategy.active()
    if active is None:
        raise ValueError("unknown rolling style: the strategy has neither canary nor blueGreen")
    steps = [step.model_copy(update={"pause": RolloutPause()}) for step in active.steps]
    blanked = active.model_copy(update={"failure_threshold": None, "steps": steps})
    return safe_encode(_sha256_hex(go_json(go_dump(blanked, keep_extra=False))))


def rollout_hash_from_obj(rollout: Mapping[str, Any]) -> str:
    """``rollout_hash`` of a v1beta1 Rollout given as a plain dict."""
    return rollout_hash(Rollout.from_obj(rollout).spec.strategy)


def release_plan_hash(plan: ReleasePlan) -> str:
    """Value of ``BatchRelease.status.observedReleasePlanHash`` for ``plan``."""
    return _sha256_hex(go_json(go_dump(plan, keep_extra=False)))
