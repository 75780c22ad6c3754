"""Rules for graylane's analysis fields on a Rollout (Kruise has none: these are graylane's own).

A step's ``analysis`` and a strategy's background ``analysis`` name AnalysisTemplates and give their
arguments. Refused, each at its field path in upstream's spelling (e.g.
``Spec.Strategy.Canary.Steps[1].Analysis.Templates[0].TemplateName: Required value``):
- an analysis without templates, or a template without a name;
- an argument without a name, a name used twice, both ``value`` and ``valueFrom``, or neither;
- a ``valueFrom`` with other than exactly one of ``podTemplateHashValue`` (Stable or Latest) and
  ``fieldRef.fieldPath`` (``secretKeyRef`` belongs in the AnalysisTemplate, so no Secret is named from a
  Rollout);
- a background ``startingStep`` outside 1..number of steps.
Whether the templates exist is the controller's business (they may be created after the Rollout).

Runs after upstream's rules admitted the Rollout, on the raw object (v1alpha1 or v1beta1); on UPDATE only
when an analysis block changed, so the controller's own metadata writes are never refused. Must not do
I/O or import graylane.api.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from graylane.webhook.validation_common import (
    FieldError,
    FieldErrorType,
    as_dict,
    as_list,
    blue_green_of,
    canary_of,
    invalid,
)

__all__ = ["validate_analysis"]

Raw = Mapping[str, Any]
_HASH_VALUES: Final = ("Stable", "Latest")


def validate_analysis(rollout: Raw, old: Raw | None = None) -> list[FieldError]:
    if old is not None and _blocks(old) == _blocks(rollout):
        return []
    errors: list[FieldError] = []
    for body, title in ((canary_of(rollout), "Canary"), (blue_green_of(rollout), "BlueGreen")):
        if body is None:
            continue
        path = f"Spec.Strategy.{title}"
        steps = as_list(body.get("steps"))
        for index, step in enumerate(steps):
            analysis = as_dict(step).get("analysis")
            if analysis is not None:
                errors += _check_block(analysis, f"{path}.Steps[{index}].Analysis")
        background = body.get("analysis")
        if background is not None:
            errors += _check_block(background, f"{path}.Analysis")
            errors += _check_starting_step(
                as_dict(background).get("startingStep"), f"{path}.Analysis", len(steps)
            )
    return errors


def _blocks(rollout: Raw) -> list[object]:
    found: list[object] = []
    for body in (canary_of(rollout), blue_green_of(rollout)):
        if body is not None:
            found.append(body.get("analysis"))
            found.extend(as_dict(step).get("analysis") for step in as_list(body.get("steps")))
    return found


def _required(path: str, message: str) -> FieldError:
    return FieldError(path, FieldErrorType.REQUIRED, "", message)


def _check_block(analysis: object, path: str) -> list[FieldError]:
    if not isinstance(analysis, Mapping):
        return [invalid(path, analysis, "must be an object with templates and args")]
    templates = as_list(analysis.get("templates"))
    errors = (
        [] if templates else [_required(f"{path}.Templates", "at least one AnalysisTemplate is required")]
    )
    errors += [
        _required(f"{path}.Templates[{index}].TemplateName", "the name of an AnalysisTemplate is required")
        for index, template in enumerate(templates)
        if not as_dict(template).get("templateName")
    ]
    return errors + _check_args(as_list(analysis.get("args")), f"{path}.Args")


def _check_args(args: list[Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, raw in enumerate(args):
        arg, where = as_dict(raw), f"{path}[{index}]"
        name = arg.get("name")
        if not name:
            errors.append(_required(f"{where}.Name", "an argument needs a name"))
        elif name in seen:
            errors.append(FieldError(f"{where}.Name", FieldErrorType.DUPLICATE, name, ""))
        else:
            seen.add(str(name))
        source = arg.get("valueFrom")
        if arg.get("value") is not None and source is not None:
            errors.append(invalid(where, name, "value and valueFrom are mutually exclusive"))
        elif arg.get("value") is None and source is None:
            errors.append(_required(f"{where}.Value", f"argument {name!r} needs a value or valueFrom"))
        elif source is not None:
            errors += _check_source(as_dict(source), f"{where}.ValueFrom")
    return errors


def _check_source(source: Raw, path: str) -> list[FieldError]:
    if source.get("secretKeyRef") is not None:
        message = (
            "a Rollout cannot name a Secret: declare the argument with secretKeyRef in the AnalysisTemplate"
        )
        return [FieldError(f"{path}.SecretKeyRef", FieldErrorType.FORBIDDEN, "", message)]
    given = [key for key in ("podTemplateHashValue", "fieldRef") if source.get(key) is not None]
    if len(given) != 1:
        return [invalid(path, None, "exactly one of podTemplateHashValue and fieldRef is required")]
    if given[0] == "podTemplateHashValue":
        value = source["podTemplateHashValue"]
        if value not in _HASH_VALUES:
            return [
                FieldError(
                    f"{path}.PodTemplateHashValue",
                    FieldErrorType.NOT_SUPPORTED,
                    value,
                    'supported values: "Stable", "Latest"',
                )
            ]
        return []
    if not as_dict(source.get("fieldRef")).get("fieldPath"):
        return [
            _required(f"{path}.FieldRef.FieldPath", "a field path such as metadata.labels['app'] is required")
        ]
    return []


def _check_starting_step(value: object, path: str, steps: int) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= max(steps, 1):
        return [invalid(f"{path}.StartingStep", value, f"must be a step number from 1 to {steps}")]
    return []
