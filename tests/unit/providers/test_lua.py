"""The Lua sandbox: limits, what a script can reach, script lookup, and conversions."""

from __future__ import annotations

import time

import pytest

from graylane.providers.traffic import lua


def run(source: str, obj: dict[str, object] | None = None, **kw: float) -> object:
    return lua.run_script(lua.Script("test", source), obj or {}, **kw)


def test_an_infinite_loop_hits_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(lua.LuaScriptError, match=r"Lua script test failed: time limit exceeded \(0.3 s\)"):
        run("while true do end", time_limit=0.3)
    assert time.monotonic() - started < 2


def test_a_script_cannot_catch_its_own_time_limit() -> None:
    source = "while true do pcall(function() while true do end end) end"
    with pytest.raises(lua.LuaScriptError, match="time limit exceeded"):
        run(source, time_limit=0.3)


def test_the_default_time_limit_is_one_second() -> None:
    assert lua.TIME_LIMIT_SECONDS == 1.0


@pytest.mark.parametrize(
    "name", ["os", "io", "debug", "require", "load", "loadstring", "dofile", "coroutine", "python"]
)
def test_host_facilities_are_not_reachable(name: str) -> None:
    assert run(f"return {name} == nil") is True


def test_string_metatable_does_not_reach_the_host() -> None:
    assert run('return getmetatable("").__index.dump ~= nil and os == nil') is True


def test_memory_is_bounded() -> None:
    with pytest.raises(lua.LuaScriptError, match="not enough memory"):
        run("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end")


def test_errors_name_the_script_and_line() -> None:
    with pytest.raises(lua.LuaScriptError, match=r"Lua script test failed: script:2: boom"):
        run("local x = 1\nerror('boom')")
    with pytest.raises(lua.LuaScriptError, match=r"script:1: .*near"):
        run("return 1 +")


def test_base_table_string_math_and_json_are_available() -> None:
    source = """
    local t = {}
    table.insert(t, string.upper("a"))
    t[#t + 1] = tostring(math.max(1, 7))
    local decoded = json.decode('{"k": [1, 2]}')
    return {joined = table.concat(t, ","), encoded = json.encode({x = "y"}), second = decoded.k[2]}
    """
    assert run(source) == {"joined": "A,7", "encoded": '{"x":"y"}', "second": 2}


def test_obj_round_trips_as_plain_tables() -> None:
    obj = {"annotations": {"a": "1"}, "matches": [{"headers": [{"name": "x", "value": "y"}]}], "none": None}
    assert run("return obj", obj) == {
        "annotations": {"a": "1"},
        "matches": [{"headers": [{"name": "x", "value": "y"}]}],
    }
    assert run("return {}") == {}
    assert run("return obj.none == nil", obj) is True


def test_configured_script_wins_over_the_shipped_one() -> None:
    configured = {"lua.traffic.routing.ingress.nginx": "return {}"}
    script = lua.ingress_script("nginx", configured)
    assert script.source == "return {}"
    assert "ConfigMap kruise-rollout-configuration" in script.name
    assert lua.ingress_script("nginx", {}).name == "built-in trafficrouting_ingress/nginx.lua"


def test_a_missing_script_says_where_to_put_one() -> None:
    with pytest.raises(lua.LuaScriptError) as err:
        lua.ingress_script("traefik", {})
    assert str(err.value) == (
        'no Lua script for Ingress class type "traefik": set key lua.traffic.routing.ingress.traefik in '
        "ConfigMap kruise-rollout-configuration (built-in types: aliyun-alb, higress, mse, nginx)"
    )


def test_class_types_cannot_escape_the_script_folder() -> None:
    with pytest.raises(lua.LuaScriptError):
        lua.ingress_script("../lua/trafficrouting_ingress/nginx", {})


def test_builtin_types() -> None:
    assert lua.builtin_ingress_types() == {"nginx", "higress", "mse", "aliyun-alb"}
