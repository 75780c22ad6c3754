"""A sandboxed Lua runtime for traffic-routing scripts (Kruise's contract, run by lupa).

Each run gets a fresh Lua 5.4 state whose script sees only the `base` functions that cannot reach the
host, `string`, `table`, `math`, a `json` module (`encode`/`decode`) and the input table `obj` — no
`os`, `io`, `debug`, `load`, `require` or `coroutine`. A script gets 1 s of CPU (an instruction-count
hook checks the clock every 1,000 instructions and keeps failing once time is up, even under the
script's own `pcall`) and 64 MiB of memory. Python objects never reach the script: input and output
are converted to and from plain Lua tables, and the JSON helpers are wrapped in Lua closures.

Scripts are found by key. Ingress class types (`ingress_script`): the ConfigMap
`kruise-rollout-configuration` in the controller namespace first, then the scripts shipped under
`lua/trafficrouting_ingress/`. Custom kinds (`custom_script`) the same way: the ConfigMap key
`lua.traffic.routing.<Kind>.<group>` first, so a user's script replaces a shipped one, then the script
shipped under `lua/custom/<group>/<Kind>.lua`. Pure apart from reading shipped files; errors are
`LuaScriptError` with text that names the script and the cause.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import lupa.lua54 as lua

__all__ = [
    "CONFIGMAP_NAME",
    "CUSTOM_KEY_PREFIX",
    "INGRESS_KEY_PREFIX",
    "LuaScriptError",
    "Script",
    "builtin_custom_kinds",
    "builtin_ingress_types",
    "custom_script",
    "custom_script_key",
    "ingress_script",
    "run_script",
]

CONFIGMAP_NAME = "kruise-rollout-configuration"
CUSTOM_KEY_PREFIX = "lua.traffic.routing."
INGRESS_KEY_PREFIX = CUSTOM_KEY_PREFIX + "ingress."
TIME_LIMIT_SECONDS = 1.0
MAX_MEMORY_BYTES = 64 * 2**20
_BUILTIN_PACKAGE = "graylane.providers.traffic"
_BUILTIN_DIR = ("lua", "trafficrouting_ingress")
_BUILTIN_CUSTOM_DIR = ("lua", "custom")

_SANDBOX = """
local clock, sethook, load, pcall, xpcall, error = os.clock, debug.sethook, load, pcall, xpcall, error
local select, pack, unpack = select, table.pack, table.unpack
local TIMEOUT = "time limit exceeded"

local function library(source)
  local copy = {}
  for key, value in pairs(source) do copy[key] = value end
  return copy
end

return function(source, chunkname, obj, encode, decode, seconds)
  local expired = false
  local function guard(...)
    if expired then error(TIMEOUT, 0) end  -- a script's own pcall must not swallow the time limit
    return ...
  end
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, select = select,
    tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
    rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
    getmetatable = getmetatable, setmetatable = setmetatable,
    pcall = function(...) return guard(pcall(...)) end,
    xpcall = function(...) return guard(xpcall(...)) end,
    string = library(string), table = library(table), math = library(math),
    json = {
      encode = function(value) return encode(value) end,
      decode = function(text) return decode(text) end,
    },
    obj = obj,
  }
  env._G = env
  local chunk, err = load(source, "=" .. chunkname, "t", env)
  if not chunk then return false, err end
  local deadline = clock() + seconds
  sethook(function()
    if expired or clock() > deadline then expired = true; error(TIMEOUT, 0) end
  end, "", 1000)
  local result = pack(pcall(chunk))
  sethook()
  if expired then return false, TIMEOUT .. " (" .. seconds .. " s)" end
  return result[1], result[2]
end
"""


class LuaScriptError(Exception):
    """A script is missing, does not compile, fails, runs out of time or returns the wrong shape."""


@dataclasses.dataclass(frozen=True)
class Script:
    name: str  # where it came from, for messages
    source: str


def builtin_ingress_types() -> frozenset[str]:
    """The Ingress class types graylane ships a script for (nginx, higress, mse, aliyun-alb)."""
    return frozenset(_builtin_sources())


@functools.cache
def _builtin_sources() -> dict[str, str]:
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(*_BUILTIN_DIR)
    return {
        entry.name.removesuffix(".lua"): entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }


@functools.cache
def _builtin_custom_sources() -> dict[tuple[str, str], str]:
    """(group, Kind) -> script, from `lua/custom/<group>/<Kind>.lua`."""
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(*_BUILTIN_CUSTOM_DIR)
    return {
        (group.name, entry.name.removesuffix(".lua")): entry.read_text()
        for group in folder.iterdir()
        if group.is_dir()
        for entry in group.iterdir()
        if entry.name.endswith(".lua")
    }


def builtin_custom_kinds() -> frozenset[tuple[str, str]]:
    """(group, Kind) of every custom kind graylane ships a script for."""
    return frozenset(_builtin_custom_sources())


def custom_script_key(group: str, kind: str) -> str:
    """`lua.traffic.routing.<Kind>.<group>`, the ConfigMap key of a custom kind's script."""
    return f"{CUSTOM_KEY_PREFIX}{kind}.{group}"


def custom_script(
    group: str, kind: str, configured: Mapping[str, str], configmap: str = CONFIGMAP_NAME
) -> Script:
    """A custom kind's script: the ConfigMap's key first (a user's script wins), then the shipped one."""
    key = custom_script_key(group, kind)
    if configured.get(key):
        return Script(f"{key} (ConfigMap {configmap})", configured[key])
    shipped = _builtin_custom_sources().get((group, kind))
    if shipped is not None:
        return Script(f"built-in custom/{group}/{kind}.lua", shipped)
    raise LuaScriptError(f"no Lua script for {kind}.{group}: set key {key} in ConfigMap {configmap}")


def ingress_script(class_type: str, configured: Mapping[str, str], configmap: str = CONFIGMAP_NAME) -> Script:
    """The script for an Ingress class type: the ConfigMap's key first, then the shipped one."""
    key = INGRESS_KEY_PREFIX + class_type
    if configured.get(key):
        return Script(f"{key} (ConfigMap {configmap})", configured[key])
    shipped = _builtin_sources().get(class_type)
    if shipped is not None:
        return Script(f"built-in trafficrouting_ingress/{class_type}.lua", shipped)
    raise LuaScriptError(
        f'no Lua script for Ingress class type "{class_type}": set key {key} in ConfigMap {configmap}'
        f" (built-in types: {', '.join(sorted(builtin_ingress_types()))})"
    )


def run_script(script: Script, obj: Mapping[str, Any], *, time_limit: float = TIME_LIMIT_SECONDS) -> Any:
    """Run `script` with the global `obj`; returns its result converted to Python (tables: dict/list)."""
    runtime = lua.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=False,
        max_memory=MAX_MEMORY_BYTES,
        attribute_filter=_no_attributes,
    )
    runner = runtime.execute(_SANDBOX)

    def encode(value: Any) -> str:
        return json.dumps(to_python(value), separators=(",", ":"))

    def decode(text: str) -> Any:
        return to_lua(runtime, json.loads(text))

    try:
        ok, result = runner(script.source, "script", to_lua(runtime, obj), encode, decode, time_limit)
    except lua.LuaError as err:  # e.g. memory exhausted while converting
        raise LuaScriptError(f"Lua script {script.name} failed: {err}") from err
    if not ok:
        raise LuaScriptError(f"Lua script {script.name} failed: {result}")
    return to_python(result)


def _no_attributes(obj: object, name: str, is_setting: bool) -> str:
    raise AttributeError("Python attributes are not reachable from traffic-routing scripts")


def to_lua(runtime: Any, value: Any) -> Any:
    """Python JSON-like values to Lua: dicts and lists become tables (lists 1-based), None is nil."""
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(runtime, item)
        return table
    if isinstance(value, list | tuple):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(runtime, item)
        return table
    return value


def to_python(value: Any) -> Any:
    """Lua values to Python: a table with keys 1..n is a list, any other table a dict (empty: dict).

    A whole-number float becomes an int: Kruise's Lua has only float64 numbers, which Go's JSON writes
    as `50`, and the API server's integer fields refuse `50.0` (e.g. a weight computed with `/`).
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if lua.lua_type(value) != "table":
        return value
    items = [(key, to_python(item)) for key, item in value.items()]
    keys = [key for key, _ in items]
    if keys and all(isinstance(k, int) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        return [item for _, item in sorted(items, key=lambda pair: pair[0])]
    return {str(key): item for key, item in items}
