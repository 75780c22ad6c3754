"""`graylane controller` flags that mirror Kruise's chart, and the status --timeout durations."""

from __future__ import annotations

import click
import pytest

from graylane.cli.controller import FEATURE_GATES, parse_feature_gates
from graylane.cli.rollouts import Duration


def test_kruise_feature_gates_are_accepted_and_unknown_ones_named() -> None:
    assert parse_feature_gates("") == FEATURE_GATES
    gates = parse_feature_gates("AdvancedDeployment=false, RolloutHistory=true")
    assert (gates["AdvancedDeployment"], gates["RolloutHistory"]) == (False, True)
    with pytest.raises(click.BadParameter, match="unknown feature gate 'Nope'"):
        parse_feature_gates("Nope=true")
    with pytest.raises(click.BadParameter, match="needs =true or =false"):
        parse_feature_gates("AdvancedDeployment")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("0", 0.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "5d"])
def test_bad_durations_name_the_problem(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)
