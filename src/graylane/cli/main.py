"""The `graylane` command (also installed as `kubectl-graylane`): click wiring only.

Each verb lives in its own module; the operations they perform live in reusable functions so the
demo, the tests and the CLI share them. This module must not talk to the API itself.
"""

from __future__ import annotations

import click

from graylane.bench import bench
from graylane.cli.cluster import cluster
from graylane.cli.controller import controller, install, uninstall
from graylane.cli.demo import demo
from graylane.cli.plan import plan
from graylane.cli.rollouts import COMMANDS as ROLLOUT_COMMANDS

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graylane")
def cli() -> None:
    """graylane: progressive delivery for Kubernetes, drop-in compatible with Kruise Rollout."""


cli.add_command(cluster)
cli.add_command(controller)
cli.add_command(install)
cli.add_command(uninstall)
cli.add_command(demo)
cli.add_command(bench)
cli.add_command(plan)
for command in ROLLOUT_COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
