"""Argo CD's verdict for a rollouts.kruise.io/Rollout, from the facts table in data/ (not Argo's code).

`verdict(rollout)` walks the rules of tests/data/argocd_kruise_rollout_health.yaml in order and returns
(status, message) of the first that matches; `MissingCanaryStatus` is what Argo CD's check does without
status.canaryStatus (it fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["TABLE", "MissingCanaryStatus", "verdict"]

TABLE: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "argocd_kruise_rollout_health.yaml").read_text("utf-8")
)


class MissingCanaryStatus(Exception):
    """Argo CD's check indexes status.canaryStatus without a nil check and fails."""


def _facts(rollout: dict[str, Any]) -> dict[str, Any]:
    meta, status = rollout.get("metadata") or {}, rollout.get("status") or {}
    observed = meta.get("generation") == status.get("observedGeneration")
    facts: dict[str, Any] = {
        "deleting": bool(meta.get("deletionTimestamp")),
        "finalizers": bool(meta.get("finalizers")),
        "observed": observed,
        "phase": status.get("phase"),
    }
    canary = status.get("canaryStatus")
    facts["state"] = canary.get("currentStepState") if isinstance(canary, dict) else None
    facts["canary_missing"] = not isinstance(canary, dict)
    return facts


def _matches(when: dict[str, Any], facts: dict[str, Any]) -> bool:
    for key, want in when.items():
        if key == "phase":
            if facts["phase"] not in want:
                return False
        elif facts[key] != want:
            return False
    return True


def verdict(rollout: dict[str, Any]) -> tuple[str, str]:
    facts = _facts(rollout)
    for rule in TABLE["rules"]:
        when = rule["when"]
        if "state" in when and not facts["deleting"] and facts["observed"] and facts["canary_missing"]:
            raise MissingCanaryStatus("status.canaryStatus is missing")
        if _matches(when, facts):
            finalizers = ", ".join((rollout.get("metadata") or {}).get("finalizers") or [])
            return rule["status"], rule["message"].replace("{finalizers}", finalizers)
    raise AssertionError("the table's last rule matches everything")
