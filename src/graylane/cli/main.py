"""The `graylane` command (also installed as `kubectl-graylane`): a group whose verbs load on demand.

Each verb lives in its own module and is imported only when it runs (or its own `--help` is asked
for): `graylane --help` imports click and this module, nothing else, and `graylane approve` never
imports the controller, the benchmark or the webhook server (BENCHMARKS.md has the start-up figures).
The one-line help of each verb is written here, so that listing the verbs needs none of their modules,
and given to the command when it loads (one text, shown by both). This module must not talk to the API.
"""

from __future__ import annotations

import importlib
from typing import Final, NamedTuple

import click

__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]


class Verb(NamedTuple):
    target: str  # "module:attribute" of the click command
    short_help: str  # what `graylane --help` lists


_ROLLOUTS = "graylane.cli.rollouts"
COMMANDS: Final[dict[str, Verb]] = {
    "abort": Verb(f"{_ROLLOUTS}:abort", "Stop the release and go back to stable (undo)."),
    "approve": Verb(f"{_ROLLOUTS}:approve", "Let a release waiting for approval go on."),
    "bench": Verb("graylane.bench:bench", "Benchmark the controller on a fresh local cluster."),
    "cluster": Verb("graylane.cli.cluster:cluster", "Build, start and stop the local Kubernetes."),
    "completion": Verb("graylane.cli.complete:completion", "Print the shell completion script."),
    "controller": Verb("graylane.cli.controller:controller", "Run the controller (reconcilers, webhooks)."),
    "demo": Verb("graylane.cli.demo:demo", "Walk through a canary release on a local cluster."),
    "describe": Verb(f"{_ROLLOUTS}:describe", "Everything about a Rollout, with its pods."),
    "history": Verb(f"{_ROLLOUTS}:history", "Past revisions of the workload."),
    "install": Verb("graylane.cli.controller:install", "Apply the CRDs and webhook configurations."),
    "list": Verb(f"{_ROLLOUTS}:list_", "Rollouts of a namespace (or of all, with -A)."),
    "pause": Verb(f"{_ROLLOUTS}:pause", "Hold a release where it is."),
    "plan": Verb("graylane.cli.plan:plan", "Validate Rollouts and show what each step will do."),
    "promote": Verb(f"{_ROLLOUTS}:promote", "Go on past a pause; --full skips every remaining step."),
    "restart": Verb(f"{_ROLLOUTS}:restart", "Replace the workload's pods through the steps."),
    "resume": Verb(f"{_ROLLOUTS}:resume", "Let a paused release go on."),
    "retry": Verb(f"{_ROLLOUTS}:retry", "Start an aborted release again from step 1."),
    "status": Verb(f"{_ROLLOUTS}:status", "The release at a glance; --timeout waits for its end."),
    "undo": Verb(f"{_ROLLOUTS}:undo", "Roll the workload back."),
    "uninstall": Verb("graylane.cli.controller:uninstall", "Remove the webhooks (and the CRDs)."),
}


def load(name: str) -> click.Command:
    """Import the verb `name` and return its click command, with the short help listed above."""
    module, _, attribute = COMMANDS[name].target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].target} is not a click command")
    command.short_help = COMMANDS[name].short_help
    return command


class LazyGroup(click.Group):
    """A click group listing `COMMANDS` from their written help and importing a verb only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name].short_help) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graylane")
def cli() -> None:
    """graylane: progressive delivery for Kubernetes, drop-in compatible with Kruise Rollout.

    Shell completion of verbs and Rollout names: see `graylane completion --help`.
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
