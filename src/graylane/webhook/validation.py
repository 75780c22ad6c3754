"""Validating admission for Rollouts: the rules of Kruise Rollout's ``/validate-rollouts-kruise-io-rollout``.

``validate_rollout`` takes the admission request's raw objects (``rollouts.kruise.io/v1alpha1`` or
``v1beta1``), the other Rollouts of the namespace and upstream's two flags, and returns upstream's field
errors in upstream's order; ``render_errors`` turns them into the message of upstream's HTTP 422 response.
The rules live in ``validation_v1beta1`` and ``validation_v1alpha1``; shared pieces in
``validation_common``; Go-style value printing in ``validation_gofmt``. Then graylane's own checks:
the other version's rules on the Rollout converted to it, so that nothing is admitted that a later
write in the other version (graylane's own included) would be refused (``validation_cross``), that
the traffic providers can route every step (``validation_traffic``), and the analysis fields
(``validation_analysis``).

Must not: do I/O (the caller lists the siblings), or validate status (upstream accepts any status patch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graylane.webhook.validation_analysis import validate_analysis
from graylane.webhook.validation_common import (
    DEFAULT_OPTIONS,
    FieldError,
    FieldErrorType,
    ValidationOptions,
    is_v1alpha1,
    render_errors,
)
from graylane.webhook.validation_cross import validate_converted
from graylane.webhook.validation_traffic import validate_traffic
from graylane.webhook.validation_v1alpha1 import validate_v1alpha1
from graylane.webhook.validation_v1beta1 import validate_v1beta1

__all__ = [
    "DEFAULT_OPTIONS",
    "FieldError",
    "FieldErrorType",
    "ValidationOptions",
    "render_errors",
    "validate_rollout",
]


def validate_rollout(
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    siblings: Sequence[Mapping[str, Any]],
    options: ValidationOptions = DEFAULT_OPTIONS,
) -> list[FieldError]:
    """Upstream's verdict on a CREATE (``old`` is None) or UPDATE of ``obj``; [] means admitted.

    ``siblings`` are the namespace's Rollouts in any API version; ``obj`` itself is skipped by name. On
    UPDATE the immutability rules apply while ``old`` (the stored object) is Progressing or Terminating.
    """
    if is_v1alpha1(obj):
        errors = validate_v1alpha1(obj, old, siblings, options)
    else:
        errors = validate_v1beta1(obj, old, siblings, options)
    # graylane: what the other version would refuse, steps no traffic provider can route, analysis fields.
    return (
        errors
        or validate_converted(obj, old, siblings, options)
        or validate_traffic(obj, old)
        or validate_analysis(obj, old)
    )
