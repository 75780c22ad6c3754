"""Start-up of the CLI: `--help` loads no verb, and the everyday verbs never load the controller, the
benchmark or the webhook server (issue 13). Each case runs a fresh interpreter, as a user's shell does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graylane.cli.main import COMMANDS, cli, load

FORBIDDEN = (
    "graylane.controller",
    "graylane.bench",
    "graylane.webhook.server",
    "graylane.batchrelease",
    "aiohttp",
)
# Runs the CLI in-process with the given arguments, then prints the graylane/aiohttp modules it loaded.
PROBE = """
import json, sys
from graylane.cli.main import main
sys.argv = ["graylane", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_modules(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, timeout=60
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES="))
    return list(json.loads(line.removeprefix("MODULES=")))


def test_help_loads_no_verb_and_no_api_client() -> None:
    modules = loaded_modules("--help")
    graylane = [m for m in modules if m.startswith("graylane")]
    assert graylane == ["graylane", "graylane.cli", "graylane.cli.main"]
    assert not [m for m in modules if m.split(".")[0] in ("pydantic", "httpx2", "lightkube", "rich")]


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--help"),
        ("approve", "--help"),
        # Runs up to the failing connection: the whole path of a real approve/status/plan is imported.
        ("approve", "demo", "--kubeconfig", "/nonexistent/kubeconfig"),
        ("status", "demo", "--kubeconfig", "/nonexistent/kubeconfig"),
        ("plan", "demo", "--kubeconfig", "/nonexistent/kubeconfig"),
        ("list", "--kubeconfig", "/nonexistent/kubeconfig"),
    ],
)
def test_everyday_verbs_do_not_load_the_controller(args: tuple[str, ...]) -> None:
    modules = loaded_modules(*args)
    assert not [m for m in modules if m.startswith(FORBIDDEN)], args
    assert "graylane.cli.rollouts" in modules or args[0] == "plan"


def test_every_listed_verb_loads_and_carries_its_listed_help() -> None:
    for name, verb in COMMANDS.items():
        command = load(name)
        assert command.short_help == verb.short_help
        assert len(verb.short_help) <= 60, name
    listing = CliRunner().invoke(cli, ["--help"]).output
    for name, verb in COMMANDS.items():
        assert f"{name}  " in listing
        assert verb.short_help in listing


def test_completion_scripts_name_the_program(tmp_path: Path) -> None:
    for shell in ("bash", "zsh", "fish"):
        result = CliRunner().invoke(cli, ["completion", shell])
        assert result.exit_code == 0, result.output
        assert "_GRAYLANE_COMPLETE" in result.output
    plugin = CliRunner().invoke(cli, ["completion", "bash", "--prog-name", "kubectl-graylane"])
    assert "_KUBECTL_GRAYLANE_COMPLETE" in plugin.output
