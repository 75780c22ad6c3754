"""The Argo CD health facts table reproduces Argo CD's own test cases for rollouts.kruise.io/Rollout
(their testdata's deciding fields), plus deletion and a missing canaryStatus."""

from __future__ import annotations

from typing import Any

import pytest
from tests.argocd_health import MissingCanaryStatus, verdict


def _rollout(
    phase: str, state: str, *, generation: int = 5, observed: int = 5, **meta: Any
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation, **meta},
        "status": {
            "observedGeneration": observed,
            "phase": phase,
            "canaryStatus": {"currentStepState": state},
        },
    }


@pytest.mark.parametrize(
    ("rollout", "want"),
    [
        # Argo CD's health_test.yaml cases.
        (_rollout("Healthy", "Completed"), ("Healthy", "Rollout is Completed")),
        (_rollout("Disabled", "StepPaused"), ("Degraded", "Rollout is Disabled or Terminating")),
        (_rollout("Progressing", "StepUpgrade"), ("Progressing", "Rollout is still progressing")),
        (_rollout("Progressing", "StepPaused"), ("Suspended", "Rollout is Paused need manual intervention")),
        # The rest of the rules.
        (_rollout("Terminating", "StepPaused"), ("Degraded", "Rollout is Disabled or Terminating")),
        (
            _rollout("Progressing", "StepPaused", generation=6),
            ("Progressing", "Rollout is still progressing"),
        ),
        (_rollout("Healthy", "StepPaused"), ("Progressing", "Rollout is still progressing")),
        (_rollout("Progressing", "StepTrafficRouting"), ("Progressing", "Rollout is still progressing")),
        (
            _rollout("Healthy", "Completed", deletionTimestamp="2026-01-01T00:00:00Z"),
            ("Progressing", "Pending deletion"),
        ),
        (
            _rollout("Terminating", "StepPaused", deletionTimestamp="x", finalizers=["a/b", "c"]),
            ("Progressing", "Pending deletion; blocked by finalizers: a/b, c"),
        ),
    ],
)
def test_verdicts(rollout: dict[str, Any], want: tuple[str, str]) -> None:
    assert verdict(rollout) == want


def test_a_rollout_without_canary_status_fails_the_check() -> None:
    with pytest.raises(MissingCanaryStatus):
        verdict({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "phase": "Healthy"}})
    # Not yet observed: the check answers before it reads canaryStatus.
    assert verdict({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}})[0] == "Progressing"
