"""The Lua sandbox a script worker runs scripts in (Kruise's contract, run by lupa). Worker side only.

Each run gets a fresh Lua 5.4 state whose script sees only the `base` functions that cannot reach the
host, `string` (without `dump`), `table`, `math`, a `json` module (`encode`/`decode`) and the input
table `obj` — no `os`, `io`, `debug`, `load`, `require` or `coroutine`. A script gets `cpu_seconds` of
CPU (an instruction-count hook checks the clock every 1,000 instructions and keeps failing once time is
up, even under the script's own `pcall`) and `lua_memory` bytes of Lua memory. These are the soft limits
that give a clear message; the hard ones (a wall-clock deadline enforced by killing the process, an OS
memory limit) belong to the process around it (worker.py, pool.py), because one C call such as a
backtracking `string.find` never reaches the hook.

No Python object or callback ever reaches Lua: the input arrives as JSON text and is read by a JSON
reader written in Lua, which `json.decode` also is, so every allocation is Lua's, under its limit and
the hook (lupa aborts the process, or hangs, when the Lua limit is hit while Python hands Lua a value).
The result is written as JSON inside Lua too: only tables, strings, numbers, booleans and nil can be
returned; a table that contains itself, a string that is not UTF-8, a number that is not finite,
nesting deeper than `MAX_DEPTH` or output larger than `max_output` is an error naming where in the
result it is. A table with keys 1..n is an array, any other table (empty too) an object; keys are written
sorted, as Go writes a map; a whole-number float is written as an integer (Kruise's Lua has only float64
numbers, which Go's JSON writes as `50`, and the API server's integer fields refuse `50.0`).

Must not: be imported by the controller process (it loads lupa, which only workers need).
"""

from __future__ import annotations

import dataclasses

import lupa.lua54 as lua

from graylane.scripting.outcome import Outcome, OutcomeKind

__all__ = ["MAX_DEPTH", "Sandbox"]

MAX_DEPTH = 100
TIMEOUT = "time limit exceeded"
NO_MEMORY = "not enough memory"
_MAX_ERROR_CHARS = 2000

_SANDBOX = r"""
local clock, sethook, load, pcall, xpcall, error = os.clock, debug.sethook, load, pcall, xpcall, error
local select, pack, next, type, tostring = select, table.pack, next, type, tostring
local mtype, tointeger, huge, floor = math.type, math.tointeger, math.huge, math.floor
local concat, sort, format, gsub, byte = table.concat, table.sort, string.format, string.gsub, string.byte
local find, sub, match = string.find, string.sub, string.match
local ulen, uchar = utf8.len, utf8.char
local TIMEOUT = "time limit exceeded"

-- Bytecode is not UTF-8 and `load` is gone anyway; removed here, the shared string metatable sees it too.
string.dump = nil

local function library(source)
  local copy = {}
  for key, value in pairs(source) do copy[key] = value end
  return copy
end

local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
                 ['\r'] = '\\r', ['\t'] = '\\t'}
local function quote(s)
  return '"' .. gsub(s, '[%c"\\]', function(c) return ESCAPES[c] or format('\\u%04x', byte(c)) end) .. '"'
end

local function number(v)
  if mtype(v) == "integer" then return format("%d", v) end
  if v ~= v or v == huge or v == -huge then return nil end
  local whole = tointeger(v)
  if whole then return format("%d", whole) end
  for _, digits in ipairs({"%.15g", "%.16g", "%.17g"}) do
    local text = format(digits, v)
    if tonumber(text) == v then return text end
  end
  return format("%.17g", v)
end

-- A function returning the JSON text of a value; it raises {where = path, why = text} when it cannot.
local function encoder(limit, max_depth)
  local out, size, active, path = {}, 0, {}, {}
  local function where()  -- the path only when something failed: building it per node would cost
    local text = "result" .. concat(path)
    if #text > 160 then text = text:sub(1, 80) .. "..." .. text:sub(-60) end
    return text
  end
  local function fail(why) error({where = where(), why = why}, 0) end
  local function emit(s)
    size = size + #s
    if size > limit then error({why = "output larger than " .. limit .. " bytes"}, 0) end
    out[#out + 1] = s
  end
  local function key_text(k)
    local t = type(k)
    if t == "string" then
      if not ulen(k) then fail("a table with a key that is not valid UTF-8") end
      return k
    elseif t == "number" then
      return number(k) or fail("a table with a key that is not a finite number")
    elseif t == "boolean" then
      return k and "true" or "false"
    end
    fail("a table with a key of type " .. t)
  end
  local function length(v)  -- n when the keys are exactly 1..n, else nil
    local count, max = 0, 0
    for k in next, v do
      if mtype(k) ~= "integer" or k < 1 then return nil end
      count = count + 1
      if k > max then max = k end
    end
    if count > 0 and max == count then return count end
    return nil
  end
  local walk
  local function child(value, label, depth)
    path[#path + 1] = label
    walk(value, depth + 1)
    path[#path] = nil
  end
  local function array(v, depth, n)
    emit("[")
    for i = 1, n do
      if i > 1 then emit(",") end
      child(rawget(v, i), "[" .. i .. "]", depth)
    end
    emit("]")
  end
  local function object(v, depth)
    local keys, originals = {}, {}
    for k in next, v do
      local text = key_text(k)
      keys[#keys + 1] = text
      originals[text] = k
    end
    sort(keys)
    emit("{")
    for i, text in ipairs(keys) do
      if i > 1 then emit(",") end
      emit(quote(text))
      emit(":")
      child(rawget(v, originals[text]), "." .. text, depth)
    end
    emit("}")
  end
  walk = function(v, depth)
    local t = type(v)
    if t == "nil" then emit("null")
    elseif t == "boolean" then emit(v and "true" or "false")
    elseif t == "number" then emit(number(v) or fail("a number that is not finite"))
    elseif t == "string" then
      if not ulen(v) then fail("a string that is not valid UTF-8") end
      emit(quote(v))
    elseif t == "table" then
      if active[v] then fail("a table that contains itself (a cycle)") end
      if depth >= max_depth then fail("tables nested deeper than " .. max_depth) end
      active[v] = true
      local n = length(v)
      if n then array(v, depth, n) else object(v, depth) end
      active[v] = nil
    else
      fail("a value of type " .. t .. " (only tables, strings, numbers and booleans can be returned)")
    end
  end
  return function(value)
    out, size, active, path = {}, 0, {}, {}
    walk(value, 0)
    return concat(out)
  end
end

-- A function returning the value of JSON text; it raises {why = text} when the text is not JSON.
-- Everything it builds is Lua memory, under the Lua limit and the CPU hook (no Python callback:
-- lupa aborts or hangs when the limit is hit while Python hands it a value).
local function decoder(max_depth)
  local text, pos
  local ESC = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'}
  local function fail(why) error({why = why .. " at character " .. pos}, 0) end
  local function skip() pos = find(text, "[^ \t\r\n]", pos) or #text + 1 end
  local function escape(parts, j)
    local c = sub(text, j + 1, j + 1)
    if c ~= "u" then
      parts[#parts + 1] = ESC[c] or fail("a bad escape")
      return j + 2
    end
    local code = tonumber(match(text, "^%x%x%x%x", j + 2) or fail("a bad \\u escape"), 16)
    local next_at = j + 6
    if code >= 0xD800 and code <= 0xDBFF then  -- a surrogate pair makes one character
      local low = tonumber(match(text, "^\\u(%x%x%x%x)", next_at) or "", 16)
      if low and low >= 0xDC00 and low <= 0xDFFF then
        code, next_at = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00), next_at + 6
      end
    end
    parts[#parts + 1] = uchar(code)
    return next_at
  end
  local function str()
    local parts, i = {}, pos + 1
    while true do
      local j = find(text, '["\\]', i)
      if not j then fail("an unterminated string") end
      parts[#parts + 1] = sub(text, i, j - 1)
      if byte(text, j) == 34 then
        pos = j + 1
        return concat(parts)
      end
      i = escape(parts, j)
    end
  end
  local function num()
    local first, last = find(text, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    local n = first and tonumber(sub(text, first, last))
    if not n then fail("an unexpected character") end
    pos = last + 1
    return n
  end
  local function literal(word, value)
    if sub(text, pos, pos + #word - 1) ~= word then fail("an unexpected character") end
    pos = pos + #word
    return value
  end
  local value
  local function container(depth, close, add)
    if depth >= max_depth then fail("nesting deeper than " .. max_depth) end
    pos = pos + 1
    skip()
    if byte(text, pos) == close then
      pos = pos + 1
      return
    end
    while true do
      add(depth)
      skip()
      local c = byte(text, pos)
      pos = pos + 1
      if c == close then return end
      if c ~= 44 then pos = pos - 1; fail("a missing ',' or closing bracket") end
    end
  end
  local function object(depth)
    local t = {}
    container(depth, 125, function()
      skip()
      if byte(text, pos) ~= 34 then fail("a key that is not a string") end
      local key = str()
      skip()
      if byte(text, pos) ~= 58 then fail("a missing ':'") end
      pos = pos + 1
      t[key] = value(depth + 1)
    end)
    return t
  end
  local function array(depth)
    local t, n = {}, 0
    container(depth, 93, function()
      n = n + 1
      t[n] = value(depth + 1)  -- null leaves a hole, as nil does everywhere in Lua
    end)
    return t
  end
  value = function(depth)
    skip()
    local c = byte(text, pos)
    if c == 123 then return object(depth)
    elseif c == 91 then return array(depth)
    elseif c == 34 then return str()
    elseif c == 116 then return literal("true", true)
    elseif c == 102 then return literal("false", false)
    elseif c == 110 then return literal("null", nil)
    end
    return num()
  end
  return function(s)
    if type(s) ~= "string" then error({why = "it takes a string, not a " .. type(s)}, 0) end
    text, pos = s, 1
    local v = value(0)
    skip()
    if pos <= #text then fail("text after the value") end
    return v
  end
end

local function describe(err)
  if type(err) == "table" and err.why then
    if err.where then return err.where .. " is " .. err.why end
    return err.why
  end
  if type(err) == "string" then return err end
  return "(error object is a " .. type(err) .. " value)"
end

return function(source, chunkname, input, seconds, limit, max_depth)
  local expired = false
  local function guard(...)
    if expired then error(TIMEOUT, 0) end  -- a script's own pcall must not swallow the time limit
    return ...
  end
  local encode = encoder(limit, max_depth)
  local decode = decoder(max_depth)
  local ok_input, obj = pcall(decode, input)
  if not ok_input then return false, "the input cannot be read: " .. describe(obj) end
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, select = select,
    tonumber = tonumber, tostring = tostring, type = type, unpack = table.unpack,
    rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
    getmetatable = getmetatable, setmetatable = setmetatable,
    pcall = function(...) return guard(pcall(...)) end,
    xpcall = function(...) return guard(xpcall(...)) end,
    string = library(string), table = library(table), math = library(math),
    json = {
      encode = function(value)
        local ok, text = pcall(encoder(limit, max_depth), value)
        if not ok then error("json.encode: " .. describe(text), 2) end
        return text
      end,
      decode = function(text)
        local ok, value = pcall(decode, text)
        if not ok then error("json.decode: " .. describe(value), 2) end
        return value
      end,
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
  local ok, text = result[1], result[2]
  if ok and not expired then
    ok, text = pcall(encode, result[2])
    if not ok then text = "the result cannot be written as JSON: " .. describe(text) end
  elseif not ok then
    text = describe(text)
  end
  sethook()
  if expired then return false, TIMEOUT .. " (" .. seconds .. " s)" end
  return ok, text
end
"""


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """Runs one script at a time in a fresh Lua state; see the module docstring for the rules."""

    lua_memory: int = 64 * 2**20
    max_output: int = 2 * 2**20

    def run(self, source: str, input_json: str, cpu_seconds: float) -> Outcome:
        runtime = lua.LuaRuntime(
            encoding=None,  # Lua strings stay bytes: non-UTF-8 output is found by the encoder, not a crash
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=False,
            max_memory=self.lua_memory,
            attribute_filter=_no_attributes,
        )
        sandbox = runtime.execute(_SANDBOX)
        try:
            ok, text = sandbox(
                source.encode(), b"script", input_json.encode(), cpu_seconds, self.max_output, MAX_DEPTH
            )
        except lua.LuaMemoryError:
            return Outcome(OutcomeKind.MEMORY, NO_MEMORY)
        except lua.LuaError as err:
            return Outcome(OutcomeKind.ERROR, _text(str(err).encode()))
        return _outcome(bool(ok), text)


def _outcome(ok: bool, text: object) -> Outcome:
    message = _text(text)
    if ok:
        # The encoder wrote only valid UTF-8 and ASCII escapes, so this decode cannot fail.
        return Outcome(OutcomeKind.OK, text.decode() if isinstance(text, bytes) else message)
    if message.startswith(TIMEOUT):
        return Outcome(OutcomeKind.TIMEOUT, message)
    if message.endswith(NO_MEMORY):
        return Outcome(OutcomeKind.MEMORY, message)
    return Outcome(OutcomeKind.ERROR, message)


def _text(value: object) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "… (cut)"


def _no_attributes(obj: object, name: str, is_setting: bool) -> str:
    raise AttributeError("Python attributes are not reachable from traffic-routing scripts")
