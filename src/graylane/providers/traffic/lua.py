"""Traffic-routing Lua scripts as the providers see them: where a script comes from, and who runs it.

Providers are pure, so they never run a script themselves: they are given a `ScriptRunner` (the
controller's is `graylane.scripting.pool.ProcessScriptRunner`, which runs scripts in killable worker
processes under a hard deadline and a memory limit, in Kruise's sandbox: see graylane.scripting) and
call `run(script, obj)`, which returns the script's result as JSON values or raises `LuaScriptError`
with a message fit for the Rollout's status.

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
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol

__all__ = [
    "CONFIGMAP_NAME",
    "CUSTOM_KEY_PREFIX",
    "INGRESS_KEY_PREFIX",
    "NO_SCRIPTS",
    "LuaScriptError",
    "Script",
    "ScriptRunner",
    "builtin_custom_kinds",
    "builtin_ingress_types",
    "custom_script",
    "custom_script_key",
    "ingress_script",
]

CONFIGMAP_NAME = "kruise-rollout-configuration"
CUSTOM_KEY_PREFIX = "lua.traffic.routing."
INGRESS_KEY_PREFIX = CUSTOM_KEY_PREFIX + "ingress."
_BUILTIN_PACKAGE = "graylane.providers.traffic"
_BUILTIN_DIR = ("lua", "trafficrouting_ingress")
_BUILTIN_CUSTOM_DIR = ("lua", "custom")


class LuaScriptError(Exception):
    """A script is missing, does not compile, fails, runs out of time or returns the wrong shape."""


@dataclasses.dataclass(frozen=True)
class Script:
    name: str  # where it came from, for messages
    source: str


class ScriptRunner(Protocol):
    """Runs a script with the global `obj`; see the module docstring."""

    def run(self, script: Script, obj: Mapping[str, Any]) -> Any: ...


@dataclasses.dataclass(frozen=True)
class _NoScripts:
    """For providers built only to be asked what they can do (the webhook's capability check)."""

    def run(self, script: Script, obj: Mapping[str, Any]) -> Any:
        raise LuaScriptError(
            f"Lua script {script.name} was not run: this provider only declares capabilities"
        )


NO_SCRIPTS: ScriptRunner = _NoScripts()


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
