"""`graylane demo`: the README's main job, unattended by default (`--step` waits for Enter).

As root it runs everything in a network namespace of its own (graylane.trafficlab): the cluster, the
controller, Traefik and a fake app answering as every pod, so each step is shown by real requests
through the gateway. Without root it says why and shows what graylane wrote into the gateways.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import click

from graylane.cluster import build
from graylane.cluster.local import ClusterError, LocalCluster
from graylane.demo.background import BackgroundController
from graylane.demo.scenario import DemoError, Requests, Scenario
from graylane.demo.setup import ensure_gateway_api
from graylane.demo.traffic import DemoTraffic, unavailable_reason
from graylane.kube.client import KubeClient
from graylane.trafficlab import gateways as gw
from graylane.trafficlab.lab import LabError, TrafficLab

__all__ = ["demo", "lab_dir", "lab_netns"]


def lab_dir(name: str) -> Path:
    """Where the demo's traffic lab of cluster `name` keeps its state (the cluster down verb reads it)."""
    return build.cache_root() / "demo" / name


def lab_netns(name: str) -> str:
    return "gl-demo-" + (re.sub(r"[^a-z0-9-]", "-", name.lower())[:32] or "x")


def _err(line: str) -> None:
    click.echo(f"  {line}", err=True)


@click.command()
@click.option("--name", default="graylane", show_default=True, help="Name of the local cluster.")
@click.option("--step", is_flag=True, help="Wait for Enter between the demo's steps.")
def demo(name: str, step: bool) -> None:
    """Start a local cluster and graylane, then walk through a canary release and a rollback."""
    started = time.monotonic()
    reason = unavailable_reason()
    if reason is None:
        _with_traffic(name, step)
    else:
        click.echo(f"- note: {reason}")
        _without_traffic(name, step)
    elapsed = time.monotonic() - started
    click.echo(
        f"\nsummary: weighted canary with approval, A/B test by header, rollback; done in {elapsed:.0f}s."
    )
    click.echo(f"clean up:       graylane cluster down --name {name}")


def _with_traffic(name: str, step: bool) -> None:
    workdir = lab_dir(name)
    TrafficLab.stop_detached(workdir)  # the previous demo's, if it is still running
    local = LocalCluster(name=name)
    BackgroundController(local.workdir / "clusters" / name / "graylane", local.kubeconfig_path).stop()
    lab = TrafficLab("demo", workdir, out=_err, netns_name=lab_netns(name), cluster_name=name, envoy=False)
    try:
        lab.start()
    except (build.BuildError, ClusterError, LabError) as err:
        raise click.ClickException(str(err)) from err
    controller = lab.children["graylane"]
    click.echo(f"graylane controller running (pid {controller.pid}, log {controller.log_path})")
    click.echo(
        f"traffic: Traefik and a fake app answering as every pod, in network namespace {lab_netns(name)}"
    )
    try:
        assert lab.kube is not None
        refs = [{"name": gw.TRAEFIK_GATEWAY, "namespace": gw.GATEWAY_NAMESPACE}]
        lab.run(_walk(lab.kube, step, DemoTraffic(), refs))
    except DemoError as err:
        raise click.ClickException(f"{err}; controller log: {controller.log_path}") from err
    finally:
        lab.detach()
    inside = f"ip netns exec {lab_netns(name)}"
    kubectl = f"{build.binaries(build.Versions())['kubectl']} --kubeconfig {lab.kubeconfig}"
    click.echo(f"go on by hand:  {inside} {kubectl} -n graylane-demo get rollouts")
    click.echo(f"                {inside} curl -s -H 'Host: demo.local' http://127.0.0.1:{gw.NGINX_PORT}/")


def _without_traffic(name: str, step: bool) -> None:
    cluster = LocalCluster(name=name)
    try:
        kubeconfig = cluster.up(out=_err)
    except (build.BuildError, ClusterError) as err:
        raise click.ClickException(str(err)) from err
    asyncio.run(ensure_gateway_api(str(kubeconfig)))
    controller = BackgroundController(cluster.workdir / "clusters" / name / "graylane", kubeconfig)
    pid = controller.start()
    click.echo(f"graylane controller running (pid {pid}, log {controller.log_file})")

    async def walk() -> None:
        async with KubeClient.from_kubeconfig(str(kubeconfig)) as kube:
            await _walk(kube, step, None, None)

    try:
        asyncio.run(walk())
    except DemoError as err:
        raise click.ClickException(f"{err}; controller log: {controller.log_file}") from err
    click.echo(f"go on by hand:  export KUBECONFIG={kubeconfig}; kubectl -n graylane-demo get rollouts")


async def _walk(
    kube: KubeClient, step: bool, requests: Requests | None, parent_refs: list[dict[str, str]] | None
) -> None:
    async def pause_between() -> None:
        if step:
            await asyncio.to_thread(click.prompt, "press Enter to continue", default="", show_default=False)

    scenario = Scenario(kube, lambda line: click.echo(f"- {line}"), pause_between, requests, parent_refs)
    await scenario.reset()
    await scenario.deploy()
    await scenario.canary_with_approval()
    await scenario.rollback()
