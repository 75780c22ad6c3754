"""Script lookup (where a provider's script comes from) and the runner that runs none."""

from __future__ import annotations

import pytest

from graylane.providers.traffic import lua


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


def test_the_capability_only_runner_runs_nothing() -> None:
    with pytest.raises(lua.LuaScriptError, match="was not run: this provider only declares capabilities"):
        lua.NO_SCRIPTS.run(lua.Script("x", "return {}"), {})
