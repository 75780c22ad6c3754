"""Condition expressions: Argo-style conditions evaluate as expr-lang does, and hostile input is refused."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.analysis.expr import MAX_LENGTH, ConditionError, compile_condition, evaluate_condition


@pytest.mark.parametrize(
    ("condition", "result", "expected"),
    [
        ("result[0] < 0.05", [0.01], True),
        ("result[0] < 0.05", [0.1], False),
        ("result[0] >= 0.95", [0.96, 0.1], True),
        ("result < 0.05", 0.01, True),
        ("result > 1e-3", 0.01, True),
        ("len(result) == 0 || result[0] < 5", [], True),
        ("len(result) > 0 && result[0] < 5", [3], True),
        ("result[-1] == 3", [1, 2, 3], True),
        ("all(result, {# < 0.5})", [0.1, 0.4], True),
        ("all(result, {# < 0.5})", [0.1, 0.6], False),
        ("any(result, {# > 0.5})", [0.1, 0.6], True),
        ("none(result, {# > 0.5})", [0.1, 0.2], True),
        ("count(result, {# > 0}) == 2", [1, 0, 2], True),
        ("len(filter(result, {# > 1})) == 1", [1, 2], True),
        ("sum(map(result, {# * 2})) == 6", [1, 2], True),
        ("max(result) <= 2 and min(result) >= 1", [1, 2], True),
        ("max(1, 2, 3) == 3", None, True),
        ("not (result[0] > 1)", [0], True),
        ("!(result[0] > 1)", [0], True),
        ("result.p99 < 250", {"p99": 120.0}, True),
        ("result['p99'] < 250", {"p99": 300.0}, False),
        ("asFloat(result) > 0.5", "0.75", True),
        ("asInt(result) == 3", "3", True),
        ("isNaN(result)", float("nan"), True),
        ("isInf(result)", float("inf"), True),
        ("isNil(result)", None, True),
        ("default(result, 0) == 0", None, True),
        ("result[0] > 0 ? result[0] < 1 : false", [0.5], True),
        ("2 ** 10 == 1024", None, True),
        ("2 ^ 3 == 8", None, True),
        ("-2 ** 2 == -4", None, True),  # ** binds tighter than unary minus, as in expr-lang
        ("7 % 3 == 1", None, True),
        ("1 + 2 * 3 == 7", None, True),
        ("(1 + 2) * 3 == 9", None, True),
        ("10 / 4 == 2.5", None, True),
        ('"a" + "b" == "ab"', None, True),
        ("'x' in ['x', 'y']", None, True),
        ("2 in result", [1, 2], True),
        ("'ok' in result", {"ok": 1}, True),
        ("result == nil", None, True),
        ("1 == 1.0", None, True),
        ("true != false", None, True),
        ("abs(result[0]) < 1", [-0.5], True),
    ],
)
def test_conditions_evaluate_like_expr_lang(condition: str, result: Any, expected: bool) -> None:
    assert evaluate_condition(condition, result) is expected


@pytest.mark.parametrize(
    ("condition", "result", "message"),
    [
        ("result[0] < 0.05", [], "index 0 out of range: the list has 0 element"),
        ("result[0]", [0.1], "must be true or false, got a number"),
        ("result < 'a'", 1, "cannot compare a number < a string"),
        ("result + 1 > 0", "x", "needs numbers"),
        ("result / 0 > 1", 1, "division by zero"),
        ("result.missing > 1", {"p99": 1}, "field 'missing' not found"),
        ("result && true", 1, "needs true or false, got a number"),
        ("min(result) > 0", [], "the list is empty"),
        ("asFloat(result) > 0", "abc", "is not a number"),
        ("len(result) > 0", 3, "len needs a list"),
        ("# > 0", 1, "only allowed inside a closure"),
    ],
)
def test_evaluation_errors_name_the_problem(condition: str, result: Any, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        evaluate_condition(condition, result)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("", "empty"),
        ("result <", "unexpected 'the end'"),
        ("result[0] < 0.05 )", r"unexpected '\)'"),
        ("__import__('os')", "unknown name '__import__'"),
        ("result.__class__ == 1", "not found"),
        ("open('x')", "unknown name 'open'"),
        ("result $ 1", r"unexpected character '\$'"),
        ("len(result", "found 'the end'"),
        ("all(result, 1)", "takes a list and a closure"),
        ("foo(1)", "unknown name 'foo'"),
    ],
)
def test_bad_conditions_are_refused_with_a_position(condition: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        evaluate_condition(condition, {"a": 1})


def test_a_condition_that_is_too_long_is_refused() -> None:
    with pytest.raises(ConditionError, match="longer than"):
        compile_condition("result == 1 || " * (MAX_LENGTH // 10) + "true")


@pytest.mark.parametrize(
    "condition",
    ["(" * 200 + "1" + ")" * 200 + " == 1", "-" * 500 + "1 == 1", "[" * 200 + "]" * 200 + " == 1"],
)
def test_deep_nesting_is_refused_not_a_crash(condition: str) -> None:
    with pytest.raises(ConditionError, match="nested"):
        compile_condition(condition)


def test_a_long_flat_chain_is_refused_at_compile_time() -> None:
    with pytest.raises(ConditionError, match="nested operations"):
        compile_condition("+".join(["1"] * 300) + " > 0")


def test_evaluation_steps_are_bounded() -> None:
    condition = compile_condition("all(result, {all(result, {all(result, {# >= 0})})})")

    with pytest.raises(ConditionError, match="evaluation steps"):
        condition.evaluate(list(range(200)))


def test_huge_powers_are_an_error_not_a_hang() -> None:
    with pytest.raises(ConditionError, match="too large"):
        evaluate_condition("10 ** 10 ** 10 > 0", None)


def test_a_compiled_condition_is_reusable() -> None:
    condition = compile_condition("result[0] < 0.05")

    assert [condition.evaluate([v]) for v in (0.01, 0.2, 0.04)] == [True, False, True]
