"""Shell completion of Rollout names, and `graylane completion SHELL` which prints the script to source.

Completion runs the `graylane` program itself (click's mechanism): the NAME argument of every Rollout
verb completes from the Rollouts of the namespace given so far (`-n`, else the context's), read with the
`--kubeconfig`/`--context` given so far. It must answer fast and never print an error into the shell:
the listing is bounded by COMPLETION_TIMEOUT and any failure completes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Final

import click
from click.shell_completion import CompletionItem, get_completion_class

__all__ = ["COMPLETION_TIMEOUT", "completion", "rollout_names"]

COMPLETION_TIMEOUT: Final = 3.0
SHELLS: Final = ("bash", "zsh", "fish")


def rollout_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Names of the namespace's Rollouts starting with `incomplete` (a `rollout/` prefix is kept)."""
    prefix, _, partial = incomplete.rpartition("/")
    params = ctx.params
    try:
        names = asyncio.run(_names(params.get("kubeconfig"), params.get("context"), params.get("namespace")))
    except Exception:  # completion must never break the shell; nothing to offer then
        return []
    lead = f"{prefix}/" if prefix else ""
    return [CompletionItem(lead + n) for n in names if n.startswith(partial)]


async def _names(kubeconfig: str | None, context: str | None, namespace: str | None) -> list[str]:
    # Imported here: completing a verb name must not load the API client.
    from graylane.kube import resources as r
    from graylane.kube.client import KubeClient

    async with KubeClient.from_kubeconfig(kubeconfig, context) as client:
        listed = await asyncio.wait_for(
            client.list(r.ROLLOUT, namespace or client.namespace), COMPLETION_TIMEOUT
        )
    return sorted(str(item["metadata"]["name"]) for item in listed.get("items") or [])


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.option("--prog-name", default="graylane", show_default=True, help="The command being completed.")
def completion(shell: str, prog_name: str) -> None:
    """Print the shell completion script for bash, zsh or fish (verbs, flags and Rollout names).

    \b
    bash:  echo 'eval "$(graylane completion bash)"' >> ~/.bashrc
    zsh:   echo 'eval "$(graylane completion zsh)"' >> ~/.zshrc
    fish:  graylane completion fish > ~/.config/fish/completions/graylane.fish
    """
    from graylane.cli.main import cli  # the group whose verbs are completed

    complete_var = "_" + prog_name.replace("-", "_").upper() + "_COMPLETE"
    source_class = get_completion_class(shell)
    assert source_class is not None, "click knows the three shells offered"
    click.echo(source_class(cli, {}, prog_name, complete_var).source())
