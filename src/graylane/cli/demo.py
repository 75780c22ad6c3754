"""`graylane demo`: the README's main job, unattended by default (`--step` waits for Enter)."""

from __future__ import annotations

import asyncio
import time

import click

from graylane.cluster import build
from graylane.cluster.local import ClusterError, LocalCluster
from graylane.demo.background import BackgroundController
from graylane.demo.scenario import DemoError, Scenario
from graylane.demo.setup import ensure_gateway_api
from graylane.kube.client import KubeClient

__all__ = ["demo"]


@click.command()
@click.option("--name", default="graylane", show_default=True, help="Name of the local cluster.")
@click.option("--step", is_flag=True, help="Wait for Enter between the demo's steps.")
def demo(name: str, step: bool) -> None:
    """Start a local cluster and graylane, then walk through a canary release and a rollback."""
    started = time.monotonic()
    cluster = LocalCluster(name=name)
    try:
        kubeconfig = cluster.up(out=lambda line: click.echo(f"  {line}", err=True))
    except (build.BuildError, ClusterError) as err:
        raise click.ClickException(str(err)) from err
    asyncio.run(ensure_gateway_api(str(kubeconfig)))
    controller = BackgroundController(cluster.workdir / "clusters" / name / "graylane", kubeconfig)
    pid = controller.start()
    click.echo(f"graylane controller running (pid {pid}, log {controller.log_file})")
    try:
        asyncio.run(_walk(str(kubeconfig), step))
    except DemoError as err:
        raise click.ClickException(f"{err}; controller log: {controller.log_file}") from err
    elapsed = time.monotonic() - started
    click.echo(
        f"\nsummary: weighted canary with approval, A/B test by header, rollback; done in {elapsed:.0f}s."
    )
    click.echo(f"go on by hand:  export KUBECONFIG={kubeconfig}; kubectl -n graylane-demo get rollouts")
    click.echo(f"clean up:       graylane cluster down --name {name}")


async def _walk(kubeconfig: str, step: bool) -> None:
    async def pause_between() -> None:
        if step:
            await asyncio.to_thread(click.prompt, "press Enter to continue", default="", show_default=False)

    async with KubeClient.from_kubeconfig(kubeconfig) as kube:
        scenario = Scenario(kube, lambda line: click.echo(f"- {line}"), pause_between)
        await scenario.reset()
        await scenario.deploy()
        await scenario.canary_with_approval()
        await scenario.rollback()
