"""A `ScriptRunner` for the providers' unit tests: Kruise's sandbox, run in this process.

Provider tests are about what providers do with a script's result, so they run the real sandbox
(graylane.scripting.sandbox) without the worker processes around it; the process pool, its deadline,
memory limit, cache and back-off have their own tests in tests/unit/scripting/. The controller never
runs scripts in its own process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from graylane.providers.traffic.lua import LuaScriptError, Script
from graylane.scripting.sandbox import Sandbox


class InlineScripts:
    def __init__(self, cpu_seconds: float = 1.0) -> None:
        self._sandbox = Sandbox()
        self._cpu_seconds = cpu_seconds

    def run(self, script: Script, obj: Mapping[str, Any]) -> Any:
        outcome = self._sandbox.run(script.source, json.dumps(obj), self._cpu_seconds)
        if not outcome.ok:
            raise LuaScriptError(f"Lua script {script.name} failed: {outcome.text}")
        return json.loads(outcome.text)


SCRIPTS = InlineScripts()
