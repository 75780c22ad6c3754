"""Safe evaluation of ``successCondition`` / ``failureCondition`` expressions over ``result``.

What this module does: parses the subset of expr-lang (the language Argo Rollouts' conditions use) that
conditions need, into a small tree, and evaluates it over plain JSON-like values:
- literals: numbers (``0.05``, ``1e3``), strings (single or double quotes), ``true``, ``false``, ``nil``,
  lists ``[1, 2]``; the variable ``result``;
- ``result[0]``, ``result.key``, negative indexes from the end;
- operators, loosest first: ``? :``; ``||``/``or``; ``&&``/``and``; ``== != < <= > >= in``; ``+ -``;
  ``* / %``; ``**`` (also ``^``); unary ``! not - +``;
- functions: ``len abs min max sum asInt asFloat isNaN isInf isNil default``, and ``all any none filter map
  count`` taking a closure ``{# < 0.5}`` where ``#`` is the element.

Why not ``eval`` or a general interpreter: a template author's string runs inside the controller. Here
nothing can reach Python objects (no attributes, no calls but the table above), the input length, the
nesting depth and the number of evaluation steps are bounded, and every failure is a ``ConditionError``
whose message says what was wrong, so the measurement ends in Error instead of the controller crashing.

What it must not do: do I/O, or decide what a condition's outcome means for a metric (``assess`` does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MAX_LENGTH", "Condition", "ConditionError", "compile_condition", "evaluate_condition"]

MAX_LENGTH: Final = 2000
_MAX_DEPTH: Final = 60
_MAX_TREE_DEPTH: Final = 120
_MAX_STEPS: Final = 200_000
_MAX_STRING: Final = 10_000

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:.,()\[\]{}\#])
    )""",
    re.VERBOSE,
)
_KEYWORDS: Final = {"true": True, "false": False, "nil": None}
_WORD_OPS: Final = {"and": "&&", "or": "||", "not": "!", "in": "in"}


class ConditionError(ValueError):
    """The condition cannot be parsed or evaluated; the message names the problem."""


# --- tokens and tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, op, end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            where = len(text) - len(text[pos:].lstrip())
            raise ConditionError(f"unexpected character {text[where]!r} at position {where}")
        kind = match.lastgroup or "op"
        value = match.group(kind)
        if kind == "name" and value in _WORD_OPS:
            kind, value = "op", _WORD_OPS[value]
        tokens.append(_Token(kind, value, match.start(kind)))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# A node is a tuple: (tag, *children). Tags: lit, var, elem, list, index, member, call, unary, binary,
# and, or, cond, closure.
Node = tuple[Any, ...]


@dataclass
class _Parser:
    tokens: list[_Token]
    at: int = 0
    depth: int = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, *ops: str) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in ops:
            self.at += 1
            return token.text
        return None

    def expect(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != op:
            found = token.text or "the end"
            raise ConditionError(f"expected {op!r} at position {token.pos}, found {found!r}")

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ConditionError(f"condition is nested more than {_MAX_DEPTH} levels deep")
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self) -> Node:
        return self.nested(self.ternary)

    def ternary(self) -> Node:
        test = self.logical_or()
        if not self.accept("?"):
            return test
        then = self.expression()
        self.expect(":")
        return ("cond", test, then, self.expression())

    def logical_or(self) -> Node:
        node = self.logical_and()
        while self.accept("||"):
            node = ("or", node, self.logical_and())
        return node

    def logical_and(self) -> Node:
        node = self.comparison()
        while self.accept("&&"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.additive()
        while op := self.accept("==", "!=", "<", "<=", ">", ">=", "in"):
            node = ("binary", op, node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while op := self.accept("+", "-"):
            node = ("binary", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while op := self.accept("*", "/", "%"):
            node = ("binary", op, node, self.unary())
        return node

    def unary(self) -> Node:
        if op := self.accept("!", "-", "+"):
            return ("unary", op, self.nested(self.unary))
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.accept("**", "^"):
            return ("binary", "**", base, self.nested(self.unary))  # right-associative
        return base

    def postfix(self) -> Node:
        node = self.primary()
        while op := self.accept("[", ".", "("):
            if op == "[":
                node = ("index", node, self.expression())
                self.expect("]")
            elif op == ".":
                name = self.take()
                if name.kind != "name":
                    raise ConditionError(f"expected a field name after '.' at position {name.pos}")
                node = ("member", node, name.text)
            else:
                node = self.call(node)
        return node

    def call(self, callee: Node) -> Node:
        if callee[0] != "var" or callee[1] not in _FUNCTIONS:
            raise ConditionError(f"unknown function; allowed: {', '.join(sorted(_FUNCTIONS))}")
        args: list[Node] = []
        if not self.accept(")"):
            while True:
                args.append(self.closure() if self.peek().text == "{" else self.expression())
                if self.accept(")"):
                    break
                self.expect(",")
        return ("call", callee[1], tuple(args))

    def closure(self) -> Node:
        self.expect("{")
        body = self.expression()
        self.expect("}")
        return ("closure", body)

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            number = float(token.text) if re.search(r"[.eE]", token.text) else int(token.text)
            return ("lit", number)
        if token.kind == "string":
            return ("lit", _unquote(token.text))
        if token.kind == "name":
            if token.text in _KEYWORDS:
                return ("lit", _KEYWORDS[token.text])
            if token.text == "result" or token.text in _FUNCTIONS:
                return ("var", token.text)
            raise ConditionError(f"unknown name {token.text!r} at position {token.pos}: use result")
        if token.kind == "op" and token.text == "#":
            return ("elem",)
        if token.kind == "op" and token.text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if token.kind == "op" and token.text == "[":
            return self.list_literal()
        found = token.text or "the end"
        raise ConditionError(f"unexpected {found!r} at position {token.pos}")

    def list_literal(self) -> Node:
        items: list[Node] = []
        if not self.accept("]"):
            while True:
                items.append(self.expression())
                if self.accept("]"):
                    break
                self.expect(",")
        return ("list", tuple(items))


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# --- evaluation ------------------------------------------------------------------------------------------


@dataclass
class _Env:
    result: Any
    steps: int = 0
    elements: list[Any] = field(default_factory=list)

    def tick(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise ConditionError(f"condition took more than {_MAX_STEPS} evaluation steps")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a map"


def _eval(node: Node, env: _Env) -> Any:
    env.tick()
    return _EVALUATORS[node[0]](node, env)


def _eval_lit(node: Node, env: _Env) -> Any:
    return node[1]


def _eval_var(node: Node, env: _Env) -> Any:
    if node[1] != "result":
        raise ConditionError(f"{node[1]} is a function: call it as {node[1]}(...)")
    return env.result


def _eval_elem(node: Node, env: _Env) -> Any:
    if not env.elements:
        raise ConditionError("# is only allowed inside a closure such as all(result, {# < 1})")
    return env.elements[-1]


def _eval_list(node: Node, env: _Env) -> Any:
    return [_eval(item, env) for item in node[1]]


def _eval_index(node: Node, env: _Env) -> Any:
    container, key = _eval(node[1], env), _eval(node[2], env)
    if isinstance(container, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise ConditionError(f"a list index must be a whole number, got {_describe(key)}")
        if not -len(container) <= key < len(container):
            raise ConditionError(f"index {key} out of range: the list has {len(container)} element(s)")
        return container[key]
    if isinstance(container, Mapping):
        if key not in container:
            raise ConditionError(f"key {key!r} not found")
        return container[key]
    raise ConditionError(f"cannot index {_describe(container)}")


def _eval_member(node: Node, env: _Env) -> Any:
    container = _eval(node[1], env)
    if not isinstance(container, Mapping) or node[2] not in container:
        raise ConditionError(f"field {node[2]!r} not found in {_describe(container)}")
    return container[node[2]]


def _eval_unary(node: Node, env: _Env) -> Any:
    value = _eval(node[2], env)
    if node[1] == "!":
        return not _boolean(value, "!")
    if not _is_number(value):
        raise ConditionError(f"unary {node[1]} needs a number, got {_describe(value)}")
    return -value if node[1] == "-" else value


def _boolean(value: object, op: str) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"{op} needs true or false, got {_describe(value)}")
    return value


def _eval_and(node: Node, env: _Env) -> Any:
    return _boolean(_eval(node[1], env), "&&") and _boolean(_eval(node[2], env), "&&")


def _eval_or(node: Node, env: _Env) -> Any:
    return _boolean(_eval(node[1], env), "||") or _boolean(_eval(node[2], env), "||")


def _eval_cond(node: Node, env: _Env) -> Any:
    return _eval(node[2], env) if _boolean(_eval(node[1], env), "?:") else _eval(node[3], env)


def _eval_binary(node: Node, env: _Env) -> Any:
    op, left, right = node[1], _eval(node[2], env), _eval(node[3], env)
    if op in ("==", "!="):
        equal = _equal(left, right)
        return equal if op == "==" else not equal
    if op == "in":
        return _contains(right, left)
    if op in ("<", "<=", ">", ">="):
        return _compare(op, left, right)
    return _arithmetic(op, left, right)


def _equal(left: object, right: object) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _contains(container: object, item: object) -> bool:
    if isinstance(container, list):
        return any(_equal(item, element) for element in container)
    if isinstance(container, Mapping):
        return item in container
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    raise ConditionError(f"'in' needs a list, map or string on its right, got {_describe(container)}")


def _compare(op: str, left: Any, right: Any) -> bool:
    comparable = (_is_number(left) and _is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if not comparable:
        raise ConditionError(f"cannot compare {_describe(left)} {op} {_describe(right)}")
    outcome: bool = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    return outcome


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > _MAX_STRING:
            raise ConditionError(f"string longer than {_MAX_STRING} characters")
        return left + right
    if not (_is_number(left) and _is_number(right)):
        raise ConditionError(f"{op} needs numbers, got {_describe(left)} and {_describe(right)}")
    try:
        return _ARITHMETIC[op](left, right)
    except ZeroDivisionError:
        raise ConditionError(f"division by zero in {op}") from None
    except OverflowError:
        raise ConditionError(f"number too large in {op}") from None


def _modulo(left: Any, right: Any) -> Any:
    if not (isinstance(left, int) and isinstance(right, int)):
        raise ConditionError("% needs whole numbers")
    return left % right


def _power(left: Any, right: Any) -> float:
    # Always float: an integer power of an integer could grow without bound.
    value: object = float(left) ** float(right)
    if not isinstance(value, float):
        raise ConditionError("** of a negative number by a fraction is not a real number")
    return value


_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": _modulo,
    "**": _power,
}


def _eval_call(node: Node, env: _Env) -> Any:
    name, args = node[1], node[2]
    if name in _CLOSURE_FUNCTIONS:
        return _call_with_closure(name, args, env)
    values = [_eval(arg, env) for arg in args]
    return _FUNCTIONS[name](values)


def _call_with_closure(name: str, args: Sequence[Node], env: _Env) -> Any:
    if len(args) != 2 or args[1][0] != "closure":
        raise ConditionError(f"{name} takes a list and a closure, e.g. {name}(result, {{# > 0}})")
    items = _eval(args[0], env)
    if not isinstance(items, list):
        raise ConditionError(f"{name} needs a list, got {_describe(items)}")
    body = args[1][1]

    def apply(item: Any) -> Any:
        env.elements.append(item)
        try:
            return _eval(body, env)
        finally:
            env.elements.pop()

    return _CLOSURE_FUNCTIONS[name](items, apply)


def _closure_bool(apply: Callable[[Any], Any], item: Any, name: str) -> bool:
    return _boolean(apply(item), f"the closure of {name}")


_CLOSURE_FUNCTIONS: Final[dict[str, Callable[[list[Any], Callable[[Any], Any]], Any]]] = {
    "all": lambda items, f: all(_closure_bool(f, i, "all") for i in items),
    "any": lambda items, f: any(_closure_bool(f, i, "any") for i in items),
    "none": lambda items, f: not any(_closure_bool(f, i, "none") for i in items),
    "filter": lambda items, f: [i for i in items if _closure_bool(f, i, "filter")],
    "map": lambda items, f: [f(i) for i in items],
    "count": lambda items, f: sum(1 for i in items if _closure_bool(f, i, "count")),
}


def _arity(name: str, values: Sequence[Any], count: int) -> None:
    if len(values) != count:
        raise ConditionError(f"{name} takes {count} argument(s), got {len(values)}")


def _number(name: str, value: Any) -> float:
    if not _is_number(value):
        raise ConditionError(f"{name} needs a number, got {_describe(value)}")
    return float(value)


def _numbers(name: str, values: Sequence[Any]) -> list[Any]:
    items = values[0] if len(values) == 1 and isinstance(values[0], list) else list(values)
    if not items:
        raise ConditionError(f"{name} of nothing: the list is empty")
    for item in items:
        _number(name, item)
    return items


def _len(values: Sequence[Any]) -> int:
    _arity("len", values, 1)
    if not isinstance(values[0], list | str | Mapping):
        raise ConditionError(f"len needs a list, map or string, got {_describe(values[0])}")
    return len(values[0])


def _as_number(name: str, convert: Callable[[str], Any], values: Sequence[Any]) -> Any:
    _arity(name, values, 1)
    value = values[0]
    if _is_number(value):
        return convert(str(int(value))) if name == "asInt" else float(value)
    if not isinstance(value, str):
        raise ConditionError(f"{name} needs a string or a number, got {_describe(value)}")
    try:
        return convert(value.strip())
    except ValueError:
        raise ConditionError(f"{name}: {value!r} is not a number") from None


def _sum(values: Sequence[Any]) -> Any:
    _arity("sum", values, 1)
    if not isinstance(values[0], list):
        raise ConditionError(f"sum needs a list, got {_describe(values[0])}")
    return sum(_number("sum", v) for v in values[0]) if values[0] else 0


def _is_nan(values: Sequence[Any]) -> bool:
    _arity("isNaN", values, 1)
    return math.isnan(_number("isNaN", values[0]))


def _is_inf(values: Sequence[Any]) -> bool:
    _arity("isInf", values, 1)
    return math.isinf(_number("isInf", values[0]))


def _is_nil(values: Sequence[Any]) -> bool:
    _arity("isNil", values, 1)
    return values[0] is None


def _default(values: Sequence[Any]) -> Any:
    _arity("default", values, 2)
    return values[1] if values[0] is None else values[0]


def _abs(values: Sequence[Any]) -> Any:
    _arity("abs", values, 1)
    _number("abs", values[0])
    return abs(values[0])


_FUNCTIONS: Final[dict[str, Callable[[Sequence[Any]], Any]]] = {
    "len": _len,
    "abs": _abs,
    "min": lambda values: min(_numbers("min", values)),
    "max": lambda values: max(_numbers("max", values)),
    "sum": _sum,
    "asInt": lambda values: _as_number("asInt", int, values),
    "asFloat": lambda values: _as_number("asFloat", float, values),
    "isNaN": _is_nan,
    "isInf": _is_inf,
    "isNil": _is_nil,
    "default": _default,
    **{name: lambda values: None for name in ("all", "any", "none", "filter", "map", "count")},
}

_EVALUATORS: Final[dict[str, Callable[[Node, _Env], Any]]] = {
    "lit": _eval_lit,
    "var": _eval_var,
    "elem": _eval_elem,
    "list": _eval_list,
    "index": _eval_index,
    "member": _eval_member,
    "unary": _eval_unary,
    "and": _eval_and,
    "or": _eval_or,
    "cond": _eval_cond,
    "binary": _eval_binary,
    "call": _eval_call,
}


# --- public surface --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``evaluate`` may be called any number of times."""

    text: str
    tree: Node

    def evaluate(self, result: Any) -> bool:
        """True or False for ``result``; ``ConditionError`` when the expression fails or is not boolean."""
        try:
            value = _eval(self.tree, _Env(result))
        except RecursionError:
            raise ConditionError("condition is nested too deeply") from None
        if not isinstance(value, bool):
            raise ConditionError(f"condition must be true or false, got {_describe(value)}: {self.text}")
        return value


def compile_condition(text: str) -> Condition:
    """Parse ``text``; ``ConditionError`` says where it is wrong (used by validation too)."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ConditionError("condition is empty")
    parser = _Parser(_tokenize(text))
    tree = parser.expression()
    token = parser.peek()
    if token.kind != "end":
        raise ConditionError(f"unexpected {token.text!r} at position {token.pos}")
    if _tree_depth(tree) > _MAX_TREE_DEPTH:
        # e.g. 1+1+1+... parses in a loop but would evaluate by deep recursion
        raise ConditionError(f"condition has more than {_MAX_TREE_DEPTH} nested operations")
    return Condition(text, tree)


def _tree_depth(tree: Node) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in node[1:]:
            children = (
                child if isinstance(child, tuple) and child and isinstance(child[0], tuple) else (child,)
            )
            stack.extend(
                (c, depth + 1) for c in children if isinstance(c, tuple) and c and isinstance(c[0], str)
            )
    return deepest


def evaluate_condition(text: str, result: Any) -> bool:
    """Parse and evaluate in one go."""
    return compile_condition(text).evaluate(result)
