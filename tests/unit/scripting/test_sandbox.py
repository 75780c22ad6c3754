"""The Lua sandbox (in this process, as a worker runs it): soft limits, reach, and writing results."""

from __future__ import annotations

import json
import time

import pytest

from graylane.scripting.outcome import Outcome, OutcomeKind
from graylane.scripting.sandbox import MAX_DEPTH, Sandbox


def run(source: str, obj: object = None, *, cpu: float = 1.0, sandbox: Sandbox | None = None) -> Outcome:
    return (sandbox or Sandbox()).run(source, json.dumps(obj or {}), cpu)


def result(source: str, obj: object = None) -> object:
    outcome = run(source, obj)
    assert outcome.ok, outcome.text
    return json.loads(outcome.text)


def error(source: str, obj: object = None) -> str:
    outcome = run(source, obj)
    assert outcome.kind == OutcomeKind.ERROR, outcome
    return outcome.text


def test_an_infinite_loop_hits_the_cpu_limit() -> None:
    started = time.process_time()
    outcome = run("while true do end", cpu=0.3)
    # The outcome is the behaviour; the CPU it took is a figure (a loaded machine stretches it).
    print(f"an infinite loop ended after {time.process_time() - started:.2f} s of CPU (limit 0.3 s)")
    assert outcome == Outcome(OutcomeKind.TIMEOUT, "time limit exceeded (0.3 s)")


def test_a_script_cannot_catch_its_own_time_limit() -> None:
    outcome = run("while true do pcall(function() while true do end end) end", cpu=0.3)
    assert outcome.kind == OutcomeKind.TIMEOUT


@pytest.mark.parametrize(
    "name", ["os", "io", "debug", "require", "load", "loadstring", "dofile", "coroutine", "python"]
)
def test_host_facilities_are_not_reachable(name: str) -> None:
    assert result(f"return {name} == nil") is True


def test_string_dump_is_gone_even_through_the_string_metatable() -> None:
    assert result('return string.dump == nil and getmetatable("").__index.dump == nil') is True
    assert (
        error("return string.dump(function() end)") == "script:1: attempt to call a nil value (field 'dump')"
    )


def test_lua_memory_is_bounded() -> None:
    outcome = run("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end")
    assert outcome == Outcome(OutcomeKind.MEMORY, "not enough memory")


def test_errors_name_the_script_and_line() -> None:
    assert error("local x = 1\nerror('boom')") == "script:2: boom"
    assert "script:1:" in error("return 1 +")
    assert error("error({})") == "(error object is a table value)"


def test_base_table_string_math_and_json_are_available() -> None:
    source = """
    local t = {}
    table.insert(t, string.upper("a"))
    t[#t + 1] = tostring(math.max(1, 7))
    local decoded = json.decode('{"k": [1, 2]}')
    local encoded = json.encode({x = "y", a = {1, 2}})
    return {joined = table.concat(t, ","), encoded = encoded, second = decoded.k[2]}
    """
    assert result(source) == {"joined": "A,7", "encoded": '{"a":[1,2],"x":"y"}', "second": 2}


def test_obj_round_trips_as_plain_tables() -> None:
    obj = {"annotations": {"a": "1"}, "matches": [{"headers": [{"name": "x", "value": "y"}]}], "none": None}
    assert result("return obj", obj) == {
        "annotations": {"a": "1"},
        "matches": [{"headers": [{"name": "x", "value": "y"}]}],
    }
    assert result("return {}") == {}
    assert result("return obj.none == nil", obj) is True
    assert result("return obj.u", {"u": "é ✓"}) == "é ✓"


def test_whole_number_floats_come_back_as_integers() -> None:
    outcome = run("return {a = 50 * 40 / 100, b = 0.5, c = 7, d = 0.1}")
    assert outcome.text == '{"a":20,"b":0.5,"c":7,"d":0.1}'


def test_keys_are_written_sorted_and_arrays_only_for_keys_one_to_n() -> None:
    outcome = run("return {z = 1, a = {3, 2, 1}, sparse = {[1] = 'x', [3] = 'y'}, [2.5] = true, [false] = 0}")
    assert outcome.text == '{"2.5":true,"a":[3,2,1],"false":0,"sparse":{"1":"x","3":"y"},"z":1}'


def test_strings_are_escaped_as_json() -> None:
    assert result(r'return "q\"b\\n\n\t\1"') == 'q"b\\n\n\t\x01'


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("local t = {} t.self = t return t", "result.self is a table that contains itself (a cycle)"),
        ("local t = {a = {}} t.a[1] = t return t", "result.a[1] is a table that contains itself (a cycle)"),
        (r"return {x = '\255'}", "result.x is a string that is not valid UTF-8"),
        (r"return {['\255'] = 1}", "result is a table with a key that is not valid UTF-8"),
        ("return {f = print or function() end}", "result.f is a value of type function"),
        ("return {c = coroutine or tostring}", "result.c is a value of type function"),
        ("return {n = 0/0}", "result.n is a number that is not finite"),
        ("return {n = math.huge}", "result.n is a number that is not finite"),
        ("return {[{}] = 1}", "result is a table with a key of type table"),
    ],
)
def test_results_that_cannot_be_written_say_where(source: str, message: str) -> None:
    assert error(source).startswith(f"the result cannot be written as JSON: {message}")


def test_nesting_is_bounded() -> None:
    deep = "local t = {} local c = t for i = 1, 200 do c.x = {} c = c.x end return t"
    text = error(deep)
    assert text.endswith(f"is tables nested deeper than {MAX_DEPTH}")
    assert len(text) < 300, "the path is cut, not 200 keys long"


def test_output_size_is_bounded() -> None:
    outcome = run("return {s = string.rep('a', 5000)}", sandbox=Sandbox(max_output=1000))
    assert outcome == Outcome(
        OutcomeKind.ERROR, "the result cannot be written as JSON: output larger than 1000 bytes"
    )


def test_json_encode_reports_cycles_as_a_script_error() -> None:
    assert "json.encode: result[1] is a table that contains itself" in error(
        "local t = {} t[1] = t return json.encode(t)"
    )


def test_json_decode_reads_json_in_lua() -> None:
    text = json.dumps({"a": [1, 2.5, -300.0, True, False, None, "x\u00e9\U0001f600\n"], "b": {}, "c": 10**20})
    assert result("return json.decode(obj.text)", {"text": text}) == {
        "a": {"1": 1, "2": 2.5, "3": -300, "4": True, "5": False, "7": "x\u00e9\U0001f600\n"},
        "b": {},
        "c": 1e20,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "a key that is not a string at character 2"),
        ("[1,]", "an unexpected character at character 4"),
        ("1 2", "text after the value at character 3"),
        ('"abc', "an unterminated string at character 1"),
        ('"\\q"', "a bad escape at character 1"),
        ("[" * 300, f"nesting deeper than {MAX_DEPTH} at character {MAX_DEPTH + 1}"),
    ],
)
def test_json_decode_errors_say_where(text: str, message: str) -> None:
    assert error("return json.decode(obj.text)", {"text": text}) == f"json.decode: {message}"


def test_json_decode_of_a_non_string_is_an_error() -> None:
    assert error("return json.decode({})") == "json.decode: it takes a string, not a table"


def test_a_decode_bomb_stops_at_the_lua_memory_limit() -> None:
    source = "local p = {} for i = 1, 1000 do p[i] = json.decode(obj.big) end return #p"
    outcome = run(source, {"big": json.dumps("x" * 3_000_000)}, cpu=30)
    assert outcome == Outcome(OutcomeKind.MEMORY, "script:1: json.decode: not enough memory")


def test_a_metatable_cannot_make_the_writer_run_script_code() -> None:
    # The writer reads raw tables: __pairs / __index of the result are never called.
    source = "return setmetatable({a = 1}, {__pairs = function() while true do end end, __index = error})"
    assert result(source) == {"a": 1}
