"""The validating webhook's pure rules never raise, whatever the object (the fuzzer's generators).

The API server's schema refuses wrong types before the webhook sees them, but a handler that raised
would answer 500 and block the write: here the rules meet the hostile objects directly, schema or not.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, seed, settings
from tests.fuzz_specs import Obj, rollouts

from graylane.webhook.validation import render_errors, validate_rollout


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@seed(20261204)
@given(new=rollouts(), old=rollouts())
def test_validation_answers_every_object_with_field_errors(new: Obj, old: Obj) -> None:
    for stored in (None, old):
        errors = validate_rollout(new, stored, [old])
        assert all(error.path for error in errors)
        assert isinstance(render_errors(errors), str)
